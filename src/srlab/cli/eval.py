"""``srlab eval``: the paper-protocol benchmark table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from ..data import resolve_data_path
from ..ensemble import SelfEnsemble
from ..imageio import DEFAULT_MAX_PIXELS, atomic_write
from ..inference import PRECISIONS, prepare
from ..pretrained import ASSETS_DIR, resolve_model
from ..protocol import evaluate_folder
from ..upscale import model_label
from .common import MODEL_PLUS_HELP, PRECISION_HELP, add_device_argument, model_and_ensemble, progress_enabled


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="PSNR/SSIM on benchmark folders, by the papers' protocol",
        description="Y channel (BT.601), MATLAB bicubic LR, output rounded to uint8, `scale` pixels shaved, per-image means.",
    )
    p.add_argument("--model", default="bicubic", help=MODEL_PLUS_HELP)
    p.add_argument("--weights", help="checkpoint to load instead of shipped weights")
    p.add_argument("--scale", type=int, nargs="+", default=[2, 3, 4], help="one or more factors (default: 2 3 4)")
    p.add_argument("--data", nargs="+", default=["builtin"], help="image folders, looked up under $SRLAB_DATA too; 'builtin' = the images shipped with srlab")
    p.add_argument("--json", help="write per-image and mean scores to this JSON file")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help=f"refuse images with more pixels (default: {DEFAULT_MAX_PIXELS:,})")
    p.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average over the 8 flips and rotations of each input (8 network passes instead of 1; scored as <model>+, not comparable with the papers' single passes)",
    )
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP + " (bf16 is scored as <model>@bf16, through the fast path srlab upscale uses)")
    add_device_argument(p)
    p.set_defaults(run=run)


def run(args) -> int:
    folders = [ASSETS_DIR if d == "builtin" else resolve_data_path(d) for d in args.data]
    results, any_failed = [], False
    model_name, self_ensemble = model_and_ensemble(args)
    name = model_label(model_name, args.weights, self_ensemble)
    bicubic = model_name == "bicubic" and args.weights is None
    bf16 = args.precision == "bf16"
    if bf16 and not bicubic:  # the bicubic has no weights: bf16 leaves it as it is
        name += "@bf16"
    for scale in args.scale:
        model = resolve_model(model_name, scale, args.weights).to(args.device)
        if bf16:
            # The fp32 rows stay on the plain modules (the recorded figures); bf16 is only
            # offered on the fast path, so that is what it measures.
            model = prepare(model, precision="bf16")
        if self_ensemble:
            model = SelfEnsemble(model)
        model_fn = lambda lr, m=model: m(lr.float())  # noqa: E731
        if bicubic:
            model_fn = model  # float64 all the way, exactly the published baseline
        for folder in folders:
            bar = (lambda it, f=folder, s=scale: tqdm(it, desc=f"{Path(f).name} x{s}", leave=False)) if progress_enabled(args) else None
            result = evaluate_folder(model_fn, folder, scale, name, args.device, progress=bar, max_pixels=args.max_pixels)
            any_failed |= bool(result.failed)
            results.append(result)
    width = max(len(r.set) for r in results)
    print(f"{'set':<{width}}  scale  {'model':<12} {'PSNR (dB)':>9}  {'SSIM':>6}  images")
    for r in results:
        print(f"{r.set:<{width}}  x{r.scale:<4}  {r.model:<12} {r.mean_psnr:9.2f}  {r.mean_ssim:6.4f}  {len(r.per_image)}")
    if args.json:
        text = json.dumps([r.to_dict() for r in results], indent=2)
        atomic_write(args.json, lambda tmp: tmp.write_text(text + "\n"))
        if not args.quiet:
            print(f"wrote {args.json}", file=sys.stderr)
    return 1 if any_failed else 0

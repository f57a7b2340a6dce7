"""``srlab demo``: the shipped models on a built-in photo, in a few seconds.

The photo (``assets/astronaut.png``, NASA, public domain) is the ground truth:
it is downscaled by the MATLAB bicubic, upscaled back by the bicubic and every
shipped model, and the results, a comparison figure and PSNR/SSIM are written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..compare import draw_figure, pick_crop, run_comparison
from ..imageio import atomic_write, open_image
from ..pretrained import ASSETS_DIR, available_pretrained
from ..upscale import load_upscaler

DEMO_IMAGE = ASSETS_DIR / "astronaut.png"
DEFAULT_MODELS = "srcnn_955,fsrcnn"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="try the shipped models on a built-in photo (seconds, no download)",
        description="Downscale a built-in photo (NASA astronaut portrait, public domain), upscale it with bicubic and the shipped models, "
        "write the results and a comparison figure, and print PSNR/SSIM against the original.",
    )
    p.add_argument("--out", default="srlab-demo", help="output folder (default: ./srlab-demo)")
    p.add_argument("--scale", type=int, default=3, help="zoom factor (default: 3)")
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"shipped models to show (default: {DEFAULT_MODELS})")
    p.set_defaults(run=run)


def run(args) -> int:
    names = [m.strip() for m in args.models.split(",") if m.strip() and m.strip() != "bicubic"]
    shipped = available_pretrained()
    missing = [n for n in names if (n, args.scale) not in shipped]
    if missing:
        have = ", ".join(f"{n} x{s}" for n, s in shipped) or "none"
        raise ValueError(
            f"the shipped weights for {', '.join(f'{n} x{args.scale}' for n in missing)} are missing from this install "
            f"(shipped: {have}); pick others with --models/--scale, or use `srlab compare --models PATH.safetensors --degrade`"
        )
    methods = [("bicubic", load_upscaler("bicubic", args.scale))] + [(n, load_upscaler(n, args.scale)) for n in names]
    image = np.asarray(open_image(DEMO_IMAGE).convert("RGB"))
    comparison = run_comparison(image, args.scale, methods, degrade=True)

    out = Path(args.out)
    stem, s = DEMO_IMAGE.stem, args.scale
    written = [_save(out / f"{stem}_lr_x{s}.png", comparison.lr)]
    for (name, _), panel in zip(methods, comparison.panels[1:]):
        written.append(_save(out / f"{stem}_{name}_x{s}.png", panel.image))
    gt = comparison.ground_truth
    written.append(_save(out / f"{stem}_original.png", gt))
    crop = pick_crop(gt, min(gt.shape[:2]) // 5)
    figure = draw_figure(comparison, crop, out / f"{stem}_compare_x{s}.png", f"srlab demo: {DEMO_IMAGE.name} downscaled x{s}, then upscaled back")

    print(f"{DEMO_IMAGE.name} ({gt.shape[1]}x{gt.shape[0]}, NASA, public domain) downscaled x{s} to {comparison.lr.shape[1]}x{comparison.lr.shape[0]} and upscaled back")
    print(f"{'method':<12} {'PSNR (dB)':>9}  {'SSIM':>6}   (Y channel, {s} px border shaved)")
    for (name, _), panel in zip(methods, comparison.panels[1:]):
        print(f"{name:<12} {panel.psnr:9.2f}  {panel.ssim:6.4f}")
    print(f"images: {', '.join(str(p) for p in written)}")
    print(f"figure: {figure}")
    return 0


def _save(path: Path, pixels: np.ndarray) -> Path:
    return atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))

"""``srlab compare``: a side-by-side figure of input, bicubic and models."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..compare import draw_figure, pick_crop, run_comparison
from ..imageio import DEFAULT_MAX_PIXELS, open_image
from ..upscale import load_upscaler, model_label
from .common import add_device_argument, parse_box, split_plus


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="side-by-side figure: input, bicubic and models, with a zoomed region",
        description=(
            "Upscale IMAGE with each model and draw the results side by side, the same region enlarged under each. "
            "With --degrade, IMAGE is the ground truth: it is downscaled first (MATLAB bicubic) and every title "
            "shows PSNR/SSIM against it (Y channel, scale pixels shaved)."
        ),
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--scale", type=int, default=3, help="zoom factor (default: 3)")
    p.add_argument(
        "--models",
        default="bicubic,srcnn_955,fsrcnn",
        help="comma-separated names (shipped weights) or checkpoint paths; a trailing + (fsrcnn+) averages that model over "
        "the 8 flips and rotations (default: bicubic,srcnn_955,fsrcnn)",
    )
    p.add_argument("--out", required=True, help="figure file (.png, .pdf, .svg)")
    p.add_argument("--crop", help="region to enlarge, x,y,w,h in IMAGE's pixels (default: the most detailed square)")
    p.add_argument("--degrade", action="store_true", help="treat IMAGE as ground truth: downscale first and score every method")
    p.add_argument("--tile", type=int, default=None, help="tile size in input pixels (default: srlab's)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse bigger images")
    add_device_argument(p)
    p.set_defaults(run=run)


def _method(name: str, args) -> tuple:
    """(label, upscaler) for one --models entry; "NAME+" is NAME with the self-ensemble."""
    base, plus = split_plus(name)
    return model_label(base, self_ensemble=plus), load_upscaler(base, args.scale, tile=args.tile, device=args.device, self_ensemble=plus)


def run(args) -> int:
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise ValueError("--models: give at least one model")
    # Load every model before reading the image: a missing weight fails fast.
    methods = [_method(n, args) for n in names]
    image = np.asarray(open_image(args.image, args.max_pixels).convert("RGB"))
    comparison = run_comparison(image, args.scale, methods, degrade=args.degrade)
    # --crop is in IMAGE's pixels: the ground truth with --degrade, the LR input without.
    factor = 1 if args.degrade else args.scale
    if args.crop:
        x, y, w, h = parse_box(args.crop)
    else:
        ref = comparison.ground_truth if args.degrade else image
        x, y, w, h = pick_crop(ref, max(8, min(ref.shape[:2]) // 5))
    crop = (x * factor, y * factor, w * factor, h * factor)
    title = f"{Path(args.image).name}, x{args.scale}" + (" (downscaled first; PSNR/SSIM on Y vs. the original)" if args.degrade else "")
    out = draw_figure(comparison, crop, args.out, title)
    for panel in comparison.panels[1:]:
        if panel.psnr is not None:
            print(f"{panel.title:<24} PSNR {panel.psnr:6.2f} dB  SSIM {panel.ssim:.4f}")
    print(f"wrote {out}", file=sys.stderr)
    return 0

"""``srlab features``: feature maps, kernels and activation statistics of a model, as a browsable folder."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..features import crop_input, extract_features, layer_names, load_input
from ..features_plot import write_report
from ..imageio import DEFAULT_MAX_PIXELS, open_image
from ..models import create_model, list_models
from ..pretrained import ASSETS_DIR, resolve_model
from .common import MODEL_HELP, add_device_argument, parse_box


def add_parser(sub) -> None:
    p = sub.add_parser(
        "features",
        help="draw a model's feature maps and kernels, with activation statistics and an index.html",
        description="The image is the network's input (the LR image it upscales); its BT.601 Y channel is used.",
    )
    p.add_argument("image", help="input image, or builtin:astronaut / builtin:coffee for the shipped demo images")
    p.add_argument("--model", default="fsrcnn", help=MODEL_HELP)
    p.add_argument("--scale", type=int, default=3, help="upscaling factor (default: 3)")
    p.add_argument("--weights", help="checkpoint to load instead of shipped weights")
    p.add_argument("--random", action="store_true", help="use freshly initialised weights (seeded by --seed) instead of trained ones")
    p.add_argument("--seed", type=int, default=0, help="seed for --random (default: 0)")
    p.add_argument("--layers", help="comma-separated layer names (default: all; see --list)")
    p.add_argument("--crop", help="x,y,w,h: look at this part of the input only")
    p.add_argument("--tile", type=int, help="run the network on tiles of this many input pixels to bound memory (results are stitched)")
    p.add_argument("--max-side", type=int, default=128, help="largest side of one feature-map tile in the grids, in pixels (default: 128)")
    p.add_argument("--out", help="output folder (required unless --list)")
    p.add_argument("--npz", action="store_true", help="also save the raw activations to DIR/activations.npz")
    p.add_argument("--list", action="store_true", help="print the layer names and output shapes for this image and exit")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help=f"refuse images with more pixels (default: {DEFAULT_MAX_PIXELS:,})")
    add_device_argument(p)
    p.set_defaults(run=run)


def _image_path(spec: str) -> Path:
    if spec.startswith("builtin:"):
        path = ASSETS_DIR / f"{spec.split(':', 1)[1]}.png"
        if not path.is_file():
            names = ", ".join(f"builtin:{p.stem}" for p in sorted(ASSETS_DIR.glob("*.png")))
            raise ValueError(f"{spec}: no such built-in image (choose {names})")
        return path
    return Path(spec)


def _model(args) -> tuple[torch.nn.Module, str]:
    """The model and a words description of where its weights came from."""
    registered = args.model in list_models(include_baselines=True)
    if args.random or (args.list and args.weights is None and registered):
        if not registered:
            raise ValueError(f"--random needs a registered model name, not {args.model!r}")
        torch.manual_seed(args.seed)
        return create_model(args.model, args.scale).eval(), f"random initialisation (seed {args.seed})"
    model = resolve_model(args.model, args.scale, args.weights)
    source = args.weights or (args.model if not registered else f"shipped {args.model} x{args.scale}")
    return model, f"{source}"


def run(args) -> int:
    if not args.list and not args.out:
        raise ValueError("--out DIR is required (or use --list)")
    path = _image_path(args.image)
    model, source = _model(args)
    model = model.to(args.device)
    x = load_input(open_image(path, args.max_pixels), int(getattr(model, "hparams", {}).get("channels", 1)))
    crop = parse_box(args.crop) if args.crop else None
    layers = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else None
    if crop:
        try:
            x = crop_input(x, crop)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    if args.list:
        for name, shape in layer_names(model, tuple(x.shape[-2:])):
            print(f"{name:<24} {' x '.join(map(str, shape[1:]))}")
        return 0
    acts = extract_features(model, x, layers=layers, tile=args.tile)
    description = {
        "model": getattr(model, "registry_name", type(model).__name__),
        "architecture": f"{type(model).__name__}({', '.join(f'{k}={v}' for k, v in getattr(model, 'hparams', {}).items())})",
        "weights": source,
        # A file name that is not valid UTF-8 is shown with \x escapes (the page is UTF-8).
        "image": os.fsencode(path).decode("utf-8", "backslashreplace"),
        "crop (x, y, w, h)": list(crop) if crop else "none",
    }
    index = write_report(args.out, model, x, acts, description, npz=args.npz, max_side=args.max_side)
    print(f"wrote {index} ({len(acts)} layers)")
    return 0

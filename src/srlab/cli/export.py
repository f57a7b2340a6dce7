"""``srlab export``: a model as ONNX or TorchScript, dynamic size, metadata inside."""

from __future__ import annotations

import sys

from ..export import FORMATS, MIN_OPSET, export_model, read_metadata
from ..models import BASELINES
from ..pretrained import resolve_model
from .common import MODEL_HELP


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to ONNX or TorchScript",
        description=(
            "Input (N, C, h, w) float32 in [0, 1] (BT.601 Y for 1-channel models), output (N, C, s*h, s*w); "
            "batch, height and width are dynamic. SRCNN exports its convolutions only: feed it the MATLAB-bicubic "
            "upscaled image. Model name, scale and colour convention are stored in the file (see docs/SPEED.md)."
        ),
    )
    p.add_argument("--model", default="fsrcnn", help=MODEL_HELP + " (default: fsrcnn)")
    p.add_argument("--scale", type=int, help="zoom factor (needed unless the checkpoint says it)")
    p.add_argument("--weights", help="checkpoint to export instead of the shipped weights")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from the --out suffix: .onnx, else torchscript)")
    p.add_argument("--opset", type=int, default=MIN_OPSET, help=f"ONNX opset (default and minimum: {MIN_OPSET})")
    p.add_argument("--out", required=True, help="file to write (.onnx or .pt)")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.model in BASELINES and args.weights is None:
        raise ValueError(f"{args.model} has no network to export")
    fmt = args.format or ("onnx" if args.out.lower().endswith(".onnx") else "torchscript")
    model = resolve_model(args.model, args.scale, args.weights)
    path = export_model(model, args.out, fmt, args.opset)
    meta = read_metadata(path)
    note = "; input: the MATLAB-bicubic-upscaled image" if meta["input"] == "bicubic" else ""
    print(f"wrote {path} ({fmt}, x{model.scale}){note}", file=sys.stderr)
    return 0

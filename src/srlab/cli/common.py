"""Small helpers the sub-commands share."""

from __future__ import annotations

import argparse
import sys

from ..device import resolve_device
from ..models import list_models

MODEL_HELP = f"registered name ({', '.join(list_models(True))}) or a checkpoint .safetensors path"
# eval and upscale (and compare's --models) also take NAME+; export and features do not.
MODEL_PLUS_HELP = MODEL_HELP + "; a trailing + (fsrcnn+) adds the self-ensemble"
PRECISION_HELP = (
    "fp32 (default, exact) or bf16: the network's convolutions in bfloat16; on CPUs with AMX or AVX512-BF16 "
    "about 3x faster for srcnn_955 (not for fsrcnn), up to 0.04 dB lower PSNR (FSRCNN x2: 0.05); see docs/SPEED.md"
)


def split_plus(model: str) -> tuple[str, bool]:
    """``"fsrcnn+"`` -> ``("fsrcnn", True)``: the "+" that EDSR's tables use for the
    self-ensemble, accepted wherever a model is named."""
    return (model[:-1], True) if model.endswith("+") and len(model) > 1 else (model, False)


def model_and_ensemble(args) -> tuple[str, bool]:
    """``--model`` and ``--self-ensemble`` as one choice: ``--model fsrcnn+`` is
    ``--model fsrcnn --self-ensemble``."""
    model, plus = split_plus(args.model)
    return model, args.self_ensemble or plus


def progress_enabled(args) -> bool:
    """Progress bars on a terminal unless --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def parse_box(text: str) -> tuple[int, int, int, int]:
    """``x,y,w,h`` -> four ints, with a message that says what was expected."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--crop {text!r}: expected x,y,w,h as four integers") from None
    if w < 1 or h < 1 or x < 0 or y < 0:
        raise ValueError(f"--crop {text!r}: need x, y >= 0 and w, h >= 1")
    return x, y, w, h


def device_arg(text: str):
    """argparse ``type`` for ``--device``: a bad or missing device is a usage error, not a
    traceback from the first tensor moved there."""
    try:
        return resolve_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_argument(parser) -> None:
    """The ``--device`` option every inference command takes, checked by :func:`device_arg`."""
    parser.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")

"""Weights shipped inside the package, and how a model name becomes a model.

Shipped files live in ``srlab/weights`` as ``NAME_xS.safetensors`` + ``NAME_xS.json``
(docs/RESULTS.md says what each scores, docs/TRAINING_LOG.md how each was trained).
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from .checkpoint import load_model
from .models import BASELINES, create_model, list_models

__all__ = ["WEIGHTS_DIR", "ASSETS_DIR", "available_pretrained", "load_pretrained", "resolve_model"]

WEIGHTS_DIR = Path(__file__).parent / "weights"
ASSETS_DIR = Path(__file__).parent / "assets"


def available_pretrained() -> list[tuple[str, int]]:
    """``(name, scale)`` of every shipped weight file."""
    found = []
    for f in sorted(WEIGHTS_DIR.glob("*_x*.safetensors")):
        name, _, scale = f.stem.rpartition("_x")
        if scale.isdigit():
            found.append((name, int(scale)))
    return found


def load_pretrained(name: str, scale: int) -> nn.Module:
    """The shipped model ``name`` at ``scale``, in eval mode."""
    path = WEIGHTS_DIR / f"{name}_x{scale}.safetensors"
    if not path.is_file():
        shipped = ", ".join(f"{n} x{s}" for n, s in available_pretrained()) or "none"
        raise ValueError(f"no shipped weights for {name} x{scale} (shipped: {shipped}); train one with `srlab train` and pass --weights")
    return load_model(path)


def resolve_model(spec: str, scale: int | None, weights: str | os.PathLike | None = None) -> nn.Module:
    """A ready model from a CLI-style spec.

    ``weights`` (a checkpoint path) wins; else ``spec`` may be a checkpoint path,
    ``bicubic``, or a registered name with shipped weights at ``scale``.
    A checkpoint's own scale must agree with ``scale`` when both are given.
    """
    if weights is None and (spec.endswith((".safetensors", ".json")) or os.sep in spec or Path(spec).is_file()):
        weights = spec
    if weights is not None:
        model = load_model(weights)
        if scale is not None and model.scale != scale:
            raise ValueError(f"{weights}: is a x{model.scale} model, but --scale {scale} was asked for")
        return model
    if scale is None:
        raise ValueError(f"--scale is needed for model {spec!r}")
    if spec in BASELINES:
        return create_model(spec, scale).eval()
    if spec not in list_models():
        raise ValueError(f"unknown model {spec!r}; choose one of: {', '.join(list_models(True))}, or a .safetensors path")
    return load_pretrained(spec, scale)

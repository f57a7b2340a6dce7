"""The model registry: an explicit table of factory functions.

``list_models()`` drives the CLI's choices and the tests' parametrisation, so a
model added here is tested the day it is added. No import-time scanning: a model
exists when a line below names it.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from .bicubic import Bicubic, bicubic
from .espcn import ESPCN, espcn
from .fsrcnn import FSRCNN, fsrcnn, fsrcnn_s
from .srcnn import SRCNN, srcnn_915, srcnn_955
from .srcnn_ref import SRCNNRef, srcnn_ref

__all__ = ["list_models", "create_model", "build_from_config", "BASELINES", "Bicubic", "ESPCN", "FSRCNN", "SRCNN", "SRCNNRef"]

_MODELS: dict[str, Callable[..., nn.Module]] = {
    "srcnn_915": srcnn_915,
    "srcnn_955": srcnn_955,
    "srcnn_ref": srcnn_ref,
    "fsrcnn": fsrcnn,
    "fsrcnn_s": fsrcnn_s,
    "espcn": espcn,
}
# Parameter-free baselines: usable everywhere a model is, but not trainable.
BASELINES: dict[str, Callable[..., nn.Module]] = {"bicubic": bicubic}

# Architecture classes by name, for rebuilding a model from a checkpoint's sidecar.
ARCHITECTURES: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in (SRCNN, SRCNNRef, FSRCNN, ESPCN, Bicubic)}


def list_models(include_baselines: bool = False) -> list[str]:
    """Registered model names, sorted; ``include_baselines`` adds ``bicubic``."""
    names = list(_MODELS) + (list(BASELINES) if include_baselines else [])
    return sorted(names)


def create_model(name: str, scale: int, **kwargs) -> nn.Module:
    """Build a registered model with fresh weights, e.g. ``create_model("fsrcnn", 3, d=32)``."""
    factory = _MODELS.get(name) or BASELINES.get(name)
    if factory is None:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models(True))}")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    try:
        model = factory(scale, **kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for model {name!r}: {exc}") from None
    model.registry_name = name
    return model


def build_from_config(arch: str, args: dict, name: str | None = None) -> nn.Module:
    """Rebuild a model from a checkpoint's ``arch`` and constructor ``args``."""
    cls = ARCHITECTURES.get(arch)
    if cls is None:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    try:
        model = cls(**args)
    except TypeError as exc:
        raise ValueError(f"bad arguments for architecture {arch!r}: {exc}") from None
    model.registry_name = name or arch.lower()
    return model

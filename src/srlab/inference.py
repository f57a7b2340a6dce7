"""The inference path every user-facing command goes through.

``prepare(model)`` returns a module ready for fast CPU/GPU inference of
``lr -> sr`` (eval mode; later optimisations plug in here), and ``run`` calls
it without autograd. Keeping this in one place means ``srlab upscale``,
``srlab.upscale`` and the benchmarks all get the same, fastest path.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["prepare", "run"]


def prepare(model: nn.Module) -> nn.Module:
    """An inference-ready version of ``model`` (same outputs, eval mode, no gradients)."""
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def run(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """``model(lr)`` under ``torch.inference_mode``; ``lr`` is ``(N, C, h, w)`` float in [0, 1]."""
    with torch.inference_mode():
        return model(lr)

"""Geometric self-ensemble: the model run on the 8 flips and rotations of its input.

A convolutional SR network is not exactly equivariant to flips and 90-degree
rotations (its filters are not symmetric), so the 8 dihedral versions of an
input give 8 slightly different predictions. Transforming each prediction back
and averaging them is a cheap test-time ensemble: 8 times the inference cost,
no training. Lim et al. (EDSR, 2017) named models scored this way with a "+"
("EDSR+"); srlab does the same ("fsrcnn+"), because the papers reproduced
here (SRCNN, FSRCNN, ESPCN) scored single passes and their tables must be
compared with single passes.

The 8 transforms are ``rot90(x, k)`` for ``k`` in 0..3, each with and without a
horizontal flip. All of them map the LR grid onto itself the way they map the HR
grid, so the average is taken on the same output pixels as one pass.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SelfEnsemble", "dihedral", "undo_dihedral"]

# Spatial dimensions of an (N, C, H, W) tensor.
_HW = (-2, -1)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Transform ``k`` (0..7) of ``(..., H, W)``: ``k % 4`` quarter turns, then a flip when ``k >= 4``."""
    if not 0 <= k < 8:
        raise ValueError(f"dihedral transform index must be 0..7, got {k}")
    x = torch.rot90(x, k % 4, _HW)
    return torch.flip(x, (-1,)) if k >= 4 else x


def undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of :func:`dihedral`: ``undo_dihedral(dihedral(x, k), k) == x``."""
    if not 0 <= k < 8:
        raise ValueError(f"dihedral transform index must be 0..7, got {k}")
    if k >= 4:
        x = torch.flip(x, (-1,))
    return torch.rot90(x, -(k % 4), _HW)


class SelfEnsemble(nn.Module):
    """``model`` averaged over the 8 flips and rotations of its input.

    Args:
        model: maps ``(N, C, h, w)`` to ``(N, C', s*h, s*w)``; it keeps its own
            mode (eval, fast path) and is called 8 times per forward.

    The wrapper carries the model's ``scale``, ``hparams`` and ``registry_name``
    so it can stand wherever the model stands (``srlab eval``, the upscaler).
    The average is accumulated in the output's dtype, one prediction at a
    time, so memory is one extra output, not eight.
    """

    TRANSFORMS = 8

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.scale = getattr(model, "scale", None)
        self.hparams = dict(getattr(model, "hparams", {}))
        self.registry_name = getattr(model, "registry_name", type(model).__name__.lower())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for k in range(self.TRANSFORMS):
            # rot90/flip return strided views; the fast path wants a dense input.
            y = undo_dihedral(self.model(dihedral(x, k).contiguous()), k)
            total = y.clone() if total is None else total.add_(y)
        return total / self.TRANSFORMS

"""The bicubic baseline as a parameter-free model, so it runs through the same
evaluation, upscaling and comparison code as the networks."""

from __future__ import annotations

import torch
from torch import nn

from ..imresize import imresize


class Bicubic(nn.Module):
    """MATLAB-compatible bicubic upscaling by ``scale``; no parameters."""

    def __init__(self, scale: int, channels: int = 1):
        super().__init__()
        self.hparams = dict(scale=scale, channels=channels)
        self.scale = scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return lr if self.scale == 1 else imresize(lr, float(self.scale))


def bicubic(scale: int, **kwargs) -> Bicubic:
    return Bicubic(scale, **kwargs)

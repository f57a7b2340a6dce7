"""SRCNN: Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional
Networks", ECCV 2014 / TPAMI 2016.

Three convolutions on the bicubic-upscaled image: patch extraction (f1 x f1, n1
filters), non-linear mapping (f2 x f2, n2 filters), reconstruction (f3 x f3).
The paper's 9-1-5 and 9-5-5 networks are registered as ``srcnn_915`` and
``srcnn_955``. Unlike the paper's MATLAB code, this module takes the LR image
and does the MATLAB-bicubic upscaling itself, so that every srlab model has the
same interface ``model(lr) -> sr``. Zero "same" padding keeps the size.
"""

from __future__ import annotations

import torch
from torch import nn

from ..imresize import imresize


class SRCNN(nn.Module):
    """``SRCNN(scale)(lr)``: ``(N, channels, h, w)`` in [0, 1] -> ``(N, channels, scale*h, scale*w)``."""

    def __init__(self, scale: int, channels: int = 1, f1: int = 9, f2: int = 5, f3: int = 5, n1: int = 64, n2: int = 32):
        super().__init__()
        self.hparams = dict(scale=scale, channels=channels, f1=f1, f2=f2, f3=f3, n1=n1, n2=n2)
        self.scale = scale
        self.patch_extraction = nn.Conv2d(channels, n1, f1, padding=f1 // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.nonlinear_mapping = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.reconstruction = nn.Conv2d(n2, channels, f3, padding=f3 // 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The paper draws from N(0, 0.001); with Adam that only slows the start,
        # so use He init for the ReLU layers and a small one for the output.
        for conv in (self.patch_extraction, self.nonlinear_mapping):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.reconstruction.weight, std=0.001)
        nn.init.zeros_(self.reconstruction.bias)

    def upscale_input(self, lr: torch.Tensor) -> torch.Tensor:
        """The bicubic image the convolutions refine (identity at scale 1)."""
        return lr if self.scale == 1 else imresize(lr, float(self.scale))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.upscale_input(lr)
        x = self.relu1(self.patch_extraction(x))
        x = self.relu2(self.nonlinear_mapping(x))
        return self.reconstruction(x)


def srcnn_915(scale: int, **kwargs) -> SRCNN:
    """The paper's base network: 9-1-5, n1=64, n2=32."""
    return SRCNN(scale, **{"f1": 9, "f2": 1, "f3": 5, **kwargs})


def srcnn_955(scale: int, **kwargs) -> SRCNN:
    """The paper's best trade-off: 9-5-5, n1=64, n2=32."""
    return SRCNN(scale, **{"f1": 9, "f2": 5, "f3": 5, **kwargs})

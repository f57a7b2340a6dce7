"""FSRCNN: Dong, Loy, Tang, "Accelerating the Super-Resolution Convolutional
Neural Network", ECCV 2016.

Works on the LR image itself: feature extraction (5x5, d), shrinking (1x1, s),
m mapping layers (3x3, s), expanding (1x1, d), each followed by PReLU, and a
9x9 deconvolution with stride ``scale`` that produces the HR image. Registered
as ``fsrcnn`` (d=56, s=12, m=4) and ``fsrcnn_s`` (d=32, s=5, m=1).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _conv_prelu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.PReLU(cout, init=0.25))


class FSRCNN(nn.Module):
    """``FSRCNN(scale)(lr)``: ``(N, channels, h, w)`` in [0, 1] -> ``(N, channels, scale*h, scale*w)``."""

    def __init__(self, scale: int, channels: int = 1, d: int = 56, s: int = 12, m: int = 4):
        super().__init__()
        self.hparams = dict(scale=scale, channels=channels, d=d, s=s, m=m)
        self.scale = scale
        self.feature_extraction = _conv_prelu(channels, d, 5)
        self.shrinking = _conv_prelu(d, s, 1)
        self.mapping = nn.Sequential(*[_conv_prelu(s, s, 3) for _ in range(m)])
        self.expanding = _conv_prelu(s, d, 1)
        # padding 4 and output_padding scale-1 make the output exactly scale*h x scale*w.
        self.deconvolution = nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4, output_padding=scale - 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's initialisation: He-style normal for convolutions, N(0, 0.001) for the deconvolution."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(module.bias)
        self.reset_deconvolution()

    def reset_deconvolution(self) -> None:
        nn.init.normal_(self.deconvolution.weight, 0.0, 0.001)
        nn.init.zeros_(self.deconvolution.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.feature_extraction(lr)
        x = self.shrinking(x)
        x = self.mapping(x)
        x = self.expanding(x)
        return self.deconvolution(x)


def fsrcnn(scale: int, **kwargs) -> FSRCNN:
    """FSRCNN(56, 12, 4), the paper's main network."""
    return FSRCNN(scale, **{"d": 56, "s": 12, "m": 4, **kwargs})


def fsrcnn_s(scale: int, **kwargs) -> FSRCNN:
    """FSRCNN-s (32, 5, 1), the paper's small real-time network."""
    return FSRCNN(scale, **{"d": 32, "s": 5, "m": 1, **kwargs})

"""ESPCN: Shi et al., "Real-Time Single Image and Video Super-Resolution Using
an Efficient Sub-Pixel Convolutional Neural Network", CVPR 2016.

Three convolutions on the LR image (f1=5, n1=64; f2=3, n2=32; f3=3 producing
``channels * scale^2`` maps, tanh between) and a periodic shuffle (PixelShuffle)
that rearranges the last layer's maps into the HR image.
"""

from __future__ import annotations

import torch
from torch import nn


class ESPCN(nn.Module):
    """``ESPCN(scale)(lr)``: ``(N, channels, h, w)`` in [0, 1] -> ``(N, channels, scale*h, scale*w)``."""

    def __init__(self, scale: int, channels: int = 1, f1: int = 5, f2: int = 3, f3: int = 3, n1: int = 64, n2: int = 32):
        super().__init__()
        self.hparams = dict(scale=scale, channels=channels, f1=f1, f2=f2, f3=f3, n1=n1, n2=n2)
        self.scale = scale
        self.conv1 = nn.Conv2d(channels, n1, f1, padding=f1 // 2)
        self.act1 = nn.Tanh()
        self.conv2 = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.act2 = nn.Tanh()
        self.conv3 = nn.Conv2d(n2, channels * scale * scale, f3, padding=f3 // 2)
        self.pixel_shuffle = nn.PixelShuffle(scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in (self.conv1, self.conv2):
            nn.init.xavier_normal_(conv.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.conv3.weight, std=0.001)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.conv1(lr))
        x = self.act2(self.conv2(x))
        return self.pixel_shuffle(self.conv3(x))


def espcn(scale: int, **kwargs) -> ESPCN:
    """ESPCN with the paper's (5, 64) - (3, 32) - (3, r^2) layout."""
    return ESPCN(scale, **kwargs)

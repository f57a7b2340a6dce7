"""The reference experiment's "SRCNN" (see REFERENCE-EXPERIMENT.md).

Not the paper's network: conv 5x5 (64), conv 3x3 (64), conv 3x3 (32),
conv 3x3 (channels * scale^2), ReLU between, then PixelShuffle(scale), with
orthogonal initialisation (ReLU gain on the first three). The experiment used
it at scale 1 on the bicubic-upscaled image (``srlab upscale --mode restore``);
at scale > 1 it runs on the LR image like ESPCN. Kept to reproduce that setting.
"""

from __future__ import annotations

import torch
from torch import nn


class SRCNNRef(nn.Module):
    """``SRCNNRef(scale)(lr)``: ``(N, channels, h, w)`` -> ``(N, channels, scale*h, scale*w)``."""

    def __init__(self, scale: int, channels: int = 1):
        super().__init__()
        self.hparams = dict(scale=scale, channels=channels)
        self.scale = scale
        self.conv1 = nn.Conv2d(channels, 64, 5, padding=2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(64, 32, 3, padding=1)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv4 = nn.Conv2d(32, channels * scale * scale, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        gain = nn.init.calculate_gain("relu")
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.orthogonal_(conv.weight, gain)
            nn.init.zeros_(conv.bias)
        nn.init.orthogonal_(self.conv4.weight)
        nn.init.zeros_(self.conv4.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(lr))
        x = self.relu2(self.conv2(x))
        x = self.relu3(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))


def srcnn_ref(scale: int, **kwargs) -> SRCNNRef:
    """The reference experiment's 4-convolution sub-pixel network."""
    return SRCNNRef(scale, **kwargs)

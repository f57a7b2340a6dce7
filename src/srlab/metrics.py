"""PSNR and SSIM with the SR papers' conventions as arguments.

Both take ``(N, C, H, W)`` tensors (or ``(H, W)`` / ``(H, W, C)`` numpy arrays)
with values in ``[0, data_range]`` and return one value **per image**
(float64, shape ``(N,)``), so a benchmark mean is a mean of per-image scores,
never a score of a batch-mean error. Conventions:

* ``crop_border``: pixels shaved from every side before measuring (the papers
  shave ``scale``);
* ``test_y_channel``: if the inputs are RGB, convert to BT.601 Y first;
* ``data_range``: 255 for uint8 levels, 1.0 for normalised floats.

SSIM is Wang et al.'s reference ``ssim_index.m``: 11x11 Gaussian window,
sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid' filtering (no padding), mean of the
SSIM map, computed per channel and averaged. It equals scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``; the test suite checks that.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .color import rgb_to_y

__all__ = ["psnr", "ssim", "PSNR", "SSIM"]


def _prepare(x, y, crop_border: int, test_y_channel: bool, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Both inputs as float64 ``(N, C, H, W)``, Y-converted and shaved."""

    def as_nchw(a) -> torch.Tensor:
        if isinstance(a, np.ndarray):
            t = torch.from_numpy(np.asarray(a, dtype=np.float64))
            t = t.unsqueeze(-1) if t.ndim == 2 else t
            return t.permute(2, 0, 1).unsqueeze(0)
        if isinstance(a, torch.Tensor):
            t = a.detach().to(torch.float64)
            if t.ndim == 3:
                t = t.unsqueeze(0)
            if t.ndim != 4:
                raise ValueError(f"expected (N, C, H, W) or (C, H, W), got shape {tuple(a.shape)}")
            return t
        raise TypeError(f"expected a torch.Tensor or numpy.ndarray, got {type(a).__name__}")

    x, y = as_nchw(x), as_nchw(y)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if test_y_channel and x.shape[1] == 3:
        x, y = rgb_to_y(x, data_range), rgb_to_y(y, data_range)
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    if x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"nothing left after shaving {crop_border} pixels from shape {tuple(x.shape)}")
    return x, y


def psnr(x, y, crop_border: int = 0, test_y_channel: bool = False, data_range: float = 255.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` per image.

    Identical images give ``inf``.
    """
    x, y = _prepare(x, y, crop_border, test_y_channel, data_range)
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range**2 / mse)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian; the reference's 2-D window is its outer product."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = _gaussian_1d(size, sigma)
    return torch.outer(g, g)


def ssim(x, y, crop_border: int = 0, test_y_channel: bool = False, data_range: float = 255.0) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004 reference) per image, in [-1, 1]."""
    x, y = _prepare(x, y, crop_border, test_y_channel, data_range)
    if min(x.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after shaving, got {tuple(x.shape[-2:])}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n, c = x.shape[:2]
    g = _gaussian_1d().to(x.device)
    # The window is separable: two 1-D passes equal the 11x11 filter to ~1e-15 and are
    # ~10x faster in float64 (torch has no fast float64 2-D convolution on CPU).
    # All five maps go through one grouped convolution.
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    k = 5 * c
    blurred = F.conv2d(F.conv2d(maps, g.view(1, 1, 11, 1).expand(k, 1, 11, 1), groups=k), g.view(1, 1, 1, 11).expand(k, 1, 1, 11), groups=k)
    mu_x, mu_y, xx, yy, xy = blurred.split(c, dim=1)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.reshape(n, c, -1).mean(dim=-1).mean(dim=1)


class _Metric(nn.Module):
    def __init__(self, crop_border: int = 0, test_y_channel: bool = False, data_range: float = 255.0):
        super().__init__()
        self.crop_border = crop_border
        self.test_y_channel = test_y_channel
        self.data_range = data_range

    def extra_repr(self) -> str:
        return f"crop_border={self.crop_border}, test_y_channel={self.test_y_channel}, data_range={self.data_range}"


class PSNR(_Metric):
    """Module twin of :func:`psnr`; returns the per-image values ``(N,)``."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return psnr(x, y, self.crop_border, self.test_y_channel, self.data_range)


class SSIM(_Metric):
    """Module twin of :func:`ssim`; returns the per-image values ``(N,)``."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ssim(x, y, self.crop_border, self.test_y_channel, self.data_range)

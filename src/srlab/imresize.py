"""MATLAB-compatible ``imresize(x, scale, 'bicubic')``.

The super-resolution papers (SRCNN, FSRCNN, VDSR, ...) made their low-resolution
inputs and their bicubic baselines with MATLAB's ``imresize``. Its numbers differ
from PIL, OpenCV and ``torch.nn.functional.interpolate`` in three ways, all
reproduced here:

* the cubic kernel has ``a = -0.5`` (Keys);
* when downscaling, the kernel is stretched by ``1 / scale`` (antialiasing), so
  each output pixel averages ``4 / scale`` input pixels;
* output pixel ``i`` (1-based) maps to input coordinate
  ``u = i / scale + 0.5 * (1 - 1 / scale)`` and the image is extended by
  symmetric (mirror, edge pixel repeated) padding.

Height is resized before width (MATLAB sorts the dimensions by scale; for equal
scales it keeps that order). Works on torch tensors ``(..., H, W)`` in float32 or
float64 and on numpy arrays ``(H, W)`` or ``(H, W, C)``; values are not clipped
or rounded, so ranges follow the input.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["imresize", "output_size"]


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def _contributions(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(out_len, P)`` into the input and float64 weights ``(out_len, P)``.

    A direct transcription of MATLAB's ``contributions()``; cached because the
    same sizes recur (every image of a benchmark, every tile of an image).
    """
    kernel_width = 4.0
    stretch = antialias and scale < 1
    if stretch:
        kernel_width /= scale
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64).unsqueeze(0)
    dist = u.unsqueeze(1) - indices
    weights = scale * _cubic(dist * scale) if stretch else _cubic(dist)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Symmetric padding: index 0 maps to 1, -1 to 2, in_len+1 to in_len, ...
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    idx = mirror[torch.remainder(indices.long() - 1, 2 * in_len)]
    # MATLAB drops taps whose weight is zero for every output pixel.
    keep = weights.abs().sum(dim=0) > 0
    return idx[:, keep].contiguous(), weights[:, keep].contiguous()


def output_size(in_len: int, scale: float) -> int:
    """MATLAB's output length: ``ceil(in_len * scale)``."""
    return int(math.ceil(in_len * scale - 1e-9))


def _resize_last_dim(x: torch.Tensor, scale: float, out_len: int, antialias: bool) -> torch.Tensor:
    idx, w = _contributions(x.shape[-1], out_len, float(scale), antialias)
    idx, w = idx.to(x.device), w.to(device=x.device, dtype=x.dtype)
    gathered = x[..., idx]  # (..., out_len, P)
    return (gathered * w).sum(dim=-1)


def _imresize_torch(x: torch.Tensor, scale: float, size: tuple[int, int] | None, antialias: bool) -> torch.Tensor:
    if not torch.is_floating_point(x):
        raise TypeError(f"imresize expects a float tensor, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"imresize expects (..., H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    out_h, out_w = size if size is not None else (output_size(h, scale), output_size(w, scale))
    scale_h = scale if size is None else out_h / h
    scale_w = scale if size is None else out_w / w
    y = _resize_last_dim(x.transpose(-1, -2), scale_h, out_h, antialias).transpose(-1, -2)
    return _resize_last_dim(y, scale_w, out_w, antialias)


def imresize(
    x: torch.Tensor | np.ndarray,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor | np.ndarray:
    """Resize like MATLAB's ``imresize(x, scale, 'bicubic')``.

    Args:
        x: torch tensor ``(..., H, W)`` (float32/float64; e.g. ``(N, C, H, W)``),
            or numpy array ``(H, W)`` / ``(H, W, C)`` of any numeric dtype
            (computed in float64; returned as float64).
        scale: zoom factor, e.g. ``1/3`` to downscale or ``3`` to upscale.
        size: ``(out_h, out_w)`` instead of ``scale``.
        antialias: MATLAB's default ``True`` widens the kernel when downscaling.

    Returns:
        The resized array, same kind as ``x``; values are not clipped.
    """
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of scale or size")
    if scale is not None and not scale > 0:
        raise ValueError(f"imresize scale must be > 0, got {scale}")
    if isinstance(x, np.ndarray):
        if x.ndim not in (2, 3):
            raise ValueError(f"imresize expects a numpy array (H, W) or (H, W, C), got shape {x.shape}")
        t = torch.from_numpy(np.asarray(x, dtype=np.float64))
        t = t.permute(2, 0, 1) if t.ndim == 3 else t
        out = _imresize_torch(t, scale, size, antialias)
        out = out.permute(1, 2, 0) if out.ndim == 3 else out
        return out.numpy()
    if isinstance(x, torch.Tensor):
        return _imresize_torch(x, scale, size, antialias)
    raise TypeError(f"imresize expects a torch.Tensor or numpy.ndarray, got {type(x).__name__}")

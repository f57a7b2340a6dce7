"""RGB <-> YCbCr in the ITU-R BT.601 "studio swing" convention of MATLAB's ``rgb2ycbcr``.

For 8-bit data Y lies in [16, 235] and Cb, Cr in [16, 240]. The SR papers
evaluate on this Y channel, so this module is part of the benchmark protocol.

Functions take arrays in the range ``[0, data_range]`` (255 for uint8 levels,
1.0 for normalised floats), channels last for numpy ``(..., 3)`` and channels
first for torch ``(N, 3, H, W)``; the output uses the same range.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_y"]

# MATLAB's origT and origOffset, for RGB in [0, 1] and YCbCr in [0, 255].
_T = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
)
_OFFSET = np.array([16.0, 128.0, 128.0])
_T_INV = np.linalg.inv(_T)


def _apply(x, matrix: np.ndarray, offset: np.ndarray, channel_axis: int):
    if isinstance(x, torch.Tensor):
        if x.shape[channel_axis] != 3:
            raise ValueError(f"expected 3 channels on dim {channel_axis}, got shape {tuple(x.shape)}")
        m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
        o = torch.as_tensor(offset, dtype=x.dtype, device=x.device)
        moved = x.movedim(channel_axis, -1)
        return (moved @ m.T + o).movedim(-1, channel_axis)
    x = np.asarray(x, dtype=np.float64)
    if x.shape[channel_axis] != 3:
        raise ValueError(f"expected 3 channels on axis {channel_axis}, got shape {x.shape}")
    moved = np.moveaxis(x, channel_axis, -1)
    return np.moveaxis(moved @ matrix.T + offset, -1, channel_axis)


def rgb_to_ycbcr(rgb, data_range: float = 255.0, channel_axis: int | None = None):
    """RGB -> YCbCr (BT.601 studio swing), same range in and out.

    ``channel_axis`` defaults to -1 for numpy and 1 (NCHW) for torch. Values
    are not rounded; MATLAB rounds uint8 results, do that yourself if needed.
    """
    axis = channel_axis if channel_axis is not None else (1 if isinstance(rgb, torch.Tensor) else -1)
    # Work in MATLAB's units: RGB in [0, 1], YCbCr in [0, 255].
    ycc = _apply(rgb / data_range, _T, _OFFSET, axis)
    return ycc * (data_range / 255.0)


def ycbcr_to_rgb(ycbcr, data_range: float = 255.0, channel_axis: int | None = None):
    """YCbCr (BT.601 studio swing) -> RGB, the exact inverse of :func:`rgb_to_ycbcr`."""
    axis = channel_axis if channel_axis is not None else (1 if isinstance(ycbcr, torch.Tensor) else -1)
    scaled = ycbcr * (255.0 / data_range)
    rgb = _apply(scaled, _T_INV, -_T_INV @ _OFFSET, axis)
    return rgb * data_range


def rgb_to_y(rgb, data_range: float = 255.0, channel_axis: int | None = None):
    """The Y channel only, keeping the channel dimension (size 1)."""
    axis = channel_axis if channel_axis is not None else (1 if isinstance(rgb, torch.Tensor) else -1)
    ycc = rgb_to_ycbcr(rgb, data_range, axis)
    if isinstance(ycc, torch.Tensor):
        return ycc.narrow(axis, 0, 1)
    return np.take(ycc, [0], axis=axis)

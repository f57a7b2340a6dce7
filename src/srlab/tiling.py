"""Tiled inference: any image size in bounded memory, with the same result as one pass.

The LR image is cut into tiles of ``tile x tile`` LR pixels. Each tile is run
with a margin of ``margin`` extra LR pixels on every side (clipped at the image
border), and only the centre, the part that belongs to the tile, is kept. When
the margin covers the function's receptive field, every kept output pixel sees
exactly the inputs it sees in a whole-image pass; tiles on the image border
touch the border just as the whole image does, so the models' zero padding and
the bicubic's mirror padding act the same. Tiled and whole results then differ
only by float rounding (different convolution blockings), about 1e-6.

The margin is measured, not guessed: :func:`receptive_margin` puts a NaN in one
LR pixel of a probe image and sees which output pixels turn NaN. NaN spreads
through every multiply-add, ReLU, PReLU and tanh whatever the weights are, so
this finds the structural receptive field of any model or composed function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch

__all__ = ["Tile", "DEFAULT_TILE", "iter_tiles", "receptive_margin", "tiled_apply"]

# 256 LR pixels: an x4 SRCNN tile is then ~1100^2 HR pixels x 64 float32 channels
# (~300 MB), and the margin costs FSRCNN < 10 % extra work.
DEFAULT_TILE = 256

# A per-pixel function: (1, C, h, w) -> (1, C', s*h, s*w).
TileFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Tile:
    """One tile in LR pixels: the core ``[y0, y1) x [x0, x1)`` it owns, and the
    padded window ``[py0, py1) x [px0, px1)`` that is actually run."""

    y0: int
    y1: int
    x0: int
    x1: int
    py0: int
    py1: int
    px0: int
    px1: int


def iter_tiles(height: int, width: int, tile: int, margin: int) -> Iterator[Tile]:
    """Tiles covering an ``height x width`` LR image row by row; ``tile <= 0`` means one tile."""
    if height < 1 or width < 1:
        raise ValueError(f"image must have at least one pixel, got {height}x{width}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    th = height if tile <= 0 else tile
    tw = width if tile <= 0 else tile
    for y0 in range(0, height, th):
        y1 = min(y0 + th, height)
        for x0 in range(0, width, tw):
            x1 = min(x0 + tw, width)
            yield Tile(y0, y1, x0, x1, max(0, y0 - margin), min(height, y1 + margin), max(0, x0 - margin), min(width, x1 + margin))


def count_tiles(height: int, width: int, tile: int) -> int:
    """How many tiles :func:`iter_tiles` yields."""
    if tile <= 0:
        return 1
    return math.ceil(height / tile) * math.ceil(width / tile)


def receptive_margin(fn: TileFunction, scale: int, channels: int = 1, probe: int = 33, max_probe: int = 513, device: str | torch.device = "cpu") -> int:
    """LR margin (pixels) that makes tiling with ``fn`` exact.

    A NaN in the centre LR pixel of a ``probe x probe`` image marks every
    output pixel that depends on it. If LR pixel ``c`` reaches HR rows
    ``c*s - a .. c*s + s - 1 + b``, an HR pixel depends on LR pixels at most
    ``ceil(max(a, b) / s)`` away; one more pixel is added as a guard. The probe
    grows until the NaN region stays inside it.

    Raises:
        ValueError: the output size is not ``scale`` times the input, or the
            receptive field is wider than ``max_probe`` (e.g. a global layer).
    """
    size = probe
    while size <= max_probe:
        c = size // 2
        x = torch.full((1, channels, size, size), 0.5, device=device)
        x[..., c, c] = float("nan")
        with torch.inference_mode():
            y = fn(x)
        if tuple(y.shape[-2:]) != (size * scale, size * scale):
            raise ValueError(f"function maps {size}x{size} to {tuple(y.shape[-2:])}, not x{scale}")
        bad = torch.isnan(y).flatten(0, -3).any(dim=0)
        rows = torch.nonzero(bad.any(dim=1)).flatten()
        cols = torch.nonzero(bad.any(dim=0)).flatten()
        if rows.numel() == 0:
            return 1  # nothing depends on its input (a constant); any margin is exact
        lo, hi = c * scale, c * scale + scale - 1
        reach = max(lo - int(rows.min()), int(rows.max()) - hi, lo - int(cols.min()), int(cols.max()) - hi, 0)
        touches = int(rows.min()) == 0 or int(cols.min()) == 0 or int(rows.max()) == size * scale - 1 or int(cols.max()) == size * scale - 1
        if not touches:
            return math.ceil(reach / scale) + 1
        size = 2 * size + 1
    raise ValueError(f"receptive field is wider than {max_probe} LR pixels; run without tiling (tile=0)")


def tiled_apply(
    fn: TileFunction,
    lr: torch.Tensor,
    scale: int,
    tile: int,
    margin: int,
    sink: Callable[[Tile, torch.Tensor], None] | None = None,
    progress: Callable[[Iterable[Tile], int], Iterable[Tile]] | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor | None:
    """Run ``fn`` on ``lr`` ``(1, C, H, W)`` tile by tile.

    Each tile's output core, ``(1, C', s*(y1-y0), s*(x1-x0))`` on the CPU, goes
    to ``sink(tile, core)`` if given (so the caller can quantise it straight into
    its output and keep memory bounded); otherwise the cores are pasted into one
    float tensor ``(1, C', s*H, s*W)`` that is returned. ``progress(tiles, n)``
    may wrap the tile iterator (a progress bar).
    """
    if lr.ndim != 4 or lr.shape[0] != 1:
        raise ValueError(f"tiled_apply expects (1, C, H, W), got shape {tuple(lr.shape)}")
    _, _, h, w = lr.shape
    out = None
    tiles: Iterable[Tile] = iter_tiles(h, w, tile, margin)
    if progress is not None:
        tiles = progress(tiles, count_tiles(h, w, tile))
    for t in tiles:
        window = lr[..., t.py0 : t.py1, t.px0 : t.px1].to(device)
        with torch.inference_mode():
            y = fn(window)
        if tuple(y.shape[-2:]) != ((t.py1 - t.py0) * scale, (t.px1 - t.px0) * scale):
            raise ValueError(f"function output {tuple(y.shape[-2:])} is not x{scale} of its input {(t.py1 - t.py0, t.px1 - t.px0)}")
        oy, ox = (t.y0 - t.py0) * scale, (t.x0 - t.px0) * scale
        core = y[..., oy : oy + (t.y1 - t.y0) * scale, ox : ox + (t.x1 - t.x0) * scale].cpu()
        if sink is not None:
            sink(t, core)
            continue
        if out is None:
            out = torch.empty((1, core.shape[1], h * scale, w * scale), dtype=core.dtype)
        out[..., t.y0 * scale : t.y1 * scale, t.x0 * scale : t.x1 * scale] = core
    return out

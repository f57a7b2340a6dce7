"""Exact rewrites of trained networks that run faster on a CPU.

Two transformations, both equivalence-tested against the original modules:

1. **Deconvolution as sub-pixel convolution.** A ``ConvTranspose2d`` with stride
   ``s`` whose output is exactly ``s*h x s*w`` (FSRCNN's 9x9 layer) is rewritten as
   one ``Conv2d`` on the LR grid with ``C*s*s`` output maps, a pixel shuffle and a
   crop. Output pixel ``s*q + a'`` of the deconvolution is ``sum_u x[q+u] W[a'+p-s*u]``
   (padding ``p``), so each of the ``s*s`` output phases is a small convolution of
   the LR features; choosing the phases ``a'`` centred (``a' in [-c, s-1-c]``)
   gives every phase the same tap window, which is what lets one convolution and
   one pixel shuffle compute them all. For FSRCNN x3 the window is 3x3: the
   sub-pixel layer does exactly the deconvolution's 81 multiply-adds per LR pixel
   and input channel, without the zero-stuffing a transposed convolution implies.

2. **Tiling.** At 1080p output the 56-channel feature maps of FSRCNN are 52 MB
   each; run layer by layer, every layer streams them through memory and every
   fresh buffer page-faults. :class:`TiledConvNet` runs the whole network band by
   band (each tile padded with exactly the halo its receptive field needs), so
   the intermediates stay in cache, and gives whole tiles to separate threads.
   Zero padding at the real image border is kept at every layer; interior tile
   edges are cropped after each layer, so the result equals the untiled network
   up to float summation order (tested within 1e-5). The cost is the recomputed halo:
   ~20% more multiply-adds for FSRCNN at the default tile.

Everything else is plain PyTorch: convolutions go straight to oneDNN in
channels-last layout, nothing is compiled or traced, so the first call is only
a few milliseconds slower than the next (see docs/SPEED.md).
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .imresize import imresize

__all__ = [
    "DEFAULT_TILE",
    "SubPixelPlan",
    "subpixel_plan",
    "conv_plan",
    "SubPixelConv",
    "TiledConvNet",
    "fast_fsrcnn",
    "fast_espcn",
    "fast_srcnn",
    "fast_srcnn_ref",
]

# Tile (rows, columns) in the grid the convolutions run on, measured with
# `python benchmarks/inference.py --sweep-tiles fsrcnn` on a quiet machine (docs/SPEED.md):
# full-width bands of a 640-wide image need no left/right halo, and 48 rows (45 after
# evening out over 2 threads) beat 32: the 15-row halo costs less than the maps' extra
# size outside L2 (1 thread, 1080p output: 85.8 ms against 96.0; 64 rows: 82.4).
DEFAULT_TILE = (48, 640)


@dataclass(frozen=True)
class SubPixelPlan:
    """How a strided deconvolution maps onto a convolution + pixel shuffle.

    ``weight`` is ``(C*s*s, C_in, T, T)`` and ``bias`` ``(C*s*s,)``; the convolution
    pads ``padding`` zeros on every side; after ``pixel_shuffle(s)`` the HR image starts at
    row/column ``crop`` (output pixel ``s*q + a'`` with ``a' in [-shift, s-1-shift]``
    comes from LR taps ``q + lo .. q + lo + T - 1``). ``halo_lo``/``halo_hi`` are the
    LR pixels needed before/after a tile.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    scale: int
    padding: int
    crop: int
    lo: int
    shift: int

    @property
    def halo_lo(self) -> int:
        return -self.lo

    @property
    def halo_hi(self) -> int:
        return self.lo + self.weight.shape[-1] - 1 + (1 if self.shift > 0 else 0)


def _tap_window(s: int, p: int, k: int, shift: int) -> tuple[int, int]:
    """LR tap range ``[lo, hi]`` covering all phases ``a' in [-shift, s-1-shift]``."""
    lo = min(math.ceil((a + p - k + 1) / s) for a in range(-shift, s - shift))
    hi = max((a + p) // s for a in range(-shift, s - shift))
    return lo, hi


def subpixel_plan(deconv: nn.ConvTranspose2d) -> SubPixelPlan:
    """The exact sub-pixel form of ``deconv`` (square kernel and stride, output ``s*h x s*w``).

    Raises:
        ValueError: the layer is not of that kind (groups, dilation, non-square
            parameters, or an output size other than ``s*h``).
    """
    if not isinstance(deconv, nn.ConvTranspose2d):
        raise TypeError(f"expected nn.ConvTranspose2d, got {type(deconv).__name__}")
    (k, k2), (s, s2), (p, p2) = deconv.kernel_size, deconv.stride, deconv.padding
    (op, op2), (d, d2) = deconv.output_padding, deconv.dilation
    if k != k2 or s != s2 or p != p2 or op != op2 or d != 1 or d2 != 1 or deconv.groups != 1:
        raise ValueError("sub-pixel rewrite needs a square, undilated, ungrouped ConvTranspose2d")
    if k - 2 * p + op - s != 0:
        raise ValueError(f"deconvolution output is not exactly {s}x the input (kernel {k}, padding {p}, output_padding {op})")
    # The phase shift that needs the smallest common tap window (for s=3: centred phases, 3 taps).
    shift = min(range(s), key=lambda c: (_tap_window(s, p, k, c)[1] - _tap_window(s, p, k, c)[0], c))
    lo, hi = _tap_window(s, p, k, shift)
    t = hi - lo + 1
    w = deconv.weight.detach()  # (C_in, C, k, k)
    c_in, c_out = w.shape[0], w.shape[1]
    taps = torch.zeros(c_out, s, s, c_in, t, t, dtype=w.dtype, device=w.device)
    for ia in range(s):
        for v in range(t):
            ka = ia - shift + p - s * (lo + v)
            if not 0 <= ka < k:
                continue
            for ib in range(s):
                for u in range(t):
                    kb = ib - shift + p - s * (lo + u)
                    if 0 <= kb < k:
                        taps[:, ia, ib, :, v, u] = w[:, :, ka, kb].T
    bias = deconv.bias.detach() if deconv.bias is not None else w.new_zeros(c_out)
    padding = max(-lo, hi + (1 if shift > 0 else 0))
    return SubPixelPlan(
        weight=taps.reshape(c_out * s * s, c_in, t, t).contiguous(),
        bias=bias.repeat_interleave(s * s).contiguous(),
        scale=s,
        padding=padding,
        crop=s * (lo + padding) + shift,
        lo=lo,
        shift=shift,
    )


class SubPixelConv(nn.Module):
    """A drop-in, exact replacement of a strided ``ConvTranspose2d``: conv + pixel shuffle + crop.

    ``(N, C_in, h, w) -> (N, C, s*h, s*w)``.
    """

    def __init__(self, deconv: nn.ConvTranspose2d):
        super().__init__()
        plan = subpixel_plan(deconv)
        self.scale, self.padding, self.crop = plan.scale, plan.padding, plan.crop
        self.halo = (plan.halo_lo, plan.halo_hi)
        self.trim = plan.scale * (2 * plan.padding - plan.weight.shape[-1] + 1) - plan.crop
        self.weight = nn.Parameter(plan.weight, requires_grad=False)
        self.bias = nn.Parameter(plan.bias, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pixel_shuffle(F.conv2d(x, self.weight, self.bias, padding=self.padding), self.scale)
        # Both crops are constants (the conv output is s*(h + 2*padding - T + 1) long), so
        # an exported graph needs no Shape op: OpenCV DNN rejects shape-dependent slices.
        c, e = self.crop, self.trim
        return y[..., c:-e, c:-e] if e else y[..., c:, c:]


# Activations the tiled executor knows, by name; applied in place on a fresh conv output.
_ACTIVATIONS = ("prelu", "relu", "tanh", "none")


def _conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """``F.conv2d`` with stride 1; straight to oneDNN for float32 and bfloat16 CPU tensors.

    ``F.conv2d`` sends a 1x1 convolution on one thread to its slow im2col path;
    oneDNN is faster for every layer shape here (measured, 1x1: 0.14 vs 0.19 ms a tile).
    """
    if _MKLDNN and x.device.type == "cpu" and x.dtype in (torch.float32, torch.bfloat16):
        return torch.mkldnn_convolution(x, weight, bias, [padding, padding], [1, 1], [1, 1], 1)
    return F.conv2d(x, weight, bias, padding=padding)


_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch, "mkldnn_convolution")


def _crop(x: torch.Tensor, p: int, border: tuple[bool, ...], edges: list[int]) -> torch.Tensor:
    """Drop ``p`` pixels on each side of ``x`` that is not on the image border."""
    t, b, l, r = (0 if border[i] else p for i in range(4))
    for i, d in enumerate((t, b, l, r)):
        edges[i] -= d
    return x[..., t : x.shape[-2] - b, l : x.shape[-1] - r]


def _single_thread() -> None:
    torch.set_num_threads(1)


# Keyed by process id too: a forked child (a DataLoader worker) inherits the dict but
# not the threads, and would wait forever on a pool without workers.
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _tile_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads whose PyTorch ops run single-threaded.

    Small tiles parallelise badly inside one convolution (every op is a fork/join
    over a few thousand pixels), so whole tiles go to separate threads instead.
    ``torch.set_num_threads(1)`` in a worker sets that thread's OpenMP team size
    but also the process default; it is restored here once every worker has
    started, so the caller's thread count is unchanged.
    """
    with _POOL_LOCK:
        key = (os.getpid(), workers)
        pool = _POOLS.get(key)
        if pool is None:
            before = torch.get_num_threads()
            pool = ThreadPoolExecutor(workers, thread_name_prefix="srlab-tile", initializer=_single_thread)
            barrier = threading.Barrier(workers)
            list(pool.map(lambda _: barrier.wait(), range(workers)))
            torch.set_num_threads(before)
            _POOLS[key] = pool
        return pool


class TiledConvNet(nn.Module):
    """A feed-forward conv network run tile by tile, channels-last, with exact borders.

    The network is ``layers`` (convolution + activation, "same" zero padding) then
    ``last`` (a :class:`SubPixelPlan`: convolution, pixel shuffle, crop), optionally
    after ``pre`` (a whole-image function such as SRCNN's bicubic upscaling).
    Input ``(N, C, h, w)`` float32 in [0, 1] -> ``(N, C, S*h, S*w)`` with
    ``S = model_scale``. ``tile`` is the core tile ``(rows, cols)`` in the
    coordinates the conv layers see; ``None`` runs the image in one piece.
    ``workers`` threads run tiles in parallel (default: ``torch.get_num_threads()``
    at call time).

    The layers compute in the dtype of the module's parameters: ``.to(torch.bfloat16)``
    runs every tile in bfloat16 (on CPUs with AMX or AVX512-BF16 much faster for
    SRCNN; see :func:`srlab.inference.prepare`), while the input, ``pre`` and the
    output stay in the input's dtype.
    """

    def __init__(
        self,
        layers: list[tuple[nn.Conv2d, str, torch.Tensor | None]],
        last: SubPixelPlan,
        model_scale: int,
        pre: Callable[[torch.Tensor], torch.Tensor] | None = None,
        tile: tuple[int, int] | None = DEFAULT_TILE,
        workers: int | None = None,
    ):
        super().__init__()
        self.convs = nn.ModuleList()
        self.acts: list[str] = []
        self.slopes = nn.ParameterList()
        for conv, act, slope in layers:
            if act not in _ACTIVATIONS:
                raise ValueError(f"activation {act!r} not supported; use one of {_ACTIVATIONS}")
            (kh, kw), (ph, pw) = conv.kernel_size, conv.padding
            if kh != kw or ph != pw or 2 * ph != kh - 1 or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
                raise ValueError("tiled layers must be square, odd, 'same'-padded, stride 1, undilated, ungrouped convolutions")
            fresh = nn.Conv2d(conv.in_channels, conv.out_channels, kh, padding=ph, bias=conv.bias is not None)
            fresh.load_state_dict(conv.state_dict())
            self.convs.append(fresh)
            self.acts.append(act)
            self.slopes.append(nn.Parameter(slope.detach().clone() if slope is not None else torch.empty(0)))
        self.last_weight = nn.Parameter(last.weight.clone())
        self.last_bias = nn.Parameter(last.bias.clone())
        self.last_scale, self.last_padding, self.last_crop = last.scale, last.padding, last.crop
        self.pads = [c.padding[0] for c in self.convs]
        self.halo = (sum(self.pads) + last.halo_lo, sum(self.pads) + last.halo_hi)
        self.scale = model_scale
        self.pre = pre
        if tile is not None and min(tile) < max(self.halo):
            raise ValueError(f"tile {tile} is smaller than the network's halo {self.halo}")
        self.tile = tile
        self.workers = workers
        self.requires_grad_(False)
        self.to(memory_format=torch.channels_last)
        self.eval()

    def _layers(self, x: torch.Tensor, edges: list[int], border: tuple[bool, ...]) -> torch.Tensor:
        """The conv + activation layers on one tile; ``edges`` (top, bottom, left, right) counts
        the pixels beyond the tile's core and is updated as they are cropped."""
        pending = 0
        for conv, act, slope, p in zip(self.convs, self.acts, self.slopes, self.pads):
            # Interior tile edges: after a p x p-padded layer the outer p pixels used zero
            # padding where real pixels exist, so they are dropped (the halo was sized for
            # this); at the image border the zero padding is the network's own and stays.
            # 1x1 layers commute with cropping, so the crop waits for the narrowest map
            # before a spatial or widening layer: a cropped view costs oneDNN a copy.
            if pending and (p or conv.out_channels > conv.in_channels):
                x = _crop(x, pending, border, edges)
                pending = 0
            x = _conv(x, conv.weight, conv.bias, p)
            if act == "prelu":
                x = F.prelu(x, slope)
            elif act == "relu":
                x = x.relu_()
            elif act == "tanh":
                x = x.tanh_()
            pending += p
        return _crop(x, pending, border, edges) if pending else x

    def _tile(self, x: torch.Tensor, out: torch.Tensor, r0: int, r1: int, c0: int, c1: int) -> None:
        """Compute the output of LR core ``[r0, r1) x [c0, c1)`` into ``out``."""
        h, w = x.shape[-2:]
        lo, hi = self.halo
        a0, a1, b0, b1 = max(r0 - lo, 0), min(r1 + hi, h), max(c0 - lo, 0), min(c1 + hi, w)
        border = (a0 == 0, a1 == h, b0 == 0, b1 == w)
        edges = [r0 - a0, a1 - r1, c0 - b0, b1 - c1]
        y = self._layers(x[..., a0:a1, b0:b1].to(self.last_weight.dtype), edges, border)
        s = self.last_scale
        y = _conv(y, self.last_weight, self.last_bias, self.last_padding)
        rows, cols = r1 - r0, c1 - c0
        if s == 1:
            top, left = self.last_crop + edges[0], self.last_crop + edges[2]
            out[..., r0:r1, c0:c1] = y[..., top : top + rows, left : left + cols]
            return
        # Pixel shuffle, crop and paste in one strided copy per phase group: output row
        # s*Q + A of the tile comes from conv row j and phase ia with s*j + ia = s*Q + A + top.
        shift = self.last_crop % s
        z = y.unflatten(1, (-1, s, s))  # (N, C, s, s, hz, wz)
        o = out[..., s * r0 : s * r1, s * c0 : s * c1].unflatten(-1, (cols, s)).unflatten(-3, (rows, s))
        j0, i0 = self.last_crop // s + edges[0], self.last_crop // s + edges[2]
        groups = [(0, s - shift, shift, s, 0)] + ([(s - shift, s, 0, shift, 1)] if shift else [])
        for a0, a1, ia0, ia1, da in groups:
            for b0, b1, ib0, ib1, db in groups:
                src = z[:, :, ia0:ia1, ib0:ib1, j0 + da : j0 + da + rows, i0 + db : i0 + db + cols]
                o[:, :, :, a0:a1, :, b0:b1] = src.permute(0, 1, 4, 2, 5, 3)

    def _tile_shape(self, h: int, w: int, workers: int) -> tuple[int, int]:
        """The tile for an ``h x w`` image: ``self.tile``, taller when the image is narrower
        (same area: short bands of a narrow image are mostly halo), and with the number of
        bands rounded up to a multiple of ``workers`` so every thread gets the same work."""
        if self.tile is None:
            return h, w
        th, tw = self.tile
        if w < tw:
            th = max(th, -(-th * tw // w))
        bands = -(-h // th)
        if bands > 1 and -(-w // tw) == 1:
            bands += -bands % workers
            th = max(-(-h // bands), max(self.halo))
        return th, tw

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4:
            raise ValueError(f"expected (N, C, h, w), got shape {tuple(lr.shape)}")
        x = self.pre(lr) if self.pre is not None else lr
        x = x.contiguous(memory_format=torch.channels_last)
        n, c, h, w = x.shape
        s = self.last_scale
        out = x.new_empty(n, self.last_weight.shape[0] // (s * s), s * h, s * w)
        workers = self.workers or torch.get_num_threads()
        th, tw = self._tile_shape(h, w, workers)
        cores = [(r0, min(r0 + th, h), c0, min(c0 + tw, w)) for r0 in range(0, h, th) for c0 in range(0, w, tw)]
        if len(cores) == 1 or workers == 1 or x.device.type != "cpu":
            for core in cores:
                self._tile(x, out, *core)
            return out
        inference = torch.is_inference_mode_enabled()  # thread-local: carry it into the workers

        def job(core: tuple[int, int, int, int]) -> None:
            with torch.inference_mode(inference):
                self._tile(x, out, *core)

        list(_tile_pool(workers).map(job, cores))
        return out


def fast_fsrcnn(model: nn.Module, tile: tuple[int, int] | None = DEFAULT_TILE, workers: int | None = None) -> TiledConvNet:
    """FSRCNN with its deconvolution in sub-pixel form, tiled (weights copied; ``model`` unchanged)."""
    blocks = [model.feature_extraction, model.shrinking, *model.mapping, model.expanding]
    layers = [(block[0], "prelu", block[1].weight) for block in blocks]
    return TiledConvNet(layers, subpixel_plan(model.deconvolution), model.scale, tile=tile, workers=workers)


def conv_plan(conv: nn.Conv2d, scale: int) -> SubPixelPlan:
    """A 'same' convolution followed by ``pixel_shuffle(scale)`` as a :class:`SubPixelPlan`."""
    p = conv.padding[0]
    bias = conv.bias.detach() if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)
    return SubPixelPlan(weight=conv.weight.detach().contiguous(), bias=bias, scale=scale, padding=p, crop=0, lo=-p, shift=0)


def fast_espcn(model: nn.Module, tile: tuple[int, int] | None = DEFAULT_TILE, workers: int | None = None) -> TiledConvNet:
    """ESPCN tiled: two tanh convolutions, then the sub-pixel layer."""
    layers = [(model.conv1, "tanh", None), (model.conv2, "tanh", None)]
    return TiledConvNet(layers, conv_plan(model.conv3, model.scale), model.scale, tile=tile, workers=workers)


def fast_srcnn_ref(model: nn.Module, tile: tuple[int, int] | None = DEFAULT_TILE, workers: int | None = None) -> TiledConvNet:
    """The reference experiment's 4-convolution sub-pixel network, tiled."""
    layers = [(model.conv1, "relu", None), (model.conv2, "relu", None), (model.conv3, "relu", None)]
    return TiledConvNet(layers, conv_plan(model.conv4, model.scale), model.scale, tile=tile, workers=workers)


# SRCNN's tiles live on the HR grid and its 64->32 5x5 layer is compute-bound, so taller
# and wider bands win there (measured: `python benchmarks/inference.py --sweep-tiles srcnn_955`,
# results in docs/SPEED.md).
SRCNN_TILE = (128, 1024)


def fast_srcnn(model: nn.Module, tile: tuple[int, int] | None = SRCNN_TILE, workers: int | None = None) -> TiledConvNet:
    """SRCNN: MATLAB bicubic on the whole image, then the three convolutions tiled on the HR grid."""
    layers = [(model.patch_extraction, "relu", None), (model.nonlinear_mapping, "relu", None)]
    pre = partial(_bicubic, scale=model.scale) if model.scale > 1 else None
    return TiledConvNet(layers, conv_plan(model.reconstruction, 1), model.scale, pre=pre, tile=tile, workers=workers)


def _bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    return imresize(x, float(scale))

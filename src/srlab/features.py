"""Looking inside a network: named layers, their activations, their kernels.

Works on any ``nn.Module`` that maps ``(N, C, h, w)`` to an image, with no
model-specific code: the *layers* are the leaf modules (modules without
children), in the order a forward pass calls them, named by their dotted path
(``shrinking.0``, ``mapping.2.1``). A container's name (``shrinking``) may also
be asked for and gives that container's output. A model without sub-modules
(the ``bicubic`` baseline) has the single layer ``output``.

Activations are taken with forward hooks that are removed in a ``finally``,
so a failing forward never leaves a hook behind. Each captured output is
cloned at once: SRCNN's ``ReLU(inplace=True)`` would otherwise overwrite the
convolution output it follows.

Sub-pixel view of a deconvolution: a ``ConvTranspose2d`` of stride ``s`` whose
output is exactly ``s`` times its input equals ``s*s`` small convolutions on
the LR grid followed by ``pixel_shuffle(s)``; :func:`deconv_phase_kernels`
derives those kernels (Shi et al. 2016, "Is the deconvolution layer the same
as a convolutional layer?").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .color import rgb_to_y, rgb_to_ycbcr
from .imageio import open_image
from .inference import run as run_inference

__all__ = [
    "OUTPUT",
    "LayerFilters",
    "layer_names",
    "load_input",
    "crop_input",
    "extract_features",
    "filters",
    "deconv_phase_kernels",
    "activation_stats",
]

# Name of the single layer of a model that has no sub-modules.
OUTPUT = "output"
# Default halo for tiled extraction, in input pixels: covers the receptive
# field radius of every registered model (FSRCNN needs 2 + 4 + 2 = 8).
DEFAULT_HALO = 16


def _model_channels(model: nn.Module) -> int:
    return int(getattr(model, "hparams", {}).get("channels", 1))


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _leaf_layers(model: nn.Module) -> dict[str, nn.Module]:
    leaves = {name: m for name, m in model.named_modules() if name and not any(True for _ in m.children())}
    return leaves or {OUTPUT: model}


def _resolve_layers(model: nn.Module, layers: list[str] | tuple[str, ...] | str | None) -> dict[str, nn.Module]:
    if layers is None:
        return _leaf_layers(model)
    if isinstance(layers, str):
        layers = [layers]
    named = {name: m for name, m in model.named_modules() if name}
    named.setdefault(OUTPUT, model)
    unknown = [name for name in layers if name not in named]
    if unknown:
        known = ", ".join(_leaf_layers(model))
        raise ValueError(f"unknown layer(s) {', '.join(map(repr, unknown))} in {type(model).__name__}; layers are: {known}")
    return {name: named[name] for name in dict.fromkeys(layers)}


def _run_hooked(model: nn.Module, x: torch.Tensor, modules: dict[str, nn.Module], keep: bool) -> dict[str, torch.Tensor | torch.Size]:
    """Forward ``x``; the outputs (``keep``) or output shapes of ``modules``, in call order.

    A module called more than once gives ``name``, ``name@2``, ...
    """
    captured: dict[str, torch.Tensor | torch.Size] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {name!r} returned {type(output).__name__}, not a tensor")
            key, n = name, 1
            while key in captured:
                n += 1
                key = f"{name}@{n}"
            captured[key] = output.detach().clone() if keep else output.shape

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        run_inference(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def layer_names(model: nn.Module, input_size: tuple[int, int] = (32, 32), batch: int = 1) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, output shape)`` of every layer of ``model``, in forward order.

    ``input_size`` is the ``(h, w)`` of the model's input (the LR image); the
    shapes are ``(batch, C, H, W)``. Runs one forward pass on zeros.
    """
    h, w = input_size
    if h < 1 or w < 1:
        raise ValueError(f"input_size must be positive, got {input_size}")
    x = torch.zeros(batch, _model_channels(model), h, w, device=_model_device(model))
    shapes = _run_hooked(model, x, _leaf_layers(model), keep=False)
    return [(name, tuple(shape)) for name, shape in shapes.items()]


def _pil_to_unit(img: Image.Image, channels: int) -> torch.Tensor:
    """A PIL image -> ``(1, channels, H, W)`` float in [0, 1], Y quantised to uint8 levels as ``imageio.read_y`` does."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = Image.fromarray(np.clip(np.round(np.asarray(img, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8))
    if channels == 1 and img.mode == "L":
        y = np.asarray(img, dtype=np.float64)
    elif channels == 1:
        y = np.round(rgb_to_ycbcr(np.asarray(img.convert("RGB"), dtype=np.float64), 255.0)[..., 0])
    elif channels == 3:
        y = np.asarray(img.convert("RGB"), dtype=np.float64)
    else:
        raise ValueError(f"cannot make a {channels}-channel input from a PIL image")
    y = np.clip(y, 0, 255) / 255.0
    t = torch.from_numpy(y).float()
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]


def load_input(image, channels: int = 1) -> torch.Tensor:
    """Any supported image -> the network input ``(N, channels, H, W)`` float32 in [0, 1].

    ``image`` may be a path, a PIL image, a numpy array (``(H, W)`` or
    ``(H, W, 3)``; uint8 levels or floats in [0, 1]) or a tensor (``(H, W)``,
    ``(C, H, W)`` or ``(N, C, H, W)`` in [0, 1]). With ``channels=1`` colour
    input becomes its BT.601 Y channel, the convention srlab's models use.
    """
    if isinstance(image, (str, os.PathLike)):
        return _pil_to_unit(open_image(Path(image)), channels)
    if isinstance(image, Image.Image):
        return _pil_to_unit(image, channels)
    if isinstance(image, np.ndarray):
        arr = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
        if arr.ndim == 3 and arr.shape[-1] in (1, 3):
            arr = np.moveaxis(arr, -1, 0)
        image = torch.from_numpy(arr).float()
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a path, PIL image, numpy array or tensor, got {type(image).__name__}")
    x = image.float()
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"image tensor must be (H, W), (C, H, W) or (N, C, H, W), got shape {tuple(image.shape)}")
    if x.shape[1] == 3 and channels == 1:
        x = rgb_to_y(x, data_range=1.0)
    if x.shape[1] != channels:
        raise ValueError(f"model takes {channels} channel(s), image has {x.shape[1]} (shape {tuple(image.shape)})")
    return x


def crop_input(x: torch.Tensor, crop: tuple[int, int, int, int]) -> torch.Tensor:
    """``x[..., y:y+h, x:x+w]`` for ``crop = (x, y, w, h)``; ``ValueError`` if it leaves the image."""
    cx, cy, cw, ch = crop
    h, w = x.shape[-2:]
    if cx < 0 or cy < 0 or cw < 1 or ch < 1 or cx + cw > w or cy + ch > h:
        raise ValueError(f"crop x={cx}, y={cy}, w={cw}, h={ch} is not inside the {w}x{h} image")
    return x[..., cy : cy + ch, cx : cx + cw]


def _ratios(model: nn.Module, modules: dict[str, nn.Module]) -> dict[str, tuple[Fraction, Fraction]]:
    """Output/input size ratio of each layer; only layers whose size is a fixed multiple of the input can be tiled."""
    channels, device = _model_channels(model), _model_device(model)
    probes = [(20, 28), (36, 44)]
    found = [_run_hooked(model, torch.zeros(1, channels, h, w, device=device), modules, keep=False) for h, w in probes]
    ratios = {}
    for name in found[0]:
        per_probe = {(Fraction(s[-2], h), Fraction(s[-1], w)) for s, (h, w) in zip((f[name] for f in found), probes)}
        if len(per_probe) != 1:
            raise ValueError(f"layer {name!r}: output size is not a fixed multiple of the input size, so it cannot be tiled; use a crop instead")
        ratios[name] = per_probe.pop()
    return ratios


def _extract_tiled(model: nn.Module, x: torch.Tensor, modules: dict[str, nn.Module], tile: int, halo: int) -> dict[str, torch.Tensor]:
    ratios = _ratios(model, modules)
    n, _, h, w = x.shape
    out: dict[str, torch.Tensor] = {}
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(0, y0 - halo), max(0, x0 - halo)
            py1, px1 = min(h, y1 + halo), min(w, x1 + halo)
            acts = _run_hooked(model, x[..., py0:py1, px0:px1], modules, keep=True)
            for name, a in acts.items():
                ry, rx = ratios[name.split("@")[0]]
                if name not in out:
                    out[name] = torch.empty(n, a.shape[1], int(h * ry), int(w * rx), dtype=a.dtype)
                src = [(y0 - py0) * ry, (y1 - py0) * ry, (x0 - px0) * rx, (x1 - px0) * rx]
                dst = [y0 * ry, y1 * ry, x0 * rx, x1 * rx]
                if any(v.denominator != 1 for v in src + dst):
                    raise ValueError(f"layer {name!r}: tile {tile} does not map to whole pixels (ratio {ry}); choose a tile that is a multiple of its stride")
                sy0, sy1, sx0, sx1 = (int(v) for v in src)
                dy0, dy1, dx0, dx1 = (int(v) for v in dst)
                out[name][..., dy0:dy1, dx0:dx1] = a[..., sy0:sy1, sx0:sx1].cpu()
    return out


def extract_features(
    model: nn.Module,
    image,
    layers: list[str] | tuple[str, ...] | str | None = None,
    crop: tuple[int, int, int, int] | None = None,
    tile: int | None = None,
    halo: int = DEFAULT_HALO,
) -> dict[str, torch.Tensor]:
    """Activations of ``layers`` (default: all, see :func:`layer_names`) for ``image``.

    Args:
        model: any srlab model (or ``nn.Module`` taking ``(N, C, h, w)``); run as it is, without gradients.
        image: path, PIL image, numpy array or tensor; one image or an ``(N, C, H, W)``
            batch in [0, 1] (see :func:`load_input`). It is the model's *input*: the LR image.
        layers: layer or container names; unknown names raise ``ValueError`` listing the valid ones.
        crop: ``(x, y, w, h)`` in input pixels, applied before the forward pass.
        tile: run the forward pass on ``tile x tile`` pieces (plus ``halo`` input pixels of
            context on each side) and stitch the results, so peak memory is one tile's
            forward pass plus the returned maps. Exact when ``halo`` covers the receptive field.

    Returns:
        ``{name: (N, C_l, H_l, W_l) float tensor}`` on the CPU, in forward order.
    """
    x = load_input(image, _model_channels(model))
    if crop is not None:
        x = crop_input(x, crop)
    x = x.to(_model_device(model))
    modules = _resolve_layers(model, layers)
    if tile is None:
        return {name: a.cpu() for name, a in _run_hooked(model, x, modules, keep=True).items()}
    if tile < 1 or halo < 0:
        raise ValueError(f"tile must be >= 1 and halo >= 0, got tile={tile}, halo={halo}")
    return _extract_tiled(model, x, modules, tile, halo)


@dataclass
class LayerFilters:
    """The learned kernels of one layer.

    ``weight`` is as stored: ``(out, in, kh, kw)`` for a convolution, ``(in, out, kh, kw)``
    for a transposed one. For a sub-pixel-compatible ``ConvTranspose2d`` of stride
    ``s``, ``phases`` is ``(out*s*s, in, k, k)`` with ``phase_bias`` and
    ``phase_padding`` such that ``pixel_shuffle(conv2d(x, phases, phase_bias,
    padding=phase_padding), s)`` equals the layer's output; channel ``c*s*s + ry*s + rx``
    makes the HR pixels at offset ``(ry, rx)`` of each ``s x s`` block.
    """

    layer: str
    kind: str
    weight: torch.Tensor
    bias: torch.Tensor | None
    phases: torch.Tensor | None = None
    phase_bias: torch.Tensor | None = None
    phase_padding: int | None = None
    stride: int = 1


def _single(v, what: str, layer: str) -> int:
    v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if v[0] != v[1]:
        raise ValueError(f"{layer}: {what} {v} differs between height and width; only square layouts are supported")
    return int(v[0])


def deconv_phase_kernels(deconv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """``(weight, bias, padding)`` of the ``s*s`` LR-grid convolutions equal to ``deconv``.

    With ``o = i*s - P + k`` the transposed convolution writes input ``i`` times tap
    ``k`` to output ``o``. Splitting ``o = q*s + r`` gives, for each phase ``r``,
    ``y_r[q] = sum_j x[q - j] * w[j*s + r + P]``: an ordinary convolution on the LR
    grid whose taps are every ``s``-th tap of ``w``, offset by ``r + P``. The taps
    of all phases are placed in one zero-filled ``(2p+1)`` kernel so ``conv2d`` can
    use symmetric padding ``p``.

    Requires ``groups=1``, ``dilation=1`` and an output exactly ``s`` times the
    input (``k + output_padding - 2P == s``), as in FSRCNN.
    """
    name = type(deconv).__name__
    s = _single(deconv.stride, "stride", name)
    k = _single(deconv.kernel_size, "kernel_size", name)
    pad = _single(deconv.padding, "padding", name)
    out_pad = _single(deconv.output_padding, "output_padding", name)
    if deconv.groups != 1 or _single(deconv.dilation, "dilation", name) != 1:
        raise ValueError(f"{name}: phase kernels need groups=1 and dilation=1")
    if k + out_pad - 2 * pad != s:
        raise ValueError(f"{name}: output is not exactly {s}x the input (kernel {k}, padding {pad}, output_padding {out_pad}); no sub-pixel equivalent")
    w = deconv.weight.detach()  # (in, out, k, k)
    cin, cout = w.shape[:2]
    j_lo = min(math.ceil((-r - pad) / s) for r in range(s))
    j_hi = max(math.floor((k - 1 - r - pad) / s) for r in range(s))
    p = max(j_hi, -j_lo)
    kernels = w.new_zeros(cout, s, s, cin, 2 * p + 1, 2 * p + 1)
    for ry in range(s):
        for rx in range(s):
            for jy in range(j_lo, j_hi + 1):
                ky = jy * s + ry + pad
                if not 0 <= ky < k:
                    continue
                for jx in range(j_lo, j_hi + 1):
                    kx = jx * s + rx + pad
                    if 0 <= kx < k:
                        # conv2d correlates (x[q + t - p]); the deconvolution reads x[q - j], so t = p - j.
                        kernels[:, ry, rx, :, p - jy, p - jx] = w[:, :, ky, kx].T
    bias = None if deconv.bias is None else deconv.bias.detach().repeat_interleave(s * s)
    return kernels.reshape(cout * s * s, cin, 2 * p + 1, 2 * p + 1), bias, p


def filters(model: nn.Module, layer: str) -> LayerFilters:
    """The kernels of ``layer`` (a ``Conv2d`` or ``ConvTranspose2d``), see :class:`LayerFilters`."""
    module = _resolve_layers(model, [layer])[layer]
    if isinstance(module, nn.ConvTranspose2d):
        result = LayerFilters(layer, "deconv", module.weight.detach(), None if module.bias is None else module.bias.detach())
        result.stride = _single(module.stride, "stride", layer)
        try:
            result.phases, result.phase_bias, result.phase_padding = deconv_phase_kernels(module)
        except ValueError:
            pass  # a transposed convolution without a sub-pixel layout still has its plain kernels
        return result
    if isinstance(module, nn.Conv2d):
        return LayerFilters(layer, "conv", module.weight.detach(), None if module.bias is None else module.bias.detach())
    raise ValueError(f"layer {layer!r} is a {type(module).__name__}, which has no convolution kernels")


def activation_stats(acts: torch.Tensor) -> dict:
    """Summary of one layer's ``(N, C, H, W)`` activations, in float64.

    Per layer and per channel: ``mean``, ``std`` (population), ``min``, ``max``,
    ``energy`` (mean square), ``zero_fraction`` (exactly 0: dead units after a ReLU)
    and ``negative_fraction`` (< 0: where a PReLU uses its slope). ``rank_by_energy``
    lists channel indices from the most to the least energetic.
    """
    if acts.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) activations, got shape {tuple(acts.shape)}")
    a = acts.detach().to(torch.float64).transpose(0, 1).reshape(acts.shape[1], -1)  # (C, N*H*W)

    def summary(v: torch.Tensor, dim: int | None) -> dict:
        kw = {} if dim is None else {"dim": dim}
        return {
            "mean": v.mean(**kw),
            "std": v.std(unbiased=False, **kw),
            "min": v.amin(**kw),
            "max": v.amax(**kw),
            "energy": v.square().mean(**kw),
            "zero_fraction": (v == 0).double().mean(**kw),
            "negative_fraction": (v < 0).double().mean(**kw),
        }

    per_channel = summary(a, 1)
    ranking = torch.argsort(per_channel["energy"], descending=True, stable=True).tolist()
    rank_of = {c: r for r, c in enumerate(ranking)}
    channels = [{"channel": c, "energy_rank": rank_of[c], **{k: float(v[c]) for k, v in per_channel.items()}} for c in range(a.shape[0])]
    layer = {k: float(v) for k, v in summary(a, None).items()}
    return {
        "shape": list(acts.shape),
        **layer,
        "dead_channels": sum(1 for c in channels if c["zero_fraction"] == 1.0),
        "rank_by_energy": ranking,
        "channels": channels,
    }


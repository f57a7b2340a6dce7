"""Pictures of a network's insides: feature-map grids, kernel grids, and a browsable report.

Grids are drawn with Pillow, pixel for pixel, so their size is known in
advance (see :func:`grid_size`): a title bar, then one tile per channel with a
label strip above it, then a colour bar that states the mapping. Each channel
is normalised on its own, because channels of one layer differ in scale by
orders of magnitude and a shared scale would show most of them as flat.

:func:`write_report` writes everything ``srlab features`` produces into one
folder: the PNGs, ``stats.json``/``stats.csv``, optionally ``activations.npz``,
and an ``index.html`` that shows all figures with captions.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from . import __version__
from .features import activation_stats, filters, layer_names
from .imageio import atomic_write

__all__ = ["GridStyle", "tile_shape", "grid_size", "feature_grid", "kernel_grid", "overview_figure", "write_report"]

SIGNED_MAP = "RdBu_r"  # blue < 0 < red, white at 0: shows where a PReLU will use its slope
UNSIGNED_MAP = "gray"
# A layer is drawn signed when at least this fraction of its values is negative;
# below that (a trained net's output overshooting 0 by a hair) grey reads better.
SIGNED_THRESHOLD = 0.01


@dataclass(frozen=True)
class GridStyle:
    """Geometry of a grid image, in pixels."""

    pad: int = 4
    label_h: int = 14
    title_h: int = 36
    colorbar_h: int = 30
    min_width: int = 480
    font_size: int = 11


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _lut(name: str) -> np.ndarray:
    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def tile_shape(h: int, w: int, max_side: int = 128, min_side: int = 48) -> tuple[int, int]:
    """Display size of an ``h x w`` map: area-shrunk to fit ``max_side``, or enlarged
    by a whole factor (sharp, square pixels) up to ``min_side``."""
    side = max(h, w)
    if side > max_side:
        f = max_side / side
        return max(1, round(h * f)), max(1, round(w * f))
    zoom = max(1, min_side // side)
    return h * zoom, w * zoom


def grid_size(n: int, th: int, tw: int, cols: int | None = None, style: GridStyle = GridStyle()) -> tuple[int, int]:
    """``(width, height)`` of a grid of ``n`` tiles of ``th x tw`` pixels."""
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    width = max(style.min_width, cols * (tw + style.pad) + style.pad)
    height = style.title_h + rows * (style.label_h + th + style.pad) + style.pad + style.colorbar_h
    return width, height


def _resize(maps: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """``(C, h, w)`` -> ``(C, th, tw)``: area average when shrinking, nearest when enlarging."""
    if maps.shape[-2:] == (th, tw):
        return maps
    mode = "area" if th <= maps.shape[-2] else "nearest"
    return F.interpolate(maps[None].float(), size=(th, tw), mode=mode)[0]


def _draw_grid(
    tiles: np.ndarray,
    labels: list[str],
    title: list[str],
    lut: np.ndarray,
    bar_text: tuple[str, str, str],
    cols: int | None,
    style: GridStyle,
) -> Image.Image:
    """``tiles`` ``(n, th, tw)`` in [0, 1] -> an RGB grid image with labels, title and colour bar."""
    n, th, tw = tiles.shape
    cols = cols or math.ceil(math.sqrt(n))
    width, height = grid_size(n, th, tw, cols, style)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = _font(style.font_size)
    if style.title_h < 2 * (style.font_size + 5):  # room for one line only
        title = ["; ".join(title)]
    for i, line in enumerate(title[:2]):
        draw.text((style.pad, 3 + i * (style.font_size + 5)), line, fill="black", font=font)
    colored = lut[np.clip(np.round(tiles * 255), 0, 255).astype(np.uint8)]
    for i in range(n):
        r, c = divmod(i, cols)
        x = style.pad + c * (tw + style.pad)
        y = style.title_h + r * (style.label_h + th + style.pad)
        label = labels[i]
        while label and font.getlength(label) > tw + style.pad:
            label = label.rsplit(" ", 1)[0] if " " in label else ""
        draw.text((x, y + 1), label, fill="black", font=font)
        img.paste(Image.fromarray(colored[i]), (x, y + style.label_h))
        # A frame, so tiles that are white (zero) stay visible on the white page.
        draw.rectangle((x - 1, y + style.label_h - 1, x + tw, y + style.label_h + th), outline=(170, 170, 170))
    if style.colorbar_h == 0:
        return img
    # Colour bar: the mapping from value to colour, with its three anchor values.
    y0 = height - style.colorbar_h + 2
    bar_w = width - 2 * style.pad
    bar = lut[np.linspace(0, 255, bar_w).round().astype(np.uint8)][None].repeat(10, axis=0)
    img.paste(Image.fromarray(bar), (style.pad, y0))
    draw.rectangle((style.pad - 1, y0 - 1, style.pad + bar_w, y0 + 10), outline="black")
    left, mid, right = bar_text
    ty = y0 + 12
    draw.text((style.pad, ty), left, fill="black", font=font)
    draw.text(((width - font.getlength(mid)) / 2, ty), mid, fill="black", font=font)
    draw.text((width - style.pad - font.getlength(right), ty), right, fill="black", font=font)
    return img


def _fmt(v: float) -> str:
    return f"{v:.2g}" if abs(v) >= 0.01 or v == 0 else f"{v:.0e}"


def feature_grid(
    maps: torch.Tensor,
    title: str = "",
    cols: int | None = None,
    max_side: int = 128,
    min_side: int = 48,
    signed: bool | None = None,
    style: GridStyle = GridStyle(),
    channel_ids: list[int] | None = None,
) -> Image.Image:
    """One tile per channel of ``maps`` ``(C, H, W)``, each normalised on its own.

    Signed maps (default: when at least 1% of values are negative) use a diverging
    map, white at 0, from ``-max|a|`` (blue) to ``+max|a|`` (red) of each channel;
    others run from the channel's min (black) to its max (white). Each tile is
    labelled with its channel index (``channel_ids[i]`` when the maps are a
    selection) and its range. Size: :func:`grid_size` of :func:`tile_shape`.
    """
    if maps.ndim != 3:
        raise ValueError(f"expected (C, H, W) feature maps, got shape {tuple(maps.shape)}")
    maps = maps.detach().double().cpu()
    c, h, w = maps.shape
    if signed is None:
        signed = bool((maps < 0).double().mean() >= SIGNED_THRESHOLD)
    flat = maps.reshape(c, -1)
    if signed:
        hi = flat.abs().amax(1)
        lo = -hi
        # An all-zero channel stays white (0), not the blue end.
        norm = (maps / hi.clamp_min(1e-12)[:, None, None] + 1) / 2
    else:
        lo, hi = flat.amin(1), flat.amax(1)
        # A constant channel (a dead ReLU unit) is drawn black.
        norm = (maps - lo[:, None, None]) / (hi - lo).clamp_min(1e-12)[:, None, None]
    th, tw = tile_shape(h, w, max_side, min_side)
    tiles = _resize(norm, th, tw).clamp(0, 1).numpy()
    ids = channel_ids if channel_ids is not None else list(range(c))
    if signed:
        labels = [f"{ids[i]} ±{_fmt(float(hi[i]))}" for i in range(c)]
        bar = ("-max|a| of the channel", "0", "+max|a| of the channel")
        mapping = "each channel scaled to its own max |a|; label: channel, max |a|"
    else:
        labels = [f"{ids[i]} {_fmt(float(lo[i]))}..{_fmt(float(hi[i]))}" for i in range(c)]
        bar = ("min of the channel", "", "max of the channel")
        mapping = "each channel scaled from its own min to max; label: channel, min..max"
    lines = [title, mapping] if title else [mapping]
    return _draw_grid(tiles, labels, lines, _lut(SIGNED_MAP if signed else UNSIGNED_MAP), bar, cols, style)


def kernel_grid(
    kernels: torch.Tensor,
    title: str = "",
    tile: int = 40,
    row_names: list[str] | None = None,
    style: GridStyle = GridStyle(),
    cols: int | None = None,
) -> Image.Image:
    """Kernels ``(A, B, kh, kw)`` as tiles, each scaled to its own max |w|, white at 0.

    ``A == 1`` or ``B == 1``: one tile per kernel, labelled by index, in a square-ish
    grid. Otherwise ``A`` rows of ``B`` tiles; the first tile of a row is labelled with
    ``row_names[a]`` (default ``a``) and the tiles of the first row with ``b``.
    ``cols`` sets the number of columns of the flat layout.
    Each kernel is enlarged by the whole factor ``max(1, tile // k)``.
    """
    if kernels.ndim != 4:
        raise ValueError(f"expected (A, B, kh, kw) kernels, got shape {tuple(kernels.shape)}")
    k = kernels.detach().double().cpu()
    a, b, kh, kw = k.shape
    zoom = max(1, tile // max(kh, kw))
    flat = k.reshape(a * b, kh, kw)
    peak = flat.abs().reshape(a * b, -1).amax(1).clamp_min(1e-12)
    norm = (flat / peak[:, None, None] + 1) / 2
    tiles = norm.repeat_interleave(zoom, 1).repeat_interleave(zoom, 2).numpy()
    if a == 1 or b == 1:
        labels = [str(i) for i in range(a * b)]
    else:
        names = row_names or [str(i) for i in range(a)]
        labels = [(names[i // b] + (f" | {i % b}" if i < b else "")) if i % b == 0 else (str(i % b) if i < b else "") for i in range(a * b)]
        cols = b
    lines = [title, "each kernel scaled to its own max |w|: blue < 0 < red, white = 0"]
    bar = ("-max|w| of the kernel", "0", "+max|w| of the kernel")
    return _draw_grid(tiles, labels, [line for line in lines if line], _lut(SIGNED_MAP), bar, cols, style)


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__ == "torch.nn.modules.activation"


def _stack(parts: list[Image.Image], gap: int = 6) -> Image.Image:
    width = max(p.width for p in parts)
    out = Image.new("RGB", (width, sum(p.height for p in parts) + gap * (len(parts) - 1)), "white")
    y = 0
    for part in parts:
        out.paste(part, (0, y))
        y += part.height + gap
    return out


def _text_block(lines: list[str], width: int, style: GridStyle) -> Image.Image:
    line_h = style.font_size + 5
    font = _font(style.font_size)
    width = max([width] + [int(font.getlength(line)) + 2 * style.pad for line in lines])
    img = Image.new("RGB", (width, line_h * len(lines) + 4), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((style.pad, 2 + i * line_h), line, fill="black", font=font)
    return img


def overview_figure(
    model: nn.Module,
    x: torch.Tensor,
    acts: dict[str, torch.Tensor],
    title: str = "",
    top: int = 12,
    max_side: int = 64,
    style: GridStyle = GridStyle(),
) -> Image.Image:
    """The whole network on one image, in one picture.

    From the top: the input and the last layer's output (when it is an image:
    1 or 3 channels, drawn with values 0..1 as black..white), the first layer's
    filters, then one row per activation layer (all layers if there is none)
    with its ``top`` most energetic channels, each normalised as in
    :func:`feature_grid`. ``x`` is the ``(N, C, h, w)`` input of ``acts``.
    """
    names = list(acts)
    modules = dict(model.named_modules())
    shown = [n for n in names if _is_activation(modules.get(n.split("@")[0], model))] or names
    min_side = max_side * 3 // 4
    # One-line titles, no colour bars (the legend states the mappings), rows of equal width.
    row_width = max([0] + [min(top, acts[n].shape[1]) * (tile_shape(*acts[n].shape[-2:], max_side, min_side)[1] + style.pad) + style.pad for n in shown])
    row_style = GridStyle(style.pad, style.label_h, style.font_size + 9, 0, row_width, style.font_size)
    parts: list[Image.Image] = []
    last = acts[names[-1]][0] if names else None
    header_tiles = [("input", x[0])]
    if last is not None and last.shape[0] in (1, 3):
        header_tiles.append(("output", last))
    dh, dw = tile_shape(*max(t.shape[-2:] for _, t in header_tiles), max_side=4 * max_side, min_side=2 * max_side)
    header = Image.new("RGB", (len(header_tiles) * (dw + style.pad) + style.pad, style.label_h + dh + style.pad), "white")
    draw, font = ImageDraw.Draw(header), _font(style.font_size)
    for i, (label, t) in enumerate(header_tiles):
        arr = (t.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        pic = Image.fromarray(arr[0].numpy(), "L") if arr.shape[0] == 1 else Image.fromarray(arr.permute(1, 2, 0).numpy())
        px = style.pad + i * (dw + style.pad)
        draw.text((px, 1), f"{label} {t.shape[-1]}x{t.shape[-2]}", fill="black", font=font)
        header.paste(pic.resize((dw, dh), Image.NEAREST).convert("RGB"), (px, style.label_h))
    if title:
        parts.append(_text_block([title], header.width, style))
    parts.append(header)

    convs = _conv_layers(model, (16, 16))
    if convs:
        f = filters(model, convs[0])
        k = f.weight if f.kind == "conv" else f.weight.transpose(0, 1)
        parts.append(kernel_grid(k, f"first-layer filters: {convs[0]}, {'x'.join(map(str, k.shape))}", tile=24, style=row_style, cols=2 * top))

    for name in shown:
        a = acts[name][0]
        st = activation_stats(acts[name])
        ids = sorted(st["rank_by_energy"][:top])
        signed = st["negative_fraction"] >= SIGNED_THRESHOLD
        what = f"all {a.shape[0]} channels" if len(ids) == a.shape[0] else f"top {len(ids)} of {a.shape[0]} channels by energy"
        row_title = f"{name} ({type(modules.get(name.split('@')[0], model)).__name__}), {a.shape[-1]}x{a.shape[-2]}: {what}"
        parts.append(feature_grid(a[ids], row_title, cols=top, max_side=max_side, min_side=min_side, signed=signed, style=row_style, channel_ids=ids))
    legend = [
        "Feature maps: each channel scaled on its own. Diverging rows: blue < 0 < red, white = 0, label = channel, max |a|.",
        "Grey rows: channel min (black) to max (white), label = channel, min..max. Filters: blue < 0 < red, each to its own max |w|.",
        "Input and output: values 0..1 as black..white (not normalised), enlarged with nearest neighbour to the same size.",
    ]
    parts.append(_text_block(legend, max(p.width for p in parts), style))
    return _stack(parts)


def _save_png(img: Image.Image, path: Path) -> Path:
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def _safe_name(layer: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", layer) or "layer"


def _module_of(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    return modules.get(name.split("@")[0], model)


def _conv_layers(model: nn.Module, input_size: tuple[int, int]) -> list[str]:
    """Names of the convolution layers in forward order."""
    modules = dict(model.named_modules())
    return [n for n, _ in layer_names(model, input_size) if isinstance(modules.get(n), (nn.Conv2d, nn.ConvTranspose2d))]


def _input_image(x: torch.Tensor) -> Image.Image:
    arr = (x[0].detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(arr[0].numpy(), "L") if arr.shape[0] == 1 else Image.fromarray(arr.permute(1, 2, 0).numpy())


def _csv_text(stats: dict) -> str:
    keys = ["mean", "std", "min", "max", "energy", "zero_fraction", "negative_fraction"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["layer", "type", "channel", "energy_rank", *keys])
    for name, s in stats.items():
        writer.writerow([name, s["type"], "all", "", *(repr(s[k]) for k in keys)])
        for ch in s["channels"]:
            writer.writerow([name, s["type"], ch["channel"], ch["energy_rank"], *(repr(ch[k]) for k in keys)])
    return buf.getvalue()


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def write_report(
    out_dir: str | Path,
    model: nn.Module,
    x: torch.Tensor,
    acts: dict[str, torch.Tensor],
    description: dict | None = None,
    npz: bool = False,
    max_side: int = 128,
) -> Path:
    """Write figures, statistics and ``index.html`` for activations ``acts`` of input ``x``.

    ``x`` is the ``(N, C, h, w)`` network input the activations came from (after any
    crop); ``description`` (model, weights, image, crop...) is shown on the page and
    stored in ``stats.json``. Feature grids show the first image of a batch;
    statistics cover all of it. Returns the path of ``index.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    description = dict(description or {})
    figures: list[tuple[str, str, str]] = []  # (section, file, caption html)
    input_file = _save_png(_input_image(x), out / "input.png")
    what = "Y channel (BT.601)" if x.shape[1] == 1 else "RGB"
    figures.append(("Input", input_file.name, f"Network input, {what}, {x.shape[-1]}x{x.shape[-2]} pixels, values 0..1 shown as 0..255."))

    convs = _conv_layers(model, (16, 16))
    if convs:
        first = filters(model, convs[0])
        first_k = first.weight if first.kind == "conv" else first.weight.transpose(0, 1)
        img = kernel_grid(first_k, f"{convs[0]} ({type(_module_of(model, convs[0])).__name__}): {tuple(first.weight.shape)} kernels")
        figures.append(("Filters", _save_png(img, out / "filters_first.png").name, f"First layer <code>{html.escape(convs[0])}</code>: its {first_k.shape[0] * first_k.shape[1]} kernels on the input, each scaled to its own largest |weight| (blue negative, white zero, red positive)."))
        last = filters(model, convs[-1])
        if last.kind == "deconv":
            # (in, out, k, k): one tile per input channel's contribution to each output channel.
            last_k = last.weight.transpose(0, 1)
            what = f"{last_k.shape[1]} deconvolution kernels (one per input channel, stride {last.stride})"
        else:
            last_k = last.weight
            what = f"{last_k.shape[0]}x{last_k.shape[1]} kernels (rows: output channel, columns: input channel)" if min(last_k.shape[:2]) > 1 else f"{last_k.numel() // (last_k.shape[-1] * last_k.shape[-2])} kernels"
        img = kernel_grid(last_k, f"{convs[-1]} ({type(_module_of(model, convs[-1])).__name__}): {tuple(last.weight.shape)}")
        figures.append(("Filters", _save_png(img, out / "filters_last.png").name, f"Last layer <code>{html.escape(convs[-1])}</code>: {what}, same colour mapping."))
        if last.phases is not None:
            s = last.stride
            per_out = last.phases.shape[0] // (s * s)
            rows = [f"c{c} ({ry},{rx})" if per_out > 1 else f"({ry},{rx})" for c in range(per_out) for ry in range(s) for rx in range(s)]
            img = kernel_grid(last.phases, f"{convs[-1]} as {s * s} sub-pixel convolutions + pixel shuffle: {tuple(last.phases.shape)}", tile=20, row_names=rows)
            figures.append((
                "Filters",
                _save_png(img, out / "filters_last_phases.png").name,
                f"The same deconvolution seen as {s}x{s} = {s * s} small convolutions on the LR grid followed by a pixel shuffle: "
                f"row (ry, rx) makes the HR pixel at offset (ry, rx) of each {s}x{s} block, column = input channel. "
                f"Each phase holds the taps of the {last.weight.shape[-1]}x{last.weight.shape[-1]} kernel that are {s} apart, starting at its offset.",
            ))

    overview = overview_figure(model, x, acts, title=", ".join(f"{k}: {v}" for k, v in description.items() if k in ("architecture", "weights")))
    figures.insert(0, ("Overview", _save_png(overview, out / "overview.png").name, "The input and output, the first layer's filters and, per activation layer, its most energetic channels (mean square over the image)."))

    stats: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, a in acts.items():
        module = _module_of(model, name)
        s = {"type": type(module).__name__, **activation_stats(a)}
        stats[name] = s
        signed = s["negative_fraction"] >= SIGNED_THRESHOLD
        title = f"{name} ({s['type']}): output {'x'.join(map(str, a.shape[1:]))}" + (f", image 1 of {a.shape[0]}" if a.shape[0] > 1 else "")
        img = feature_grid(a[0], title, max_side=max_side, signed=signed)
        fname = _save_png(img, out / "features" / f"{_safe_name(name)}.png").relative_to(out).as_posix()
        top = ", ".join(str(c) for c in s["rank_by_energy"][:5])
        caption = (
            f"<code>{html.escape(name)}</code> ({s['type']}), {a.shape[1]} channel(s) of {a.shape[-1]}x{a.shape[-2]}: "
            f"mean {s['mean']:.3g}, std {s['std']:.3g}, exactly zero {_pct(s['zero_fraction'])}, negative {_pct(s['negative_fraction'])}"
            + (f", {s['dead_channels']} dead channel(s)" if s["dead_channels"] else "")
            + f"; most energetic channels: {top}. "
            + ("Diverging colours: blue negative, white 0, red positive." if signed else "Grey: each channel from its min (black) to max (white).")
        )
        figures.append(("Feature maps", fname, caption))
        if npz:
            arrays[name] = a.numpy()

    meta = {"srlab_version": __version__, **description, "input_shape": list(x.shape)}
    json_text = json.dumps({**meta, "layers": stats}, indent=2)
    atomic_write(out / "stats.json", lambda tmp: tmp.write_text(json_text + "\n"))
    atomic_write(out / "stats.csv", lambda tmp: tmp.write_text(_csv_text(stats)))
    data_files = ["stats.json", "stats.csv"]
    if npz:
        arrays["_input"] = x.detach().cpu().numpy()

        def write_npz(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)

        atomic_write(out / "activations.npz", write_npz)
        data_files.append("activations.npz")

    page = _html_page(meta, figures, data_files)
    return atomic_write(out / "index.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))


def _html_page(meta: dict, figures: list[tuple[str, str, str]], data_files: list[str]) -> str:
    title = f"srlab features: {meta.get('model', 'model')}"
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em}"
        "figure{margin:1.5em 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}"
        "figcaption{max-width:60em;color:#333}th{text-align:left;padding-right:1em}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<table>{rows}</table>",
        "<p>Data: " + ", ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in data_files) + "</p>",
    ]
    section = None
    for sec, file, caption in figures:
        if sec != section:
            parts.append(f"<h2>{html.escape(sec)}</h2>")
            section = sec
        parts.append(f'<figure><img src="{html.escape(file)}" alt="{html.escape(file)}"><figcaption>{caption}</figcaption></figure>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

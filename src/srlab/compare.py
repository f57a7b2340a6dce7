"""Side-by-side comparison figures: input, bicubic and models, with a zoomed inset.

Two uses:

* the image is the low-resolution input: every method upscales it and the
  figure shows what each makes of it (no scores, there is no ground truth);
* ``degrade=True``: the image is the ground truth. It is cropped to a multiple
  of the scale and downscaled with the MATLAB bicubic (kept in float, as the
  papers did), every method upscales that, and each panel's title gives PSNR
  and SSIM against the original on the BT.601 Y channel with ``scale`` border
  pixels shaved (the papers' protocol, :mod:`srlab.metrics`).

Every panel shows the same region enlarged under it, so the differences that a
full view hides (edges, texture) are visible at a glance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from .imageio import atomic_write  # noqa: E402
from .imresize import imresize  # noqa: E402
from .metrics import psnr, ssim  # noqa: E402
from .protocol import modcrop  # noqa: E402
from .upscale import Upscaler  # noqa: E402

__all__ = ["Panel", "Comparison", "pick_crop", "run_comparison", "draw_figure"]


@dataclass
class Panel:
    """One column of the figure: ``image`` uint8 ``(H, W, 3)`` at the output size."""

    title: str
    image: np.ndarray
    psnr: float | None = None
    ssim: float | None = None


@dataclass
class Comparison:
    """Everything a figure needs; ``lr`` is the network input, uint8 ``(h, w, 3)``."""

    scale: int
    lr: np.ndarray
    panels: list[Panel] = field(default_factory=list)
    ground_truth: np.ndarray | None = None


def pick_crop(image: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """``(x, y, size, size)`` of the window with the largest luminance variance.

    Flat sky or a smooth wall show no difference between methods; the most
    varied window (edges, texture) does. Integral images make it O(H W).
    """
    img = np.asarray(image, dtype=np.float64)
    lum = img.mean(axis=2) if img.ndim == 3 else img
    h, w = lum.shape
    size = max(1, min(size, h, w))

    def box_sum(a: np.ndarray) -> np.ndarray:
        s = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        return s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]

    n = size * size
    mean = box_sum(lum) / n
    var = box_sum(lum * lum) / n - mean**2
    y, x = np.unravel_index(int(np.argmax(var)), var.shape)
    return int(x), int(y), size, size


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def run_comparison(image: np.ndarray, scale: int, methods: list[tuple[str, Upscaler]], degrade: bool = False) -> Comparison:
    """Upscale ``image`` (uint8 ``(H, W, 3)``) with every method; scores when ``degrade``.

    With ``degrade`` the (mod-cropped) image is the ground truth and the
    methods see its MATLAB-bicubic downscale, in float [0, 1]; outputs are
    rounded to uint8 before scoring, as the papers did.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    if degrade:
        gt = modcrop(image, scale)
        if min(gt.shape[:2]) < scale:
            raise ValueError(f"image {image.shape[1]}x{image.shape[0]} is too small to downscale by {scale}")
        lr = np.clip(imresize(gt.astype(np.float64) / 255.0, 1.0 / scale), 0, 1).astype(np.float32)
    else:
        gt = None
        lr = image.astype(np.float32) / 255.0
    lr8 = _to_uint8(lr)
    result = Comparison(scale=scale, lr=lr8, ground_truth=gt)
    result.panels.append(Panel(f"input ({lr8.shape[1]}x{lr8.shape[0]}, nearest)", np.repeat(np.repeat(lr8, scale, 0), scale, 1)))
    for label, upscaler in methods:
        if upscaler.scale != scale:
            raise ValueError(f"{label}: upscales by {upscaler.scale}, not {scale}")
        out = _to_uint8(upscaler.pixels(lr))
        panel = Panel(label, out)
        if gt is not None:
            panel.psnr = float(psnr(out, gt, crop_border=scale, test_y_channel=True, data_range=255.0)[0])
            panel.ssim = float(ssim(out, gt, crop_border=scale, test_y_channel=True, data_range=255.0)[0])
        result.panels.append(panel)
    if gt is not None:
        result.panels.append(Panel(f"ground truth ({gt.shape[1]}x{gt.shape[0]})", gt))
    return result


def draw_figure(comparison: Comparison, crop: tuple[int, int, int, int], out: str | os.PathLike, title: str | None = None) -> Path:
    """Write the figure: full panels on top with the crop marked, the crop enlarged below.

    ``crop`` is ``(x, y, w, h)`` in output pixels; it is clipped to the image.
    """
    panels = comparison.panels
    height, width = panels[0].image.shape[:2]
    x, y, w, h = crop
    x, y = min(max(0, x), width - 1), min(max(0, y), height - 1)
    w, h = max(1, min(w, width - x)), max(1, min(h, height - y))
    n = len(panels)
    col_w = 3.4
    full_h = col_w * height / width
    zoom_h = col_w * h / w
    fig, axes = plt.subplots(2, n, figsize=(col_w * n, full_h + zoom_h + 1.3), gridspec_kw={"height_ratios": [full_h, zoom_h]}, squeeze=False)
    best = max((p.psnr for p in panels if p.psnr is not None), default=None)
    for i, panel in enumerate(panels):
        top, bottom = axes[0, i], axes[1, i]
        top.imshow(panel.image, interpolation="lanczos" if panel.image.shape[0] > 800 else "nearest")
        top.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="#ffd400", linewidth=1.8))
        label = panel.title
        if panel.psnr is not None:
            label += f"\n{panel.psnr:.2f} dB / SSIM {panel.ssim:.4f}"
        bold = best is not None and panel.psnr == best
        top.set_title(label, fontsize=10, fontweight="bold" if bold else "normal")
        bottom.imshow(panel.image[y : y + h, x : x + w], interpolation="nearest")
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
        for spine in bottom.spines.values():
            spine.set_edgecolor("#ffd400")
            spine.set_linewidth(2.0)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=120, format=Path(out).suffix.lstrip(".").lower() or "png"))
    plt.close(fig)
    return Path(out)

"""The SR papers' benchmark protocol, in one place.

For each HR image: take the BT.601 Y channel (uint8 levels), crop it to a
multiple of the scale (``modcrop``), make the LR input with the MATLAB bicubic
``imresize(Y / 255, 1 / scale)`` kept in float (the papers did not quantise it),
run the model, round its output to uint8 levels, shave ``scale`` pixels from
every border and measure PSNR and SSIM against the HR Y. Scores are averaged
per image, in float64.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .imageio import DEFAULT_MAX_PIXELS, ImageReadError, list_images, read_y
from .imresize import imresize
from .metrics import psnr, ssim

__all__ = ["modcrop", "make_lr", "to_uint8_levels", "ImageScore", "SetResult", "evaluate_folder"]

log = logging.getLogger(__name__)

# SSIM's Gaussian window (Wang et al.'s reference): the smallest image it can score.
SSIM_WINDOW = 11

# An SR function maps LR ``(1, 1, h, w)`` in [0, 1] to SR ``(1, 1, s*h, s*w)``.
SRFunction = Callable[[torch.Tensor], torch.Tensor]


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``(H, W, ...)`` so both sides are multiples of ``scale`` (top-left kept)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def make_lr(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """LR partner of an HR tensor ``(..., H, W)`` in [0, 1]: MATLAB bicubic by ``1/scale``."""
    return imresize(hr, 1.0 / scale)


def to_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> float64 on uint8 levels [0, 255], rounded as MATLAB's ``uint8()``."""
    return torch.round(x.to(torch.float64).clamp(0, 1) * 255.0)


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float


@dataclass
class SetResult:
    """One benchmark set at one scale; ``mean_*`` are means of per-image scores."""

    set: str
    scale: int
    model: str
    per_image: list[ImageScore] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def mean_psnr(self) -> float:
        return float(np.mean([s.psnr for s in self.per_image], dtype=np.float64)) if self.per_image else float("nan")

    @property
    def mean_ssim(self) -> float:
        return float(np.mean([s.ssim for s in self.per_image], dtype=np.float64)) if self.per_image else float("nan")

    def to_dict(self) -> dict:
        return {
            "set": self.set,
            "scale": self.scale,
            "model": self.model,
            "per_image": [{"name": s.name, "psnr": s.psnr, "ssim": s.ssim} for s in self.per_image],
            "mean_psnr": self.mean_psnr,
            "mean_ssim": self.mean_ssim,
            "failed": self.failed,
        }


def score_image(sr_fn: SRFunction, y: np.ndarray, scale: int, device: torch.device | str = "cpu") -> tuple[float, float]:
    """PSNR and SSIM of one uint8 Y image ``(H, W)`` under the protocol.

    Raises ValueError for an image too small to score: after ``modcrop`` and
    shaving ``scale`` pixels per side, SSIM's 11x11 window must still fit.
    """
    smallest = SSIM_WINDOW + 2 * scale
    cropped = modcrop(y, scale)
    if min(cropped.shape[:2]) < smallest:
        h, w = y.shape[:2]
        raise ValueError(
            f"image {w}x{h} is too small for the x{scale} protocol (needs at least {smallest}x{smallest} "
            f"pixels: {scale} shaved per side, then SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window)"
        )
    hr = torch.from_numpy(cropped.astype(np.float64)).unsqueeze(0).unsqueeze(0)
    lr = make_lr(hr / 255.0, scale)
    with torch.inference_mode():
        sr = sr_fn(lr.to(device))
    if sr.shape[-2:] != hr.shape[-2:]:
        raise RuntimeError(f"model output {tuple(sr.shape[-2:])} does not match HR {tuple(hr.shape[-2:])}")
    sr = to_uint8_levels(sr.cpu())
    return (
        float(psnr(sr, hr, crop_border=scale)[0]),
        float(ssim(sr, hr, crop_border=scale)[0]),
    )


def evaluate_folder(
    sr_fn: SRFunction,
    folder: str | os.PathLike,
    scale: int,
    model_name: str,
    device: torch.device | str = "cpu",
    progress: Callable | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> SetResult:
    """Score every image of ``folder``.

    Files that cannot be read, or are too small for the protocol, are logged
    (one line naming the file and the reason), listed in ``failed`` and
    skipped; the rest of the folder is still scored.
    """
    files = list_images(folder)
    result = SetResult(set=Path(folder).name, scale=scale, model=model_name)
    for path in progress(files) if progress else files:
        try:
            y = read_y(path, max_pixels)
            p, s = score_image(sr_fn, y, scale, device)
        except ImageReadError as exc:
            log.error("%s", exc)
            result.failed.append(str(path))
            continue
        except ValueError as exc:
            log.error("%s: %s", path, exc)
            result.failed.append(str(path))
            continue
        result.per_image.append(ImageScore(path.stem, p, s))
    return result

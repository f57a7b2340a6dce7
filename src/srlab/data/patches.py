"""Random LR/HR patch pairs, the papers' way of training, drawn on any device.

All training images (and their down-scaled copies for scale augmentation) are
packed into one flat tensor; a batch is a single gather with per-sample random
image, position and one of the 8 flips/rotations. No Python loop per sample, so
data preparation never starves the model, on 2 CPU cores or on a GPU.

``detail_oversample > 1`` biases the draw towards detailed patches (SamplingAug, Wang et
al., BMVC 2021): draw that many times the batch, keep the patches whose LR has the most
gradient energy. Flat sky and walls, much of every photo, are easy to upscale and give
almost no gradient; the test sets' error lives in edges and texture.

LR partners are made once from whole images with the MATLAB bicubic, as the
papers did; LR patch ``(y, x, p)`` pairs with HR patch ``(s*y, s*x, s*p)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..imresize import imresize

__all__ = ["PatchSampler", "detail", "dihedral_grids"]


def dihedral_grids(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column source indices ``(8, n, n)`` for the 8 flips/rotations of an n x n patch."""
    a, b = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    r = n - 1
    rows = torch.stack([a, b, r - a, a, r - a, b, r - b, r - b])
    cols = torch.stack([b, a, b, r - b, r - b, r - a, a, r - a])
    return rows, cols


def _separable(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 8 flips/rotations as ``(swap (8,), row (8, n), col (8, n))``.

    Each dihedral grid is separable: source ``(row[i], col[j])``, transposed when ``swap``
    (``(row[j], col[i])``). Building a batch's indices from these ``(B, n)`` vectors takes two
    ``(B, n, n)`` operations instead of gathering two ``(B, n, n)`` grids and combining them.
    """
    rows, cols = dihedral_grids(n)
    swap = rows[:, 0, 0] != rows[:, 0, -1] if n > 1 else torch.zeros(8, dtype=torch.bool)
    row = torch.where(swap[:, None], rows[:, 0, :], rows[:, :, 0])
    col = torch.where(swap[:, None], cols[:, :, 0], cols[:, 0, :])
    return swap, row, col


def detail(patches: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels of each ``(B, n, n)`` patch: ``(B,)``.

    Unchanged by the 8 flips/rotations, so a patch ranks the same however it is drawn.
    """
    dy = (patches[:, 1:, :] - patches[:, :-1, :]).square().flatten(1).mean(1)
    dx = (patches[:, :, 1:] - patches[:, :, :-1]).square().flatten(1).mean(1)
    return dy + dx


def _gather(flat: torch.Tensor, offset, width, y0, x0, t, grid) -> torch.Tensor:
    """Patches ``(B, n, n)`` of the images packed in ``flat``, top-left ``(y0, x0)``, transform ``t``."""
    swap, row, col = grid
    start = (offset + y0 * width + x0).view(-1, 1)
    u = start + row[t] * width.view(-1, 1)  # (B, n): flat index where each source row starts
    v = col[t]  # (B, n): column offsets
    # Index [i, j] is u[i] + v[j], or u[j] + v[i] for the transposing transforms.
    sw = swap[t].view(-1, 1)
    along_i, along_j = torch.where(sw, v, u), torch.where(sw, u, v)
    idx = along_i.unsqueeze(2) + along_j.unsqueeze(1)
    return flat.index_select(0, idx.view(-1)).view(idx.shape)


class PatchSampler:
    """Draws ``(lr, hr)`` batches: ``(B, 1, p, p)`` and ``(B, 1, s*p, s*p)`` in [0, 1].

    Args:
        images: HR Y images, uint8 ``(H, W)``.
        scale: SR factor s.
        lr_patch: LR patch side p (FSRCNN paper: 7-11; SRCNN: 33 / s).
        augment: random flips and 90-degree rotations (8 variants).
        scale_augment: extra HR copies down-scaled by these factors (FSRCNN: 0.9-0.6).
        device: where the packed images live and batches are made.
        seed: seed of the sampler's own generator (its state is part of a checkpoint).
        detail_oversample: draw this many candidates per patch and keep the most detailed
            (1: uniform, the papers' sampling).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        scale: int,
        lr_patch: int,
        augment: bool = True,
        scale_augment: Sequence[float] = (),
        device: torch.device | str = "cpu",
        seed: int = 0,
        detail_oversample: float = 1.0,
    ):
        if lr_patch < 1:
            raise ValueError(f"lr_patch must be >= 1, got {lr_patch}")
        if not detail_oversample >= 1:
            raise ValueError(f"detail_oversample must be >= 1, got {detail_oversample}")
        self.detail_oversample = float(detail_oversample)
        self.scale, self.p, self.augment, self.device = scale, lr_patch, augment, torch.device(device)
        hr_parts, lr_parts, shapes = [], [], []
        for img in images:
            base = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).to(self.device)
            for factor in (1.0, *scale_augment):
                hr = base if factor == 1.0 else imresize(base.double(), factor).float().clamp(0, 1)
                h, w = hr.shape
                hr = hr[: h - h % scale, : w - w % scale]
                if hr.shape[0] < lr_patch * scale or hr.shape[1] < lr_patch * scale:
                    continue
                lr = imresize(hr.double(), 1.0 / scale).float() if scale > 1 else hr
                hr_parts.append(hr.reshape(-1))
                lr_parts.append(lr.reshape(-1))
                shapes.append(lr.shape)
        if not shapes:
            raise ValueError(f"no image is large enough for LR patches of {lr_patch} at scale {scale}")
        self.hr_flat = torch.cat(hr_parts)
        self.lr_flat = torch.cat(lr_parts)
        lr_sizes = torch.tensor([h * w for h, w in shapes])
        self.lr_offset = (torch.cumsum(lr_sizes, 0) - lr_sizes).to(self.device)
        self.hr_offset = self.lr_offset * scale * scale
        self.lr_h = torch.tensor([h for h, _ in shapes], device=self.device)
        self.lr_w = torch.tensor([w for _, w in shapes], device=self.device)
        positions = (self.lr_h - lr_patch + 1) * (self.lr_w - lr_patch + 1)
        # Sampling images by their number of patch positions makes every position equally likely.
        self.image_weights = positions.double() / positions.sum()
        self.lr_grid = tuple(g.to(self.device) for g in _separable(lr_patch))
        self.hr_grid = tuple(g.to(self.device) for g in _separable(lr_patch * scale))
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    @property
    def num_images(self) -> int:
        return len(self.lr_h)

    def __repr__(self) -> str:
        return f"PatchSampler(images={self.num_images}, scale={self.scale}, lr_patch={self.p}, augment={self.augment})"

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        g, s, p = self.generator, self.scale, self.p
        n = math.ceil(batch_size * self.detail_oversample)  # >= batch_size: the factor is >= 1
        img = torch.multinomial(self.image_weights, n, replacement=True, generator=g)
        y0 = (torch.rand(n, generator=g, device=self.device) * (self.lr_h[img] - p + 1)).long()
        x0 = (torch.rand(n, generator=g, device=self.device) * (self.lr_w[img] - p + 1)).long()
        if self.augment:
            t = torch.randint(0, 8, (n,), generator=g, device=self.device)
        else:
            t = torch.zeros(n, dtype=torch.long, device=self.device)
        lr = _gather(self.lr_flat, self.lr_offset[img], self.lr_w[img], y0, x0, t, self.lr_grid)
        if n > batch_size:
            keep = detail(lr).topk(batch_size).indices
            lr, img, y0, x0, t = lr[keep], img[keep], y0[keep], x0[keep], t[keep]
        hr = _gather(self.hr_flat, self.hr_offset[img], s * self.lr_w[img], s * y0, s * x0, t, self.hr_grid)
        return lr.unsqueeze(1), hr.unsqueeze(1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"].cpu() if self.device.type == "cpu" else state["generator"])

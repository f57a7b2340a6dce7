"""The reference experiment's data: one centre crop per image per epoch.

Side ``300 - 300 % s``; input = the crop down-scaled by s and up-scaled back
(here with the MATLAB bicubic, not PIL's), target = the crop; values in [0, 1].
A scale-1 model learns to restore the blurred image. Kept only to reproduce
that experiment; :class:`~srlab.data.patches.PatchSampler` is the way to train.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..imresize import imresize

__all__ = ["CenterCropSampler", "center_crop"]


def center_crop(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h < side or w < side:
        raise ValueError(f"image {w}x{h} is smaller than the {side}x{side} crop")
    top, left = (h - side) // 2, (w - side) // 2
    return img[top : top + side, left : left + side]


class CenterCropSampler:
    """Batches ``(input, target)`` of shape ``(B, 1, c, c)``; epochs visit every image once, shuffled."""

    def __init__(self, images: Sequence[np.ndarray], scale: int, crop: int = 300, device: torch.device | str = "cpu", seed: int = 0):
        self.scale, self.device = scale, torch.device(device)
        side = crop - crop % scale
        hr = torch.from_numpy(np.stack([center_crop(im, side) for im in images]).astype(np.float64) / 255.0).unsqueeze(1)
        degraded = imresize(imresize(hr, 1.0 / scale), float(scale)) if scale > 1 else hr
        self.inputs = degraded.float().to(self.device)
        self.targets = hr.float().to(self.device)
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(self.inputs), generator=self.generator)
        self.cursor = 0

    @property
    def num_images(self) -> int:
        return len(self.inputs)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        picked, count = [], 0
        while count < batch_size:
            if self.cursor == len(self.order):
                self.order = torch.randperm(len(self.inputs), generator=self.generator)
                self.cursor = 0
            take = min(batch_size - count, len(self.order) - self.cursor)
            picked.append(self.order[self.cursor : self.cursor + take])
            self.cursor += take
            count += take
        idx = torch.cat(picked).to(self.device)
        return self.inputs[idx], self.targets[idx]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state(), "order": self.order, "cursor": torch.tensor(self.cursor)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.cursor = int(state["cursor"])

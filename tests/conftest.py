"""Shared fixtures: the reference data root, a one-thread guard, a bfloat16 guard, tiny image folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.device import native_bf16


def _find_data_root() -> Path | None:
    """``$SRLAB_DATA`` if set, else ``../shared/data`` beside the repository; None if absent."""
    env = os.environ.get("SRLAB_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    for root in candidates:
        if (root / "Set5").is_dir():
            return root
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The reference image data (Set5, Set14, BSDS500); skips the test when it is absent."""
    root = _find_data_root()
    if root is None:
        pytest.skip("reference data not found: set SRLAB_DATA to the data root or put it at ../shared/data")
    return root


@pytest.fixture
def bf16_cpu():
    """Skips the test on a CPU whose oneDNN has no bfloat16 (no AVX512 or AMX): bf16 inference is refused there."""
    if not native_bf16():
        pytest.skip("this CPU has no bfloat16 in oneDNN (needs AVX512 or AMX); bf16 inference is refused here")


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One torch thread for the whole suite: the tensors are small, and on a busy 2-core
    machine OpenMP hand-offs cost more than the maths (eval of the bicubic table: 6 min with
    2 threads under load, 39 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def smooth_image(h: int, w: int, seed: int = 0, rgb: bool = True) -> np.ndarray:
    """A uint8 image with structure at several scales (random blobs plus gradients), like a photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    channels = []
    for _ in range(3 if rgb else 1):
        img = 40 + 150 * (xx / w) * (yy / h)
        for _ in range(6):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, max(4, min(h, w) / 3))
            img += rng.uniform(-60, 60) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img += rng.normal(0, 6, size=(h, w))
        channels.append(img)
    out = np.clip(np.stack(channels, -1), 0, 255).round().astype(np.uint8)
    return out if rgb else out[..., 0]


@pytest.fixture
def image_folder(tmp_path):
    """Factory: ``image_folder(name, n, size)`` writes n generated PNGs and returns the folder."""

    def make(name: str = "imgs", n: int = 2, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(smooth_image(size[0], size[1], seed + i)).save(folder / f"img{i:02d}.png")
        return folder

    return make


@pytest.fixture(scope="session")
def gen_image():
    """The generator behind ``image_folder``: ``gen_image(h, w, seed, rgb=True)`` -> uint8 array."""
    return smooth_image

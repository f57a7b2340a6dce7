"""Tiled inference equals whole-image inference, for every registered model."""

import numpy as np
import pytest
import torch

from srlab.models import create_model, list_models
from srlab.tiling import count_tiles, iter_tiles, receptive_margin, tiled_apply
from srlab.upscale import Upscaler

ALL_MODELS = list_models(include_baselines=True)




def _model(name: str, scale: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, scale).eval()


@pytest.mark.parametrize("h,w,tile,margin", [(23, 29, 7, 3), (8, 8, 8, 2), (5, 40, 16, 0), (10, 10, 0, 4)])
def test_tile_cores_cover_every_pixel_once(h, w, tile, margin):
    seen = np.zeros((h, w), dtype=int)
    tiles = list(iter_tiles(h, w, tile, margin))
    for t in tiles:
        seen[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert 0 <= t.py0 <= t.y0 < t.y1 <= t.py1 <= h and 0 <= t.px0 <= t.x0 < t.x1 <= t.px1 <= w
        assert t.y0 - t.py0 == min(margin, t.y0) and t.py1 - t.y1 == min(margin, h - t.y1)
    assert (seen == 1).all()
    assert len(tiles) == count_tiles(h, w, tile)


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_equals_whole_for_every_model(name, scale):
    model = _model(name, scale)
    margin = receptive_margin(model, scale)
    lr = torch.rand(1, 1, 23, 29, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole = model(lr)
    tiled = tiled_apply(model, lr, scale, tile=7, margin=margin)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", ["fsrcnn", "srcnn_955", "espcn", "bicubic"])
def test_margin_is_needed(name):
    """Without a margin the seams differ: the equality above is not vacuous."""
    model = _model(name, 3)
    lr = torch.rand(1, 1, 23, 29, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        whole = model(lr)
    seams = tiled_apply(model, lr, 3, tile=7, margin=0)
    # Fresh output layers are initialised tiny, so compare relative to the output's size.
    assert (seams - whole).abs().max().item() > 1e-3 * whole.abs().max().item()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_colour_pipeline_tiled_equals_whole_in_uint8(name):
    """RGBA through Y/CbCr/alpha, quantised per tile: identical to one pass."""
    model = _model(name, 2)
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=(19, 26, 4), dtype=np.uint8)
    whole = Upscaler(model, 2, tile=0).pixels(img)
    tiled = Upscaler(model, 2, tile=6).pixels(img)
    assert whole.shape == (38, 52, 4)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_restore_mode_tiled_equals_whole():
    model = _model("srcnn_ref", 1)
    img = np.random.default_rng(4).random((17, 21)).astype(np.float32)
    whole = Upscaler(model, 3, mode="restore", tile=0).pixels(img)
    tiled = Upscaler(model, 3, mode="restore", tile=5).pixels(img)
    assert np.abs(whole - tiled).max() <= 1e-5


def test_receptive_margin_matches_architecture():
    # SRCNN 9-5-5 at scale 1: radius 4 + 2 + 2 = 8 pixels, plus the guard pixel.
    assert receptive_margin(_model("srcnn_955", 1), 1) == 9
    # The bicubic reaches 2 LR pixels (+ the guard) whatever the scale.
    assert receptive_margin(_model("bicubic", 4), 4) == 3


def test_receptive_margin_refuses_global_functions():
    def global_mean(x):
        return x - x.mean()

    with pytest.raises(ValueError, match="receptive field is wider"):
        receptive_margin(global_mean, 1, max_probe=70)


def test_tiled_apply_checks_output_size():
    with pytest.raises(ValueError, match="not x2"):
        tiled_apply(lambda x: x, torch.rand(1, 1, 8, 8), 2, tile=4, margin=1)

"""Property tests (hypothesis): invariants that must hold for any size, scale and value.

Examples are few (max_examples 25-40) and small, so the file runs in seconds;
hypothesis shrinks any failure to the smallest example it can find.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srlab.color import rgb_to_ycbcr, ycbcr_to_rgb
from srlab.imresize import imresize
from srlab.metrics import psnr, ssim
from srlab.models import create_model
from srlab.tiling import receptive_margin, tiled_apply
from srlab.upscale import Upscaler

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(min_value=1, max_value=40)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
# Rational zoom factors p/q (down by up to 1/8, up by up to 8): the exact output size is known.
scales = st.builds(Fraction, st.integers(1, 8), st.integers(1, 8))




# -- imresize -----------------------------------------------------------------------------------


@FAST
@given(h=sizes, w=sizes, scale=scales, value=st.floats(0, 1), use_numpy=st.booleans())
def test_imresize_keeps_a_constant_image_constant_and_has_matlab_size(h, w, scale, value, use_numpy):
    """MATLAB's rule: ceil(size * scale) pixels; the bicubic weights of every output pixel sum to 1."""
    x = np.full((h, w), value) if use_numpy else torch.full((2, h, w), value, dtype=torch.float64)
    y = imresize(x, float(scale))
    expected = (math.ceil(h * scale), math.ceil(w * scale))
    assert tuple(y.shape[-2:]) == expected
    assert np.allclose(np.asarray(y), value, atol=1e-12, rtol=0)


@FAST
@given(h=sizes, w=sizes, k=st.integers(1, 4), seed=seeds)
def test_imresize_integer_down_then_shape_and_range(h, w, k, seed):
    """Any image: the output size is MATLAB's, and cubic overshoot stays within the cubic's bounds."""
    x = torch.from_numpy(np.random.default_rng(seed).random((h, w)))
    y = imresize(x, 1.0 / k)
    assert tuple(y.shape) == (math.ceil(h / k), math.ceil(w / k))
    # Keys' cubic (a = -0.5) has small negative lobes: the overshoot of [0, 1] data stays well under 0.3.
    assert y.min() > -0.3 and y.max() < 1.3


# -- colour --------------------------------------------------------------------------------------


@FAST
@given(n=st.integers(1, 50), seed=seeds, data_range=st.sampled_from([1.0, 255.0, 65535.0]), use_torch=st.booleans())
def test_colour_round_trip(n, seed, data_range, use_torch):
    rgb = np.random.default_rng(seed).random((n, 3)) * data_range
    x = torch.from_numpy(rgb.T.copy())[None, :, :, None] if use_torch else rgb  # NCHW or channels-last
    back = ycbcr_to_rgb(rgb_to_ycbcr(x, data_range), data_range)
    back = back[0, :, :, 0].T.numpy() if use_torch else back
    assert np.allclose(back, rgb, atol=1e-9 * data_range, rtol=0)


@FAST
@given(seed=seeds, n=st.integers(1, 50))
def test_ycbcr_of_valid_rgb_is_inside_studio_swing(seed, n):
    """BT.601 studio swing: Y in [16, 235], Cb and Cr in [16, 240], gray has Cb = Cr = 128."""
    rng = np.random.default_rng(seed)
    ycc = rgb_to_ycbcr(rng.random((n, 3)) * 255.0)
    assert (ycc[:, 0] >= 16 - 1e-9).all() and (ycc[:, 0] <= 235 + 1e-9).all()
    assert (ycc[:, 1:] >= 16 - 1e-9).all() and (ycc[:, 1:] <= 240 + 1e-9).all()
    gray = rgb_to_ycbcr(np.repeat(rng.random((n, 1)) * 255.0, 3, axis=1))
    assert np.allclose(gray[:, 1:], 128.0, atol=1e-9)


# -- tiled inference -------------------------------------------------------------------------------

_MODELS: dict[tuple[str, int], torch.nn.Module] = {}
_MARGINS: dict[tuple[str, int], int] = {}


def _model(name: str, scale: int) -> tuple[torch.nn.Module, int]:
    key = (name, scale)
    if key not in _MODELS:
        torch.manual_seed(0)
        model = create_model(name, scale, **({"d": 12, "s": 4, "m": 1} if name == "fsrcnn" else {})).eval()
        _MODELS[key] = model
        _MARGINS[key] = receptive_margin(model, scale)
    return _MODELS[key], _MARGINS[key]


@SLOW
@given(
    name=st.sampled_from(["fsrcnn", "espcn", "srcnn_915", "bicubic"]),
    scale=st.integers(1, 4),
    h=st.integers(1, 36),
    w=st.integers(1, 36),
    tile=st.integers(1, 24),
    seed=seeds,
)
def test_tiled_inference_equals_whole_image(name, scale, h, w, tile, seed):
    """Any size and tile size, tiles narrower than the margin included: the stitched result is the whole-image pass."""
    model, margin = _model(name, scale)
    lr = torch.from_numpy(np.random.default_rng(seed).random((1, 1, h, w))).float()
    with torch.inference_mode():
        whole = model(lr)
    tiled = tiled_apply(model, lr, scale, tile, margin)
    assert tiled.shape == whole.shape == (1, 1, scale * h, scale * w)
    assert torch.allclose(tiled, whole, atol=2e-5, rtol=0), float((tiled - whole).abs().max())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scale=st.integers(2, 3), h=st.integers(1, 30), w=st.integers(1, 30), channels=st.sampled_from([1, 2, 3, 4]), tile=st.integers(1, 20), seed=seeds)
def test_upscaler_tiles_equal_one_pass_for_any_image(scale, h, w, channels, tile, seed):
    """The user-facing path (colour, alpha, quantisation into uint8): tiled output = one pass, to 1 level."""
    model, _ = _model("fsrcnn", scale)
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    tiled = Upscaler(model, scale, tile=tile).pixels(pixels)
    whole = Upscaler(model, scale, tile=0).pixels(pixels)
    assert tiled.shape == whole.shape == (scale * h, scale * w, channels)
    # Rounding to uint8 can differ by one level where float noise straddles a .5.
    assert np.abs(tiled.astype(int) - whole).max() <= 1


# -- metrics -----------------------------------------------------------------------------------------

pairs = st.tuples(st.integers(11, 24), st.integers(11, 24), st.integers(1, 3), seeds, st.integers(0, 3))


def _pair(shape, data_range):
    h, w, c, seed, crop = shape
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.random((2, c, h + 2 * crop, w + 2 * crop)) * data_range)
    noise = rng.normal(0, rng.uniform(0.001, 0.5) * data_range, x.shape)
    y = torch.from_numpy(np.clip(x.numpy() + noise, 0, data_range))
    return x, y, crop


@FAST
@given(shape=pairs, data_range=st.sampled_from([1.0, 255.0]))
def test_psnr_is_symmetric_and_bounded(shape, data_range):
    x, y, crop = _pair(shape, data_range)
    a, b = psnr(x, y, crop, data_range=data_range), psnr(y, x, crop, data_range=data_range)
    assert torch.equal(a, b)
    # Values in [0, range]: MSE <= range^2, so PSNR >= 0; identical images give +inf.
    assert (a >= 0).all() and torch.isfinite(a).all()
    assert torch.isinf(psnr(x, x, crop, data_range=data_range)).all()


@FAST
@given(shape=pairs, data_range=st.sampled_from([1.0, 255.0]))
def test_ssim_is_symmetric_bounded_and_one_for_identical_images(shape, data_range):
    x, y, crop = _pair(shape, data_range)
    a, b = ssim(x, y, crop, data_range=data_range), ssim(y, x, crop, data_range=data_range)
    assert torch.allclose(a, b, atol=1e-12, rtol=0)
    assert (a >= -1).all() and (a <= 1 + 1e-12).all()
    assert torch.allclose(ssim(x, x, crop, data_range=data_range), torch.ones(2, dtype=torch.float64), atol=1e-12)
    # A copy whose every error is at least as large never gets a higher PSNR.
    worse = torch.clamp(y + (y - x), 0, data_range)
    assert (psnr(x, worse, crop, data_range=data_range) <= psnr(x, y, crop, data_range=data_range) + 1e-9).all()

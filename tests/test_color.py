"""BT.601 studio-swing colour conversion (MATLAB rgb2ycbcr) and grayscale handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from srlab.imageio import read_y




@pytest.mark.parametrize(
    "rgb, ycbcr",
    [
        ((255, 255, 255), (235.0, 128.0, 128.0)),  # white: top of the studio range
        ((0, 0, 0), (16.0, 128.0, 128.0)),  # black: bottom of the studio range
        # Pure primaries: offset + first column of MATLAB's origT (65.481, -37.797, 112).
        ((255, 0, 0), (81.481, 90.203, 240.0)),
        ((0, 255, 0), (144.553, 53.797, 34.214)),
        ((0, 0, 255), (40.966, 240.0, 109.786)),
    ],
)
def test_known_values(rgb, ycbcr):
    out = rgb_to_ycbcr(np.array(rgb, dtype=np.float64))
    np.testing.assert_allclose(out, ycbcr, atol=1e-9)
    # The same in [0, 1] units and on torch NCHW.
    t = torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1) / 255
    np.testing.assert_allclose(rgb_to_ycbcr(t, data_range=1.0).view(3).numpy() * 255, ycbcr, atol=1e-9)


def test_matlab_uint8_red_is_81_90_240():
    # MATLAB: rgb2ycbcr(uint8([255 0 0])) -> [81 90 240]
    assert np.round(rgb_to_ycbcr(np.array([255.0, 0, 0]))).tolist() == [81, 90, 240]


def test_round_trip_float_is_exact():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 255, size=(7, 5, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-9)
    t = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(t, 1.0), 1.0), t, atol=1e-12, rtol=0)


def test_round_trip_through_uint8_is_within_rounding():
    # All 8-bit levels on each axis: rounding YCbCr to uint8 then back moves RGB by at most
    # the inverse matrix's row sums of |0.5| steps, i.e. ~1.5 levels; MATLAB's own round trip
    # has the same loss because 220 Y levels cannot hold 256.
    levels = np.arange(256, dtype=np.float64)
    rgb = np.stack(np.meshgrid(levels[::5], levels[::3], levels[::7], indexing="ij"), -1).reshape(-1, 3)
    back = ycbcr_to_rgb(np.round(rgb_to_ycbcr(rgb)))
    assert np.abs(back - rgb).max() < 2.0
    assert np.abs(np.round(back) - rgb).mean() < 0.6


def test_agrees_with_scikit_image():
    skcolor = pytest.importorskip("skimage.color")
    rgb = np.random.default_rng(3).uniform(0, 1, size=(6, 4, 3))
    np.testing.assert_allclose(rgb_to_ycbcr(rgb, data_range=1.0) * 255, skcolor.rgb2ycbcr(rgb), atol=1e-9)


def test_channel_axis_and_y_only():
    rgb = np.random.default_rng(4).uniform(0, 255, size=(3, 6, 5))  # channels first
    y = rgb_to_y(rgb, channel_axis=0)
    assert y.shape == (1, 6, 5)
    np.testing.assert_allclose(y[0], rgb_to_ycbcr(np.moveaxis(rgb, 0, -1))[..., 0], atol=1e-9)
    t = torch.from_numpy(rgb).unsqueeze(0)
    assert rgb_to_y(t).shape == (1, 1, 6, 5)


def test_wrong_channel_count_is_an_error():
    with pytest.raises(ValueError, match="expected 3 channels"):
        rgb_to_ycbcr(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="expected 3 channels"):
        rgb_to_ycbcr(torch.zeros(1, 1, 4, 4))


def test_read_y_rgb_is_rounded_matlab_y_and_grayscale_is_used_as_is(tmp_path):
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert read_y(tmp_path / "rgb.png").tolist() == [[235, 16, 81]]
    gray = np.array([[0, 7, 255]], dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    y = read_y(tmp_path / "gray.png")
    assert y.dtype == np.uint8 and y.tolist() == [[0, 7, 255]]  # not squeezed into [16, 235]

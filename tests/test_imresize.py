"""imresize against numbers worked out by hand from MATLAB's documented algorithm.

MATLAB's ``imresize(A, scale, 'bicubic')`` (``imresize.m``, ``contributions``):
output pixel i (1-based) sits at input coordinate ``u = i/scale + 0.5*(1 - 1/scale)``;
the Keys cubic (a = -0.5) is stretched by ``1/scale`` when downscaling (weights
``scale * cubic(scale * d)``), the kernel is ``4/scale`` wide, the weights are
normalised to sum 1 and out-of-range indices are mirrored (``0 -> 1, -1 -> 2,
n+1 -> n``). ``_reference_1d`` below is a plain-Python transcription of those
sentences, independent of srlab's vectorised code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from srlab.imresize import imresize, output_size




def keys_cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _reference_1d(v: list[float], scale: float) -> list[float]:
    n = len(v)
    out_len = math.ceil(n * scale)
    width = 4 / scale if scale < 1 else 4
    out = []
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + k for k in range(math.ceil(width) + 2)]
        if scale < 1:
            w = [scale * keys_cubic(scale * (u - j)) for j in taps]
        else:
            w = [keys_cubic(u - j) for j in taps]
        total = sum(w)

        def mirror(j: int) -> int:  # 1-based, symmetric padding with the edge repeated
            period = 2 * n
            j = (j - 1) % period
            return j if j < n else period - 1 - j

        out.append(sum(wk / total * v[mirror(j)] for wk, j in zip(w, taps)))
    return out


def _reference_2d(a: np.ndarray, scale: float) -> np.ndarray:
    rows = np.array([_reference_1d(list(col), scale) for col in a.T]).T  # height first
    return np.array([_reference_1d(list(row), scale) for row in rows])


def test_keys_kernel_values_by_hand():
    # 1.5|x|^3 - 2.5|x|^2 + 1 and -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2, evaluated by hand.
    assert keys_cubic(0.25) == 0.8671875
    assert keys_cubic(0.75) == 0.2265625
    assert keys_cubic(1.25) == -0.0703125
    assert keys_cubic(1.75) == -0.0234375


def test_ramp_4x4_downscaled_by_half_matches_hand_computation():
    # Scale 1/2: output 1 sits at u = 1.5, the kernel is 8 wide, taps at input -2..5 with
    # weights 0.5 * cubic(0.5 * (u - j)) = [-0.01171875, -0.03515625, 0.11328125, 0.43359375] mirrored.
    # Mirroring maps -2, -1, 0 -> 3, 2, 1 and 5 -> 4, so the ramp 1 2 3 4 gives
    #   -0.01171875*3 - 0.03515625*2 + 0.11328125*1 + 0.43359375*(1 + 2) + 0.11328125*3
    #   - 0.03515625*4 - 0.01171875*4 = 1.4609375, and by symmetry 5 - 1.4609375 = 3.5390625.
    ramp = np.arange(1, 5, dtype=np.float64)
    np.testing.assert_allclose(imresize(ramp[None, :], 0.5)[0], [1.4609375, 3.5390625], rtol=0, atol=1e-12)
    # 2-D ramp a[r, c] = 4 (r - 1) + c: the resize is linear with weights summing to 1, so the
    # result is 4 (R_r - 1) + R_c with R = [1.4609375, 3.5390625].
    a = np.arange(1, 17, dtype=np.float64).reshape(4, 4)
    expected = np.array([[3.3046875, 5.3828125], [11.6171875, 13.6953125]])
    np.testing.assert_allclose(imresize(a, 0.5), expected, rtol=0, atol=1e-12)
    t = torch.from_numpy(a)[None, None]
    np.testing.assert_allclose(imresize(t, 0.5)[0, 0].numpy(), expected, rtol=0, atol=1e-12)


def test_upscale_x2_by_hand():
    # Scale 2: output 1 sits at u = 0.75; taps -2..3 with cubic(u - j): 0, -0.0234375, 0.2265625,
    # 0.8671875, -0.0703125, 0. On [10, 20] (mirror: 0 -> 1, -1 -> 2, 3 -> 2) that is
    # -0.0234375*20 + 0.2265625*10 + 0.8671875*10 - 0.0703125*20 = 9.0625. Output 2 sits at
    # u = 1.25, taps -1..4 with weights 0, -0.0703125, 0.8671875, 0.2265625, -0.0234375, 0 on
    # 20, 10, 10, 20, 20, 10: -0.703125 + 8.671875 + 4.53125 - 0.46875 = 12.03125; the other
    # two follow by symmetry (30 - x).
    out = imresize(np.array([[10.0, 20.0]]), 2)
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out[0], [9.0625, 12.03125, 17.96875, 20.9375], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[0], _reference_1d([10.0, 20.0], 2), atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (9, 11), (6, 6), (13, 4)])
@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_matches_reference_transcription_on_odd_sizes(shape, scale):
    a = np.random.default_rng(sum(shape)).uniform(0, 255, size=shape)
    out = imresize(a, scale)
    assert out.shape == (output_size(shape[0], scale), output_size(shape[1], scale))
    np.testing.assert_allclose(out, _reference_2d(a, scale), rtol=0, atol=1e-9)


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 2, 3, 4, 0.7])
def test_constant_image_stays_constant(scale):
    a = np.full((13, 10), 117.0)
    np.testing.assert_allclose(imresize(a, scale), 117.0, rtol=0, atol=1e-10)


def test_output_size_is_matlab_ceil():
    assert output_size(481, 1 / 3) == 161
    assert output_size(480, 1 / 3) == 160
    assert output_size(7, 1 / 2) == 4
    assert imresize(np.zeros((7, 5)), 1 / 2).shape == (4, 3)


def test_numpy_and_torch_agree_and_batch_dims_are_independent():
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 1, size=(12, 9, 3))
    np_out = imresize(img, 1 / 3)
    batch = torch.from_numpy(np.stack([img, img[::-1].copy()])).permute(0, 3, 1, 2)  # (2, 3, 12, 9)
    t_out = imresize(batch, 1 / 3)
    assert t_out.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(t_out[0].permute(1, 2, 0).numpy(), np_out, atol=1e-12)
    np.testing.assert_allclose(t_out[1].permute(1, 2, 0).numpy(), imresize(img[::-1].copy(), 1 / 3), atol=1e-12)
    f32 = imresize(batch.float(), 3)
    assert f32.dtype == torch.float32
    np.testing.assert_allclose(f32.double().numpy(), imresize(batch, 3).numpy(), atol=1e-5)


def test_uint8_numpy_is_computed_in_float64():
    a = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    out = imresize(a, 2)
    assert out.dtype == np.float64
    assert out.min() < 0 and out.max() > 255  # cubic overshoot is kept, not clipped


def test_size_argument_and_errors():
    a = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    assert imresize(a, size=(4, 6)).shape == (1, 1, 4, 6)
    with pytest.raises(ValueError, match="exactly one of scale or size"):
        imresize(a, 0.5, size=(4, 4))
    with pytest.raises(ValueError, match="scale must be > 0"):
        imresize(a, 0)
    with pytest.raises(TypeError, match="float tensor"):
        imresize(torch.zeros(4, 4, dtype=torch.int64), 2)
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray"):
        imresize([[1.0]], 2)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(2, 12),
    w=st.integers(2, 12),
    k=st.sampled_from([1 / 4, 1 / 3, 1 / 2, 2.0, 3.0]),
    a=st.floats(-2, 2),
    b=st.floats(-2, 2),
)
def test_linear_and_weights_sum_to_one(h, w, k, a, b):
    rng = np.random.default_rng(h * 100 + w)
    x, y = rng.normal(size=(h, w)), rng.normal(size=(h, w))
    np.testing.assert_allclose(imresize(a * x + b * y + 3.0, k), a * imresize(x, k) + b * imresize(y, k) + 3.0, atol=1e-9)

"""PSNR and SSIM: known values, the papers' conventions, and scikit-image as the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srlab.metrics import PSNR, SSIM, psnr, ssim




def test_psnr_of_a_known_mse():
    x = torch.full((1, 1, 8, 8), 100.0, dtype=torch.float64)
    y = x + 5.0  # MSE = 25
    assert psnr(x, y).item() == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)  # 34.1514 dB
    assert psnr(x / 255, y / 255, data_range=1.0).item() == pytest.approx(34.15140352195873, abs=1e-9)


def test_psnr_is_per_image_not_of_the_batch_mean_error():
    x = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    y = x.clone()
    y[0] += 1.0  # MSE 1
    y[1] += 10.0  # MSE 100
    per_image = psnr(x, y)
    assert per_image.shape == (2,)
    np.testing.assert_allclose(per_image.numpy(), [20 * math.log10(255), 20 * math.log10(25.5)], atol=1e-9)
    # The batch-MSE PSNR would be 10 log10(255^2 / 50.5); the mean of per-image values is not that.
    assert per_image.mean().item() != pytest.approx(10 * math.log10(255**2 / 50.5), abs=0.1)


def test_crop_border_ignores_the_shaved_pixels():
    x = torch.zeros(1, 1, 10, 10, dtype=torch.float64)
    y = x.clone()
    y[..., :2, :] = 200.0  # only in the top 2 rows
    y[..., 4, 4] = 10.0  # one pixel inside: MSE = 100 / 36 over the 6x6 centre
    assert psnr(x, y, crop_border=2).item() == pytest.approx(10 * math.log10(255**2 / (100 / 36)), abs=1e-9)


def test_identical_images():
    x = torch.rand(3, 1, 20, 20, dtype=torch.float64) * 255
    assert torch.isinf(psnr(x, x)).all()
    torch.testing.assert_close(ssim(x, x), torch.ones(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_test_y_channel_converts_rgb():
    rgb = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 255
    noisy = (rgb + torch.randn_like(rgb) * 3).clamp(0, 255)
    from srlab.color import rgb_to_y

    expected = psnr(rgb_to_y(rgb), rgb_to_y(noisy))
    torch.testing.assert_close(psnr(rgb, noisy, test_y_channel=True), expected)
    assert psnr(rgb, noisy, test_y_channel=True).item() != pytest.approx(psnr(rgb, noisy).item(), abs=1e-3)


@pytest.fixture(scope="module")
def image_pair():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:40]
    a = np.clip(128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 10, (48, 40)), 0, 255).round()
    b = np.clip(a + rng.normal(0, 12, a.shape) + 8 * np.sin(yy / 3.0), 0, 255).round()
    return a, b


def test_ssim_matches_scikit_image_on_a_known_pair(image_pair):
    metrics = pytest.importorskip("skimage.metrics")
    a, b = image_pair
    expected = metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    assert 0.3 < expected < 0.95  # a pair that is neither identical nor unrelated
    assert ssim(a, b).item() == pytest.approx(expected, abs=1e-10)
    # With the border shaved, as the protocol does.
    expected_c = metrics.structural_similarity(
        a[3:-3, 3:-3], b[3:-3, 3:-3], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(a, b, crop_border=3).item() == pytest.approx(expected_c, abs=1e-10)


def test_ssim_per_channel_mean_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, size=(24, 24, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    expected = metrics.structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1
    )
    assert ssim(a, b, data_range=1.0).item() == pytest.approx(expected, abs=1e-10)


def test_data_range_scaling_is_consistent(image_pair):
    a, b = image_pair
    assert ssim(a / 255, b / 255, data_range=1.0).item() == pytest.approx(ssim(a, b).item(), abs=1e-12)
    assert psnr(a / 255, b / 255, data_range=1.0).item() == pytest.approx(psnr(a, b).item(), abs=1e-9)


def test_module_twins():
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    torch.testing.assert_close(PSNR(crop_border=2, data_range=1.0)(x, y), psnr(x, y, 2, False, 1.0))
    torch.testing.assert_close(SSIM(data_range=1.0)(x, y), ssim(x, y, data_range=1.0))
    assert "crop_border=2" in repr(PSNR(crop_border=2))


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 12, 12), torch.zeros(1, 1, 12, 12), crop_border=1)
    with pytest.raises(ValueError, match="nothing left"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), crop_border=2)
    with pytest.raises(ValueError, match="crop_border must be >= 0"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), crop_border=-1)
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray"):
        psnr([[0.0]], [[0.0]])

"""PSNR/SSIM against independent references: skimage, the definitions, and BT.601."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import structural_similarity

from restore.metrics import psnr, rgb_to_y, ssim


def reference_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Wang et al. SSIM as skimage computes it with the paper's settings."""
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=2 if a.ndim == 3 else None,
    )


def reference_psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(data_range**2 / mse)


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A random RGB uint8 image and a noisy, clipped copy of it (odd sizes on purpose)."""
    rng = np.random.default_rng(7)
    clean = rng.integers(0, 256, (33, 29, 3), dtype=np.uint8)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    return noisy, clean


def test_ssim_matches_skimage_colour_and_grey(pair):
    noisy, clean = pair
    assert ssim(noisy, clean) == pytest.approx(reference_ssim(noisy, clean, 255), abs=1e-9)
    assert ssim(noisy[:, :, 1], clean[:, :, 1]) == pytest.approx(
        reference_ssim(noisy[:, :, 1], clean[:, :, 1], 255), abs=1e-9
    )


def test_ssim_of_float_tensors_matches_uint8_arrays(pair):
    """The trainer's call, ``ssim(prediction, target, 1.0)`` on (B, C, H, W) tensors, is the
    same measurement as on the uint8 arrays."""
    noisy, clean = pair
    as_tensor = [torch.from_numpy(x.transpose(2, 0, 1).astype(np.float32) / 255)[None] for x in (noisy, clean)]
    assert ssim(*as_tensor, 1.0) == pytest.approx(ssim(noisy, clean), abs=1e-6)
    assert psnr(*as_tensor, 1.0) == pytest.approx(psnr(noisy, clean), abs=1e-4)


def test_psnr_of_identical_images_is_infinite(pair):
    _, clean = pair
    assert psnr(clean, clean.copy()) == math.inf
    assert ssim(clean, clean.copy()) == pytest.approx(1.0)


def test_known_mse_gives_known_psnr():
    target = np.full((16, 16), 100, dtype=np.uint8)
    prediction = target + np.uint8(5)  # every pixel off by 5: MSE 25
    assert psnr(prediction, target) == pytest.approx(10 * math.log10(255**2 / 25))


def test_data_range_follows_the_dtype(pair):
    """uint16 copies (x * 257 spans 0..65535 exactly) measure the same as the uint8 images."""
    noisy, clean = pair
    wide = [x.astype(np.uint16) * 257 for x in (noisy, clean)]
    assert psnr(*wide) == pytest.approx(psnr(noisy, clean))
    assert ssim(*wide) == pytest.approx(ssim(noisy, clean))
    assert psnr(noisy, clean) == pytest.approx(reference_psnr(noisy, clean, 255))
    as_float = [x.astype(np.float64) / 255 for x in (noisy, clean)]
    assert psnr(*as_float) == pytest.approx(psnr(noisy, clean))


def test_explicit_data_range_overrides_the_dtype(pair):
    noisy, clean = pair
    assert psnr(noisy, clean, data_range=1000) == pytest.approx(reference_psnr(noisy, clean, 1000))


def test_mismatched_dtypes_are_refused(pair):
    noisy, clean = pair
    with pytest.raises(ValueError, match="uint8.*float32"):
        psnr(noisy, clean.astype(np.float32) / 255)


def test_y_channel_of_pure_colours_matches_bt601():
    colours = np.eye(3)  # pure red, green, blue in [0, 1]
    ours = rgb_to_y(torch.from_numpy(colours).view(3, 3, 1, 1)).flatten() * 255
    expected = rgb2ycbcr(colours[None])[0, :, 0]  # skimage: the MATLAB rgb2ycbcr matrix
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-9)


def test_y_channel_psnr_and_ssim_measure_luma(pair):
    noisy, clean = pair
    luma = [rgb2ycbcr(x.astype(np.float64) / 255)[:, :, 0] for x in (noisy, clean)]
    assert psnr(noisy, clean, y_channel=True) == pytest.approx(reference_psnr(*luma, 255))
    assert ssim(noisy, clean, y_channel=True) == pytest.approx(reference_ssim(*luma, 255), abs=1e-9)


def test_crop_border_ignores_the_border(pair):
    noisy, clean = pair
    only_border_differs = noisy.copy()
    only_border_differs[3:-3, 3:-3] = clean[3:-3, 3:-3]
    assert math.isfinite(psnr(only_border_differs, clean))
    assert psnr(only_border_differs, clean, crop_border=3) == math.inf
    cropped = [x[4:-4, 4:-4] for x in (noisy, clean)]
    assert ssim(noisy, clean, crop_border=4) == pytest.approx(reference_ssim(*cropped, 255), abs=1e-9)
    with pytest.raises(ValueError, match="crop_border"):
        psnr(noisy, clean, crop_border=15)


def test_batch_scores_are_means_of_per_image_scores(pair):
    noisy, clean = pair
    first = torch.from_numpy(np.stack([noisy, clean]).transpose(0, 3, 1, 2))
    second = torch.from_numpy(np.stack([clean, clean]).transpose(0, 3, 1, 2))
    assert psnr(first, second) == math.inf  # one identical pair makes the mean infinite
    noisier = np.clip(clean.astype(int) + 30, 0, 255).astype(np.uint8)
    first = torch.from_numpy(np.stack([noisy, noisier]).transpose(0, 3, 1, 2))
    expected_psnr = (psnr(noisy, clean) + psnr(noisier, clean)) / 2
    expected_ssim = (ssim(noisy, clean) + ssim(noisier, clean)) / 2
    assert psnr(first, second) == pytest.approx(expected_psnr)
    assert ssim(first, second) == pytest.approx(expected_ssim)


def test_ssim_refuses_images_smaller_than_the_window():
    tiny = np.zeros((10, 12), dtype=np.uint8)
    with pytest.raises(ValueError, match="11x11"):
        ssim(tiny, tiny)


def test_shape_mismatch_is_refused(pair):
    noisy, clean = pair
    with pytest.raises(ValueError, match="does not match"):
        psnr(noisy[:-1], clean)


# -- texture of an inpainted hole ----------------------------------------------------------


def test_texture_ratio_tells_a_textured_fill_from_a_smear() -> None:
    from restore.metrics.texture import gradient_magnitude, texture_ratio

    rng = np.random.default_rng(0)
    grain = rng.integers(60, 200, (96, 96, 3)).astype(np.uint8)
    hole = np.zeros((96, 96), bool)
    hole[32:64, 24:72] = True
    assert texture_ratio(grain, hole) == pytest.approx(1.0, abs=0.1)  # the same texture inside and out
    smeared = grain.copy()
    smeared[hole] = grain[hole].mean(axis=0).astype(np.uint8)
    assert texture_ratio(smeared, hole) == 0.0  # the seam at the hole's edge is not counted
    flat = np.full_like(grain, 128)
    flat[hole] = grain[hole]
    assert math.isnan(texture_ratio(flat, hole))  # nothing around to continue
    stroke = np.zeros_like(hole)
    stroke[:, 40:42] = True
    assert math.isnan(texture_ratio(grain, stroke))  # no pixel of the stroke is away from its edge
    ramp = np.tile(np.arange(96, dtype=np.uint8), (96, 1))
    assert np.allclose(gradient_magnitude(ramp)[:, 1:-1], 1.0)  # one level per pixel

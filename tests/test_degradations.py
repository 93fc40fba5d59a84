"""Degradation primitives and Real-ESRGAN's second-order model: shapes, physics, and pairs
that are a pure function of the generator."""

from __future__ import annotations

import math

import pytest
import torch

from restore.tasks import degradations as deg


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def smooth_image(channels: int = 3, size: int = 64, seed: int = 0) -> torch.Tensor:
    noise = torch.rand(1, channels, size // 8, size // 8, generator=generator(seed))
    return torch.nn.functional.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False)[0]


def test_gaussian_kernels_are_normalised_and_shaped_by_their_parameters() -> None:
    iso = deg.gaussian_kernel(11, 2.0)
    assert iso.shape == (11, 11) and math.isclose(float(iso.sum()), 1.0, rel_tol=1e-5)
    assert torch.allclose(iso, iso.T) and torch.allclose(iso, iso.flip(0))
    wide_x = deg.gaussian_kernel(11, 3.0, 0.5)
    assert wide_x[5, :].sum() > 2 * wide_x[:, 5].sum() and wide_x[5, 0] > wide_x[0, 5]  # spread along x (columns)
    rotated = deg.gaussian_kernel(11, 3.0, 0.5, theta=math.pi / 2)
    assert torch.allclose(rotated, wide_x.T, atol=1e-6)  # a quarter turn swaps the axes
    assert torch.allclose(deg.gaussian_kernel(11, 2.0, beta=1.0, shape="generalized"), iso, atol=1e-6)
    heavy = deg.gaussian_kernel(11, 2.0, beta=0.5, shape="generalized")
    flat = deg.gaussian_kernel(11, 2.0, beta=2.0, shape="plateau")
    assert heavy[5, 0] / heavy[5, 5] > iso[5, 0] / iso[5, 5]  # beta < 1: heavier tails
    assert flat[5, 6] / flat[5, 5] > iso[5, 6] / iso[5, 5]  # plateau: flatter top
    with pytest.raises(ValueError, match="odd"):
        deg.gaussian_kernel(10, 1.0)
    with pytest.raises(ValueError, match="unknown kernel shape"):
        deg.gaussian_kernel(11, 1.0, shape="box")


def test_sinc_kernel_is_a_low_pass_filter() -> None:
    kernel = deg.sinc_kernel(21, math.pi / 3)
    assert math.isclose(float(kernel.sum()), 1.0, rel_tol=1e-5) and torch.allclose(kernel, kernel.T)
    response = torch.fft.fft2(kernel.double(), s=(64, 64)).abs()
    assert response[0, 0] == pytest.approx(1.0) and response[32, 32] < 0.1 and response[0, 32] < 0.1
    assert kernel.min() < 0  # it rings


def test_blur_keeps_flat_images_flat_and_smooths_edges() -> None:
    flat = torch.full((3, 20, 20), 0.3)
    assert torch.allclose(deg.blur(flat, deg.gaussian_kernel(21, 3.0)), flat, atol=1e-6)  # kernel wider than image
    step = torch.zeros(1, 16, 16)
    step[:, :, 8:] = 1
    blurred = deg.blur(step, deg.gaussian_kernel(7, 1.5))
    assert blurred.shape == step.shape and 0 < blurred[0, 8, 7] < 0.5 < blurred[0, 8, 8] < 1


def test_random_kernels_cover_every_type_and_follow_the_generator() -> None:
    settings = deg.BlurSettings()
    kernels = [deg.random_blur_kernel(generator(seed), settings) for seed in range(40)]
    assert all(k.shape[0] in deg.KERNEL_SIZES and math.isclose(float(k.sum()), 1.0, rel_tol=1e-4) for k in kernels)
    assert len({k.shape[0] for k in kernels}) > 3
    assert torch.equal(deg.random_blur_kernel(generator(7), settings), kernels[7])
    sinc_only = deg.BlurSettings(sinc_prob=1.0)
    assert deg.random_blur_kernel(generator(0), sinc_only).min() < 0
    with pytest.raises(ValueError, match="unknown blur kernel"):
        deg.random_blur_kernel(generator(0), deg.BlurSettings(kernel_list=("disk",), kernel_prob=(1.0,), sinc_prob=0.0))


def test_noise_grey_is_the_same_in_every_channel_and_poisson_grows_with_scale() -> None:
    mid_grey = torch.full((3, 32, 32), 0.5)  # far from 0 and 1: nothing is clipped
    grey = deg.add_gaussian_noise(mid_grey, 10.0, grey=True, generator=generator(0)) - mid_grey
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    colour = deg.add_gaussian_noise(mid_grey, 10.0, grey=False, generator=generator(0)) - mid_grey
    assert colour.std().item() == pytest.approx(10 / 255, rel=0.1) and not torch.equal(colour[0], colour[1])
    image = smooth_image()
    weak = deg.add_poisson_noise(image, 0.5, grey=False, generator=generator(1)) - image
    strong = deg.add_poisson_noise(image, 3.0, grey=False, generator=generator(1)) - image
    assert strong.std() > 3 * weak.std() > 0
    poisson_grey = deg.add_poisson_noise(mid_grey, 2.0, grey=True, generator=generator(1)) - mid_grey
    assert torch.equal(poisson_grey[0], poisson_grey[2]) and poisson_grey.abs().max() > 0


def test_jpeg_and_resize_keep_channels() -> None:
    for channels in (1, 3):
        image = smooth_image(channels, 32)
        compressed = deg.jpeg_roundtrip(image, 30)
        assert compressed.shape == image.shape and 0 < (compressed - image).abs().mean() < 0.05
    for mode in deg.RESIZE_MODES:
        assert deg.resize(smooth_image(3, 32), 13, 20, mode).shape == (3, 13, 20)
    with pytest.raises(ValueError, match="unknown resize mode"):
        deg.resize(smooth_image(), 8, 8, "lanczos")


@pytest.mark.parametrize(("scale", "channels"), [(4, 3), (2, 1), (1, 3)])
def test_second_order_degradation_is_a_pure_function_of_the_generator(scale: int, channels: int) -> None:
    image = smooth_image(channels, 64)
    low = deg.second_order_degradation(image, scale, generator(5))
    assert low.shape == (channels, 64 // scale, 64 // scale)
    assert torch.equal(low, deg.second_order_degradation(image, scale, generator(5)))
    assert not torch.equal(low, deg.second_order_degradation(image, scale, generator(6)))
    assert torch.equal(low * 255, (low * 255).round()) and low.min() >= 0 and low.max() <= 1


def test_settings_come_from_a_recipe_table_and_misspellings_are_refused() -> None:
    settings = deg.second_order_settings({"final_sinc_prob": 0.0, "second": {"blur": {"sigma": [0.5, 1.0]}}})
    assert settings.final_sinc_prob == 0.0 and settings.second.blur.sigma == (0.5, 1.0)
    assert settings.first == deg.REAL_ESRGAN_FIRST and settings.second.noise_range == (1.0, 25.0)
    with pytest.raises(ValueError, match=r"unknown setting real\.first\.'noise_rnage'"):
        deg.second_order_settings({"first": {"noise_rnage": [1, 2]}})
    with pytest.raises(ValueError, match="must be a table"):
        deg.second_order_settings({"second": 3})

"""The denoise task: training pairs, the noise-level map, and sigma at inference."""

from __future__ import annotations

import warnings

import pytest
import torch

from restore.tasks import get_task
from restore.tasks.denoise import estimate_sigma, to_grey_rgb


def _pair(options: dict, seed: int = 0, clean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(99)) if clean is None else clean
    return get_task("denoise").make_pair(clean, options, torch.Generator().manual_seed(seed))


def test_pair_is_noisy_image_plus_its_sigma_map() -> None:
    network_input, target = _pair({"sigma_min": 20.0, "sigma_max": 30.0})
    noisy, sigma_map = network_input[:3], network_input[3:]
    sigma = float(sigma_map[0, 0, 0])
    assert 20 / 255 <= sigma <= 30 / 255 and torch.all(sigma_map == sigma)
    assert abs(float((noisy - target).std()) - sigma) < 0.15 * sigma  # the map tells the truth


def test_pairs_are_a_function_of_the_generator_only() -> None:
    options = {"noise_models": ["gaussian", "poisson_gaussian", "jpeg_gaussian"], "grey_fraction": 0.5}
    for seed in range(4):
        torch.testing.assert_close(_pair(options, seed), _pair(options, seed), rtol=0, atol=0)
    assert not torch.equal(_pair(options, 0)[0], _pair(options, 1)[0])


def test_grey_crops_have_the_same_noise_in_every_channel() -> None:
    kinds = set()
    for seed in range(12):
        network_input, target = _pair({"grey_fraction": 0.5}, seed)
        grey = torch.equal(target[0], target[1])
        if grey:
            assert torch.equal(network_input[0], network_input[1]) and torch.equal(network_input[1], network_input[2])
        else:
            assert not torch.equal(network_input[0], network_input[1])
        kinds.add(grey)
    assert kinds == {True, False}  # both kinds occur at 50 %


def test_to_grey_rgb_is_bt601_luma() -> None:
    pixel = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    torch.testing.assert_close(to_grey_rgb(pixel), torch.full((3, 1, 1), 0.299))
    grey = torch.rand(1, 4, 4)
    assert to_grey_rgb(grey) is grey


def test_unknown_noise_model_is_named() -> None:
    with pytest.raises(ValueError, match="speckle"):
        _pair({"noise_models": ["speckle"]})


def test_inference_sigma_explicit_auto_and_out_of_range() -> None:
    task = get_task("denoise")
    generator = torch.Generator().manual_seed(0)
    clean = torch.full((1, 3, 96, 96), 0.5)
    noisy = clean + torch.randn(clean.shape, generator=generator) * 25 / 255

    def read(top: int, bottom: int, left: int, right: int) -> torch.Tensor:
        return noisy[:, :, top:bottom, left:right]

    options, info = task.image_options(read, 96, 96, task.run_options({"sigma": 10}))
    assert info == {"sigma": 10.0, "sigma_estimated": False}
    network_input = task.inference_input(noisy, options)
    assert network_input.shape == (1, 4, 96, 96) and torch.allclose(network_input[:, 3], torch.tensor(10 / 255))
    _, info = task.image_options(read, 96, 96, task.run_options({"sigma": "auto"}))
    assert info["sigma_estimated"] and abs(info["sigma"] - 25) < 2
    assert abs(estimate_sigma(noisy) - 25) < 2
    with pytest.raises(ValueError, match="between 0 and 255"):
        task.image_options(read, 96, 96, task.run_options({"sigma": 300}))
    with pytest.raises(ValueError, match=r"float images must hold values in \[0, 1\]"):  # 0-255 stored as float
        task.image_options(lambda *region: read(*region) * 255, 96, 96, task.run_options({"sigma": "auto"}))


def test_huge_images_are_estimated_in_bands(monkeypatch) -> None:
    """The estimate of a huge image is the row-weighted mean over bands, never the whole
    image in float64 at once."""
    import restore.tasks.denoise as denoise

    noisy = 0.5 + torch.randn(1, 3, 100, 64, generator=torch.Generator().manual_seed(1)) * 15 / 255
    seen: list[int] = []

    def read(top: int, bottom: int, left: int, right: int) -> torch.Tensor:
        seen.append(bottom - top)
        return noisy[:, :, top:bottom, left:right]

    monkeypatch.setattr(denoise, "ESTIMATE_PIXELS", 40 * 64)
    banded = denoise.estimate_sigma_in_bands(read, 100, 64)
    assert seen == [40, 40, 20]
    expected = (40 * estimate_sigma(noisy[:, :, :40]) + 40 * estimate_sigma(noisy[:, :, 40:80])
                + 20 * estimate_sigma(noisy[:, :, 80:])) / 100
    assert banded == pytest.approx(expected) and abs(banded - 15) < 2


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (1, 1, 8, 8), (1, 3, 1, 1), (1, 3, 2, 40)])
def test_auto_sigma_of_flat_and_tiny_images_is_zero_not_nan(shape: tuple[int, ...]) -> None:
    """scikit-image returns NaN when no detail coefficient is non-zero."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert estimate_sigma(torch.full(shape, 0.4)) == pytest.approx(0.0, abs=1e-9)
    partly_flat = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    partly_flat[:, 1] = 0.5
    assert 0 < estimate_sigma(partly_flat) < 255


def test_strength_blends_the_output_with_the_input(tmp_path) -> None:
    import numpy as np

    import restore
    from tiny_weights import write_tiny_denoise_weights

    model = restore.load(str(write_tiny_denoise_weights(tmp_path / "tiny.safetensors")), device="cpu", tile=0)
    noisy = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    full = model(noisy, sigma=25).astype(float)
    assert np.array_equal(model(noisy, sigma=25, strength=0.0), noisy)
    half = model(noisy, sigma=25, strength=0.5).astype(float)
    assert np.abs(half - (noisy + full) / 2).max() <= 0.5
    assert np.abs(full - noisy).max() > 2  # the blend had something to blend
    as_float = model(noisy.astype(np.float32) / 255, sigma=25, strength=0.25)
    assert as_float.dtype == np.float32


@pytest.mark.parametrize("strength", [-0.1, 1.5, "much"])
def test_strength_outside_zero_to_one_is_refused(strength) -> None:
    from restore.tasks.denoise import DenoiseOptions

    with pytest.raises(ValueError, match="strength must be a number from 0 to 1"):
        DenoiseOptions(strength=strength)

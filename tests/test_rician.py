"""The Rician variance-stabilising transform that lets BM4D denoise magnitude MR
(restore/evaluate/rician.py): stable spread, unbiased inverse, the spatial stack."""

from __future__ import annotations

import numpy as np
import pytest

from restore.evaluate import rician
from restore.evaluate.medical import _spatial_volume


def rician_samples(nu: float, count: int = 200_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(nu + rng.standard_normal(count) + 1j * rng.standard_normal(count))


@pytest.mark.parametrize("nu", [0.0, 1.0, 3.0, 10.0])
def test_closed_form_mean_matches_samples(nu: float) -> None:
    assert rician.rician_mean(nu) == pytest.approx(rician_samples(nu).mean(), rel=5e-3)
    assert rician.rician_sd(nu) == pytest.approx(rician_samples(nu).std(), rel=1e-2)


@pytest.mark.parametrize("nu", [0.5, 1.0, 2.0, 5.0, 20.0])
def test_the_transform_makes_the_spread_close_to_one(nu: float) -> None:
    raw_spread = rician_samples(nu).std()
    stabilised_spread = rician.forward(rician_samples(nu)).std()
    assert abs(stabilised_spread - 1) < 0.1
    if nu < 1:
        assert abs(raw_spread - 1) > 0.2  # the raw Rician spread is what needed stabilising


@pytest.mark.parametrize("nu", [0.5, 1.0, 2.0, 5.0, 20.0])
def test_the_inverse_of_the_mean_is_the_signal_without_bias(nu: float) -> None:
    transformed = rician.forward(rician_samples(nu))
    assert rician.unbiased_inverse(transformed.mean()) == pytest.approx(nu, abs=0.02)
    naive = np.interp(transformed.mean(), *reversed(rician._forward_table()))  # algebraic inverse: f^-1
    if nu <= 2:
        assert abs(naive - nu) > 0.1  # which is biased, hence the tabulated inverse


def test_stabilised_denoising_of_a_flat_region_recovers_its_level() -> None:
    sigma, level = 0.02, 0.03  # SNR 1.5: where the Rician bias is large
    noisy = sigma * rician_samples(level / sigma, count=4096, seed=1)
    mean_denoiser = lambda data, sd: np.full_like(data, data.mean())  # noqa: E731 (the ideal flat-region denoiser)
    assert noisy.mean() > level * 1.2  # biased before
    assert rician.stabilised(mean_denoiser, noisy, sigma).mean() == pytest.approx(level, rel=0.05)


def test_spatial_volume_orders_slices_and_drops_repeats() -> None:
    slices = np.arange(5, dtype=float)[:, None, None] * np.ones((5, 2, 2))
    # context_indices(1, 5, 2) = [1, 0, 2, 0, 3]: the volume's first slice repeats
    volume, centre = _spatial_volume(slices[[1, 0, 2, 0, 3]], context=2)
    assert volume.shape == (2, 2, 4) and list(volume[0, 0]) == [0, 1, 2, 3] and centre == 1
    image, centre = _spatial_volume(np.ones((3, 2, 2)), context=1)  # a 2-D image's repeated slice
    assert image.shape == (2, 2, 1) and centre == 0

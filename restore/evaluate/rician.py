"""The variance-stabilising transform for Rician magnitude data and its exact unbiased
inverse (Foi, "Noise estimation and removal in MR imaging: the variance-stabilization
approach", ISBI 2011), so that a Gaussian denoiser (BM4D) can be given Rician data.

Magnitude MR is Rician: ``z = |nu + sigma (n1 + i n2)|``, whose mean is biased upward and
whose spread shrinks in the dark background. In units of ``sigma``:

- the forward transform ``f`` integrates ``1 / sd`` along the mean, so ``f(z)`` has a
  standard deviation close to 1 at every signal level and the denoiser is told 1;
- the exact unbiased inverse maps a denoised value ``D`` (an estimate of ``E[f(z) | nu]``)
  to the ``nu`` whose ``E[f(z) | nu]`` is ``D``, tabulated by integrating over the Rician
  density. Inverting ``f`` algebraically instead would leave the bias a nonlinear
  transform of noisy data always has.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy.special import i0e, i1e

NU_MAX = 60.0  # signal-to-noise ratios above this are Gaussian enough to extend linearly
_GRID = np.linspace(0.0, NU_MAX, 1201)


def rician_mean(nu: np.ndarray) -> np.ndarray:
    """``E[z | nu]`` at ``sigma = 1``: ``sqrt(pi/2) L_1/2(-nu^2/2)``, with scaled Bessel
    functions so large ``nu`` does not overflow."""
    half = np.asarray(nu, dtype=np.float64) ** 2 / 4
    return np.sqrt(np.pi / 2) * ((1 + 2 * half) * i0e(half) + 2 * half * i1e(half))


def rician_sd(nu: np.ndarray) -> np.ndarray:
    """The standard deviation of ``z`` at ``sigma = 1``: ``sqrt(2 + nu^2 - mean^2)``."""
    nu = np.asarray(nu, dtype=np.float64)
    return np.sqrt(np.maximum(2 + nu**2 - rician_mean(nu) ** 2, 1e-12))


@lru_cache(maxsize=1)
def _forward_table() -> tuple[np.ndarray, np.ndarray]:
    """``(z, f(z))`` on a grid: ``f' = 1 / sd(nu(z))`` with ``nu(z)`` the level whose mean
    is ``z``; below the smallest mean (``nu = 0``) the slope stays ``1 / sd(0)``."""
    means, sds = rician_mean(_GRID), rician_sd(_GRID)
    z = np.concatenate([[0.0], means])
    slope = np.concatenate([[1 / sds[0]], 1 / sds])
    values = np.concatenate([[0.0], np.cumsum((slope[1:] + slope[:-1]) / 2 * np.diff(z))])
    return z, values


def forward(z: np.ndarray) -> np.ndarray:
    """``f(z)`` for magnitudes in units of ``sigma``; linear (slope 1) past the table."""
    table_z, table_f = _forward_table()
    z = np.asarray(z, dtype=np.float64)
    return np.where(z <= table_z[-1], np.interp(z, table_z, table_f), table_f[-1] + (z - table_z[-1]))


@lru_cache(maxsize=1)
def _expectation_table() -> tuple[np.ndarray, np.ndarray]:
    """``(nu, E[f(z) | nu])``, integrating ``f`` against the Rician density
    ``z exp(-(z - nu)^2 / 2) i0e(z nu)`` on a fine grid around each level."""
    expectations = np.empty_like(_GRID)
    for index, nu in enumerate(_GRID):
        z = np.linspace(max(nu - 12.0, 0.0), nu + 12.0, 4001)
        density = z * np.exp(-((z - nu) ** 2) / 2) * i0e(z * nu)
        expectations[index] = np.trapezoid(forward(z) * density, z) / np.trapezoid(density, z)
    return _GRID, expectations


def unbiased_inverse(estimate: np.ndarray) -> np.ndarray:
    """The ``nu`` (units of ``sigma``) whose ``E[f(z) | nu]`` is ``estimate``; 0 below the
    expectation at ``nu = 0``, linear (slope 1) past the table."""
    nu, expectation = _expectation_table()
    estimate = np.asarray(estimate, dtype=np.float64)
    inside = np.interp(estimate, expectation, nu, left=0.0)
    return np.where(estimate <= expectation[-1], inside, nu[-1] + (estimate - expectation[-1]))


def stabilised(denoise: Callable[[np.ndarray, float], np.ndarray], noisy: np.ndarray, sigma: float) -> np.ndarray:
    """``denoise(data, sd)`` applied to Rician ``noisy`` through the transform: forward in
    units of ``sigma``, denoised told sd 1, inverted without bias, scaled back."""
    return sigma * unbiased_inverse(denoise(forward(noisy / sigma), 1.0))

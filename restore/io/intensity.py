"""Scan intensities <-> the networks' [0, 1] range: the one place they are converted.

- CT: Hounsfield units (stored values through RescaleSlope/Intercept) mapped linearly
  from the fixed window :data:`CT_WINDOW_HU`, the 12-bit range CT scanners reconstruct
  (air -1024 HU to dense bone/contrast 3071 HU). Fixed, so a value means the same tissue
  in every scan and in training.
- MR: no physical unit, so per volume: the minimum maps to 0 and the
  :data:`MR_PERCENTILE`-th percentile to :data:`MR_PERCENTILE_LEVEL`, leaving headroom
  for the brightest voxels (vessels, fat); the top is raised to the volume's maximum when
  that is higher, so no voxel is ever clipped.

The inverse is exact: a denoised volume is the input plus the network's *change*
(:func:`apply_change`), so an identity network returns every stored value bit for bit,
even for float volumes; values are then rounded and clipped to the stored type's range
(:meth:`restore.io.medical.Volume.from_physical`). CT voxels outside the window (scanner
padding at -2048 or -3024 HU, metal) are shown to the network clipped and passed
through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CT_WINDOW_HU = (-1024.0, 3071.0)
MR_PERCENTILE = 99.5
MR_PERCENTILE_LEVEL = 0.8
MODALITIES = ("ct", "mr")


@dataclass(frozen=True)
class Normalisation:
    """``normalised = (physical - low) / (high - low)``."""

    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low

    def forward(self, physical: np.ndarray) -> np.ndarray:
        """Physical values -> float32, [0, 1] inside the range (not clipped)."""
        return ((np.asarray(physical, dtype=np.float64) - self.low) / self.width).astype(np.float32)

    def inverse(self, normalised: np.ndarray) -> np.ndarray:
        """float -> physical values (float64)."""
        return np.asarray(normalised, dtype=np.float64) * self.width + self.low


def normalisation_for(modality: str, physical: np.ndarray, mr_percentile: float = MR_PERCENTILE) -> Normalisation:
    """The normalisation of a volume (or a training slice) of ``modality`` (ct | mr);
    ``mr_percentile``: the MR percentile mapped to :data:`MR_PERCENTILE_LEVEL`."""
    if modality == "ct":
        return Normalisation(*CT_WINDOW_HU)
    if modality == "mr":
        low = float(np.min(physical))
        top = float(np.percentile(physical, mr_percentile))
        high = max(low + (top - low) / MR_PERCENTILE_LEVEL, float(np.max(physical)))
        return Normalisation(low, high if high > low else low + 1.0)
    raise ValueError(f"unknown modality {modality!r}; use {' or '.join(MODALITIES)}")


def apply_change(
    physical: np.ndarray, before: np.ndarray, after: np.ndarray, normalisation: Normalisation,
    strength: float = 1.0, window: tuple[float, float] | None = None,
) -> np.ndarray:
    """``physical`` plus ``strength`` times what the network changed (``after - before``,
    normalised units): ``strength`` blends output (1) and input (0), before the caller
    rounds and clips to the stored type, so a radiologist can keep some texture.

    ``before`` is the unclipped normalised input: voxels outside [0, 1] (outside the CT
    window), and outside ``window`` (physical units, e.g. a narrower HU range) when
    given, keep their value."""
    change = (np.asarray(after, dtype=np.float64) - np.clip(before, 0.0, 1.0)) * normalisation.width
    outside = (before < 0) | (before > 1)
    if window is not None:
        outside |= (physical < window[0]) | (physical > window[1])
    return np.where(outside, physical, physical + strength * change)

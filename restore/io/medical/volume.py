"""A scan as stored (:class:`Volume`): stored values in their stored dtype, what turns
them into physical units, the geometry, and the header of the format that read it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

if TYPE_CHECKING:
    from nibabel.nifti1 import Nifti1Header
    from pydicom.dataset import Dataset

    from restore.io.image import Image
    from restore.io.medical.dicom.grouping import Grouping

# Each format's header: the datasets of a DICOM file or series, a NIfTI header (as
# stored), the decoded PNG/TIFF image, None for .npy.
VolumeHeader: TypeAlias = "list[Dataset] | Nifti1Header | Image | None"
Rescale: TypeAlias = "float | np.ndarray"  # a scalar, or per-slice values broadcastable to the voxels


@dataclass
class Volume:
    """A scan as stored.

    ``voxels``: stored values in the stored dtype, ``(slices, rows, columns)`` for DICOM
    and 2-D images (one slice), with a fourth axis of volumes (time points, echoes,
    diffusion directions) for DICOM series that hold several (see
    restore.io.medical.dicom.grouping), the file's array order for NIfTI and ``.npy`` (3-D, or 4-D
    with volumes along the last axis). ``slope``/``intercept`` (scalars, or per-slice arrays
    broadcastable to ``voxels``) give physical values (CT: Hounsfield units).
    ``value_range``: the stored type's valid range (DICOM: BitsStored and
    PixelRepresentation), None for floats. ``spacing``: mm per voxel along each of the first
    three axes. ``slice_axis``: the acquisition's slice axis (the default ``--axis``).
    ``upscaled``: ``(axes, factor)`` after super-resolution, for the writers."""

    voxels: np.ndarray
    format: str  # the name of the format that read it and writes it back: dicom | dicom-series | nifti | image | npy
    slope: Rescale = 1.0
    intercept: Rescale = 0.0
    value_range: tuple[float, float] | None = None
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0)
    affine: np.ndarray | None = None
    slice_axis: int = 0
    modality: str | None = None  # DICOM Modality (CT, MR), when the file says
    header: VolumeHeader = None
    files: list[Path] = field(default_factory=list)  # DICOM series: one file per image
    upscaled: tuple[tuple[int, ...], int] | None = None
    squeezed: bool = False  # a 2-D .npy array, read as one slice: written back 2-D
    grouping: Grouping | None = None  # DICOM: which file or frame holds which slice of which volume

    def physical(self) -> np.ndarray:
        """Values in physical units (float64)."""
        return self.voxels.astype(np.float64) * self.slope + self.intercept

    def from_physical(self, values: np.ndarray) -> np.ndarray:
        """The exact inverse of :meth:`physical`, rounded and clipped to the stored type."""
        stored = (values - self.intercept) / self.slope
        if self.voxels.dtype.kind == "f":
            return stored.astype(self.voxels.dtype)
        return _to_integers(stored, *(self.value_range or stored_range(self.voxels.dtype)), self.voxels.dtype)

    def with_voxels(self, voxels: np.ndarray, upscaled_axes: tuple[int, ...] = (), factor: int = 1) -> Volume:
        """A processed copy: new stored values; ``upscaled_axes`` were enlarged ``factor`` times."""
        spacing = tuple(s / factor if axis in upscaled_axes else s for axis, s in enumerate(self.spacing))
        upscaled = (tuple(upscaled_axes), factor) if factor != 1 else None
        return replace(self, voxels=voxels, spacing=spacing, upscaled=upscaled)


def _to_integers(values: np.ndarray, low: float, high: float, dtype: np.dtype) -> np.ndarray:
    """``values`` rounded and clipped to ``[low, high]`` as integers of ``dtype``. float64
    rounds int64's limits to +-2**63, and casting 2**63 back wraps round to the minimum:
    values at or past a limit are set to it as an integer instead."""
    info = np.iinfo(dtype)
    low_int, high_int = max(int(np.ceil(low)), info.min), min(int(np.floor(high)), info.max)
    rounded = np.rint(values)
    # the nearest float64 inside the range, for the cast of everything between the limits
    safe_low = np.nextafter(np.float64(low_int), np.inf) if int(np.float64(low_int)) < low_int else np.float64(low_int)
    safe_high = np.nextafter(np.float64(high_int), -np.inf) if int(np.float64(high_int)) > high_int else np.float64(high_int)
    result = np.clip(rounded, safe_low, safe_high).astype(dtype)
    result[rounded >= high_int] = high_int
    result[rounded <= low_int] = low_int
    return result


def stored_range(dtype: np.dtype) -> tuple[float, float]:
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    raise TypeError(f"{dtype} has no fixed range")


def integer_range(dtype: np.dtype) -> tuple[float, float] | None:
    """The valid range of stored values of ``dtype``: its integers' range, None for floats."""
    return None if np.dtype(dtype).kind == "f" else stored_range(dtype)

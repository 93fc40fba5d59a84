"""Siemens MOSAIC: a whole volume stored as one 2-D image of tiles.

Siemens scanners write EPI (fMRI, diffusion) volumes as one DICOM file per time point
whose pixels are a grid of ``ceil(sqrt(n))`` x ``ceil(sqrt(n))`` slices, row by row, with
``n`` given by NumberOfImagesInMosaic in the private CSA image header (ImageType contains
MOSAIC). Tile ``k`` lies ``k`` slice spacings along the CSA SliceNormalVector. The slices
are unpacked so that they are processed with their true neighbours, and packed back into
the same layout, so the output is still a mosaic that Siemens tools and dcm2niix read.
nibabel's ``nicom`` reads the CSA header.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np


class MosaicError(ValueError):
    """A file says it is a mosaic but its layout cannot be read."""


def mosaic_count(dataset: Any) -> int | None:
    """The number of slices in ``dataset`` if it is a Siemens mosaic, else None."""
    if "MOSAIC" not in [str(v).upper() for v in dataset.get("ImageType", [])]:
        return None
    try:
        with warnings.catch_warnings():  # nibabel.nicom warns that its DICOM readers are experimental
            warnings.simplefilter("ignore")
            from nibabel.nicom.csareader import get_n_mosaic
    except ImportError as error:
        raise MosaicError("a Siemens MOSAIC; reading its layout needs nibabel: pip install 'restore[medical]'") from error
    csa = _csa(dataset)
    try:
        count = get_n_mosaic(csa) if csa is not None else None
    except Exception as error:  # noqa: BLE001 - nibabel raises several kinds for a damaged header
        raise MosaicError(f"a Siemens MOSAIC whose CSA header cannot be read ({error})") from error
    if not count:
        raise MosaicError("a Siemens MOSAIC without NumberOfImagesInMosaic in its CSA header")
    side = math.ceil(math.sqrt(int(count)))
    if int(dataset.Rows) % side or int(dataset.Columns) % side:
        raise MosaicError(f"a {dataset.Rows}x{dataset.Columns} MOSAIC cannot hold {count} slices in a {side}x{side} grid")
    return int(count)


def _csa(dataset: Any) -> dict | None:
    from nibabel.nicom.csareader import CSAReadError, get_csa_header

    try:
        return get_csa_header(dataset, "image")
    except (CSAReadError, KeyError, ValueError) as error:
        raise MosaicError(f"a Siemens MOSAIC whose CSA header cannot be read ({error})") from error


def slice_step(dataset: Any, normal: np.ndarray | None) -> float:
    """The distance along ``normal`` (the ImageOrientationPatient normal) from one tile to
    the next: the slice spacing, negative when the CSA SliceNormalVector points the other way."""
    from nibabel.nicom.csareader import get_slice_normal

    spacing = float(dataset.get("SpacingBetweenSlices", dataset.get("SliceThickness", 1.0)) or 1.0)
    csa_normal = get_slice_normal(_csa(dataset))
    if normal is None or csa_normal is None:
        return spacing
    return spacing if float(np.dot(np.asarray(csa_normal, dtype=np.float64), normal)) >= 0 else -spacing


def unpack(mosaic: np.ndarray, count: int) -> np.ndarray:
    """``(rows, columns)`` mosaic -> ``(count, rows / side, columns / side)`` slices."""
    side = math.ceil(math.sqrt(count))
    rows, columns = mosaic.shape[0] // side, mosaic.shape[1] // side
    tiles = mosaic.reshape(side, rows, side, columns).transpose(0, 2, 1, 3).reshape(side * side, rows, columns)
    return tiles[:count]


def repack(slices: np.ndarray, canvas: np.ndarray) -> np.ndarray:
    """``(count, r, c)`` slices into the tiles of a copy of ``canvas`` (the input mosaic,
    whose unused tiles are kept); a canvas of another tile size (after super-resolution)
    is replaced by zeros of the new size."""
    count, rows, columns = slices.shape
    side = math.ceil(math.sqrt(count))
    if canvas.shape != (side * rows, side * columns):
        canvas = np.zeros((side * rows, side * columns), dtype=slices.dtype)
    tiles = canvas.reshape(side, rows, side, columns).transpose(0, 2, 1, 3).reshape(side * side, rows, columns).copy()
    tiles[:count] = slices
    return tiles.reshape(side, side, rows, columns).transpose(0, 2, 1, 3).reshape(side * rows, side * columns)

"""An image's attributes wherever its file keeps them: enhanced multi-frame files hold
them per frame in functional groups (per-frame first, then shared), classic files in
the dataset itself. Enhanced DICOM is read here rather than as a format of its own: its
files are ``.dcm`` files of a series like any other (a folder may mix both), and only
their header says which they are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def functional(dataset: Dataset, sequence: str, keyword: str, frame: int = 0) -> Any:
    """A value of an enhanced multi-frame DICOM's functional groups (per-frame first,
    then shared), or of the dataset itself."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        if groups in dataset and len(dataset[groups].value) > index:
            group = dataset[groups][index]
            if sequence in group and len(group[sequence].value) and keyword in group[sequence][0]:
                return group[sequence][0][keyword].value
    return dataset.get(keyword)


def rescale(dataset: Dataset, frame: int = 0) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of one slice or frame, (1, 0) where absent."""
    slope = functional(dataset, "PixelValueTransformationSequence", "RescaleSlope", frame)
    intercept = functional(dataset, "PixelValueTransformationSequence", "RescaleIntercept", frame)
    return float(slope if slope is not None else 1.0), float(intercept if intercept is not None else 0.0)


def slice_geometry(dataset: Dataset, frame: int = 0) -> tuple[np.ndarray | None, np.ndarray | None, tuple[float, float]]:
    """(position, slice normal, (row spacing, column spacing)) of one slice or frame."""
    position = functional(dataset, "PlanePositionSequence", "ImagePositionPatient", frame)
    orientation = functional(dataset, "PlaneOrientationSequence", "ImageOrientationPatient", frame)
    spacing = functional(dataset, "PixelMeasuresSequence", "PixelSpacing", frame)
    normal = None
    if orientation is not None and len(orientation) == 6:
        cosines = np.asarray(orientation, dtype=np.float64)
        normal = np.cross(cosines[:3], cosines[3:])
    spacing_pair = (float(spacing[0]), float(spacing[1])) if spacing is not None and len(spacing) == 2 else (1.0, 1.0)
    return (np.asarray(position, dtype=np.float64) if position is not None else None), normal, spacing_pair


def value_range(dataset: Dataset) -> tuple[float, float]:
    """The valid range of stored values: BitsStored bits, signed if PixelRepresentation says."""
    bits = int(dataset.get("BitsStored", dataset.BitsAllocated))
    if int(dataset.get("PixelRepresentation", 0)):
        return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    return 0.0, float(2**bits - 1)

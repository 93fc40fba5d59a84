"""A processed DICOM volume back to datasets, one per input file: every element of the
input kept except those that make it a derived image (restore.io.medical.dicom.derived),
Smallest/Largest Image Pixel Value (when present, recomputed), and after
super-resolution Rows, Columns, PixelSpacing and ImagePositionPatient, in the dataset and
in every functional group (enhanced multi-frame)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from restore.io.medical.base import WriteOptions
from restore.io.medical.dicom.compression import output_syntax, set_pixels
from restore.io.medical.dicom.derived import mark_derived, new_series_uid
from restore.io.medical.dicom.mosaic import mosaic_count, repack
from restore.io.medical.dicom.read import import_pydicom, pixels
from restore.io.medical.volume import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def dicom_outputs(volume: Volume, options: WriteOptions) -> list[Dataset]:
    """The output datasets: one per slice (series) or one holding every frame."""
    import_pydicom()
    series_uid = new_series_uid()
    datasets = volume.header
    images = volume.grouping.scatter(volume.voxels)
    per_file, start = [], 0
    for dataset in datasets:  # each file's images, a mosaic's packed back into its tiles
        count = mosaic_count(dataset) or int(dataset.get("NumberOfFrames", 1) or 1)
        own = np.stack(images[start:start + count])
        per_file.append(repack(own, pixels(dataset, Path("input"))[0]) if mosaic_count(dataset) else own)
        start += count
    outputs = []
    for source, stored in zip(datasets, per_file):
        dataset = copy.deepcopy(source)
        if volume.upscaled is not None:
            _update_geometry(dataset, stored.shape[-2:], volume.upscaled[1])
        set_pixels(dataset, stored, output_syntax(dataset.file_meta.TransferSyntaxUID, options.keep_compression)[0])
        mark_derived(dataset, source, series_uid, options.description_suffix, options.derivation)
        for keyword, value in (("SmallestImagePixelValue", stored.min()), ("LargestImagePixelValue", stored.max())):
            if keyword in dataset:
                dataset[keyword].value = int(value)
        outputs.append(dataset)
    return outputs


def _update_geometry(dataset: Dataset, shape: tuple[int, int], factor: int) -> None:
    """Rows/Columns, PixelSpacing and ImagePositionPatient after in-plane upscaling,
    in the dataset and in every functional group (enhanced multi-frame)."""
    dataset.Rows, dataset.Columns = int(shape[0]), int(shape[1])
    containers = [dataset]
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in dataset.get(groups, []):
            for sequence in ("PixelMeasuresSequence", "PlanePositionSequence", "PlaneOrientationSequence"):
                containers += list(group.get(sequence, []))
    orientation = next((c.ImageOrientationPatient for c in containers if "ImageOrientationPatient" in c), None)
    spacing = next((c.PixelSpacing for c in containers if "PixelSpacing" in c), None)
    for container in containers:
        if "PixelSpacing" in container:
            container.PixelSpacing = [_ds(float(s) / factor) for s in container.PixelSpacing]
        if "ImagePositionPatient" in container and orientation is not None and spacing is not None:
            cosines = np.asarray(orientation, dtype=np.float64)
            shift = (0.5 / factor - 0.5) * (float(spacing[1]) * cosines[:3] + float(spacing[0]) * cosines[3:])
            position = np.asarray(container.ImagePositionPatient, dtype=np.float64) + shift
            container.ImagePositionPatient = [_ds(value) for value in position]


def _ds(value: float) -> str:
    """A decimal string (VR DS) of at most 16 characters."""
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.6g}"

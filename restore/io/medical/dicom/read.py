"""DICOM files to one :class:`~restore.io.medical.volume.Volume`: the images of a series'
files, or the frames of one multi-frame (enhanced) file, or the tiles of a Siemens
mosaic, grouped into slices and time points. pydicom (the ``[medical]`` extra) is
imported when a file is opened."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from restore.io.medical.base import MedicalReadError, check_size
from restore.io.medical.dicom.attributes import functional, rescale, slice_geometry, value_range
from restore.io.medical.dicom.compression import DECODERS, can_decode
from restore.io.medical.dicom.grouping import Grouping, GroupingError, group_images
from restore.io.medical.dicom.mosaic import MosaicError, mosaic_count, slice_step, unpack
from restore.io.medical.volume import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

IMAGE_PIXEL_TAGS = ("Rows", "Columns", "BitsAllocated")  # type 1 in the Image Pixel module

SourceImage = tuple["Dataset", int, "int | None"]  # (dataset, index in the file, slices if a mosaic)


def import_pydicom():
    try:
        import pydicom
    except ImportError as error:
        raise MedicalReadError("DICOM needs pydicom: pip install 'restore[medical]'") from error
    return pydicom


def read_dataset(path: Path) -> Dataset:
    """The dataset of one grey DICOM image file, or an error saying why it cannot be used."""
    pydicom = import_pydicom()
    try:
        dataset = pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise MedicalReadError(f"{path}: not a readable DICOM file ({error})") from error
    if "PixelData" not in dataset:
        raise MedicalReadError(f"{path}: DICOM file without pixel data ({dataset.get('SOPClassUID', 'unknown class')})")
    for keyword in IMAGE_PIXEL_TAGS:
        value = dataset.get(keyword)
        if not isinstance(value, int) or value <= 0:
            state = "has no" if value is None else f"has an unusable ({value!r})"
            raise MedicalReadError(
                f"{path}: the DICOM file {state} {keyword} tag, which the pixel data cannot be read "
                f"without: the file is damaged or incomplete"
            )
    if int(dataset.get("SamplesPerPixel", 1)) != 1:
        raise MedicalReadError(f"{path}: colour DICOM ({dataset.get('PhotometricInterpretation')}); only grey scans are supported")
    return dataset


def pixels(dataset: Dataset, path: Path) -> np.ndarray:
    """The stored values, or an error naming the transfer syntax and its decoder package."""
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    try:
        stored = dataset.pixel_array
    except Exception as error:  # pydicom raises RuntimeError/NotImplementedError/ValueError per plugin
        if syntax is not None and syntax.is_compressed and can_decode(syntax):
            raise MedicalReadError(f"{path}: pixel data compressed as {syntax.name} is damaged or uses a variant "
                                   f"the installed decoders do not support ({error})") from error
        if syntax is not None and syntax.is_compressed:
            package = DECODERS.get(str(syntax), "a pydicom pixel-data plugin for it")
            raise MedicalReadError(
                f"{path}: pixel data compressed as {syntax.name} ({syntax}) cannot be decoded here; "
                f"install {package}"
            ) from error
        raise MedicalReadError(f"{path}: cannot decode the pixel data ({error})") from error
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    return stored.reshape(frames, *stored.shape[-2:])


def dicom_volume(datasets: list[Dataset], path: Path, max_voxels: int) -> Volume:
    """The volume(s) of the images of a series or of one multi-frame file (Siemens mosaics
    unpacked to their slices), with ``format`` "dicom" and ``files`` ``[path]``."""
    first = datasets[0]
    declared = sum(int(d.Rows) * int(d.Columns) * int(d.get("NumberOfFrames", 1) or 1) for d in datasets)
    check_size(declared, max_voxels, path)
    images = _images(datasets, path)
    slices = [pixels(dataset, path) for dataset in datasets]
    slices = [unpack(s[0], count) if count else s for s, count in zip(slices, (mosaic_count(d) for d in datasets))]
    shapes = {s.shape[1:] for s in slices}
    dtypes = {s.dtype for s in slices}
    if len(shapes) > 1 or len(dtypes) > 1:
        raise MedicalReadError(f"{path}: slices differ in size or type ({sorted(map(str, shapes))}, {sorted(map(str, dtypes))})")
    grouping, distances = _grouping(images, path)
    voxels = grouping.gather(np.concatenate(slices, axis=0))
    rescales = [rescale(dataset, 0 if mosaic else index) for dataset, index, mosaic in images]
    slopes = grouping.gather(np.array([s for s, _ in rescales]).reshape(-1, 1, 1))
    intercepts = grouping.gather(np.array([i for _, i in rescales]).reshape(-1, 1, 1))
    uniform = np.all(slopes == slopes.flat[0]) and np.all(intercepts == intercepts.flat[0])
    _, normal, (row_spacing, column_spacing) = slice_geometry(first)
    slice_spacing = float(first.get("SpacingBetweenSlices", first.get("SliceThickness", 1.0)) or 1.0)
    ordered = [distances[i] for i in grouping.cells[:, 0]]  # one volume's, in slice order
    if len(ordered) > 1 and all(d is not None for d in ordered):
        steps = np.diff(ordered)
        if np.any(np.abs(steps) > 1e-6):
            slice_spacing = float(np.median(np.abs(steps[np.abs(steps) > 1e-6])))
    return Volume(
        voxels=voxels,
        format="dicom",
        slope=float(slopes.flat[0]) if uniform else slopes,
        intercept=float(intercepts.flat[0]) if uniform else intercepts,
        value_range=value_range(first),
        spacing=(slice_spacing, row_spacing, column_spacing),
        slice_axis=0,
        modality=str(first.get("Modality", "")) or None,
        header=datasets,
        files=[path],
        grouping=grouping,
    )


def _images(datasets: list[Dataset], path: Path) -> list[SourceImage]:
    """Every 2-D image of the files: ``(dataset, index in the file, slices if a mosaic)``;
    the index is a frame of a multi-frame file or a tile of a Siemens mosaic."""
    images = []
    for dataset in datasets:
        try:
            count = mosaic_count(dataset)
        except MosaicError as error:
            raise MedicalReadError(f"{path}: {error}") from error
        frames = count or int(dataset.get("NumberOfFrames", 1) or 1)
        images += [(dataset, index, count) for index in range(frames)]
    return images


def _grouping(images: list[SourceImage], path: Path) -> tuple[Grouping, list[float | None]]:
    """The images grouped into volumes by position along the first file's slice normal and
    by time point (restore.io.medical.dicom.grouping), and their distances along that normal.
    Frames of one file without per-frame positions are slices in frame order; the tiles
    of a mosaic lie one slice spacing apart."""
    first = images[0][0]
    normal = slice_geometry(first)[1]
    several = len({id(dataset) for dataset, _, _ in images}) > 1
    per_frame = first.get("PerFrameFunctionalGroupsSequence")
    located = several or images[0][2] is not None or bool(per_frame) and "PlanePositionSequence" in per_frame[0]
    distances: list[float | None] = []
    for dataset, index, mosaic in images:
        position = slice_geometry(dataset, 0 if mosaic else index)[0]
        if not located or position is None or normal is None:
            distances.append(None)
        else:
            distances.append(float(position @ normal) + (index * slice_step(dataset, normal) if mosaic else 0.0))
    orders = [float(dataset.get("InstanceNumber", 0) or 0) if several else float(index) for dataset, index, _ in images]
    lookups = [lambda sequence, keyword, dataset=dataset, frame=(0 if mosaic else index):
               functional(dataset, sequence, keyword, frame) if sequence else dataset.get(keyword)
               for dataset, index, mosaic in images]
    try:
        return group_images(distances, lookups, orders), distances
    except GroupingError as error:
        raise MedicalReadError(f"{path}: {error}") from error

"""Medical scans in and out: DICOM (file, series folder, enhanced multi-frame), NIfTI,
16-bit PNG/TIFF and ``.npy``, behind one :class:`Volume`.

A scan's numbers are data, not pictures, so a volume keeps the *stored* values in their
stored dtype, with what turns them into physical units (slope/intercept, the stored
type's valid range) and geometry (spacing, affine) next to them, and the source header
it came from. Writers put a processed volume back in its input's format: every DICOM
tag and NIfTI header field is kept except those that must change (see
:func:`write_volume`).

pydicom and nibabel (the ``[medical]`` extra) are imported when a scan is opened, so the
rest of ``restore`` never needs them.
"""

from __future__ import annotations

import copy
import gzip
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from restore.io.atomic import atomic_write
from restore.io.dicom_compression import can_decode, output_syntax, set_pixels
from restore.io.dicom_derived import mark_derived, new_series_uid
from restore.io.dicom_grouping import Grouping, GroupingError, group_images
from restore.io.mosaic import MosaicError, mosaic_count, repack, slice_step, unpack

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
NUMPY_SUFFIXES = (".npy",)
IMAGE_PIXEL_TAGS = ("Rows", "Columns", "BitsAllocated")  # type 1 in the Image Pixel module
from restore.io.limits import MAX_VOXELS as DEFAULT_MAX_VOXELS  # noqa: E402 - the one definition

# Compressed transfer syntaxes -> the package that lets pydicom decode them (RLE and
# Deflate it decodes itself).
DECODERS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.70": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.80": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.81": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg + pylibjpeg-openjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg + pylibjpeg-openjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg + pylibjpeg-openjpeg >= 2.0",
    "1.2.840.10008.1.2.4.202": "pylibjpeg + pylibjpeg-openjpeg >= 2.0",
    "1.2.840.10008.1.2.4.203": "pylibjpeg + pylibjpeg-openjpeg >= 2.0",
}


class MedicalReadError(ValueError):
    """A scan that cannot be used, with the file and what to do about it."""


@dataclass
class Volume:
    """A scan as stored.

    ``voxels``: stored values in the stored dtype, ``(slices, rows, columns)`` for DICOM
    and 2-D images (one slice), with a fourth axis of volumes (time points, echoes,
    diffusion directions) for DICOM series that hold several (see
    restore.io.dicom_grouping), the file's array order for NIfTI and ``.npy`` (3-D, or 4-D
    with volumes along the last axis). ``slope``/``intercept`` (scalars, or per-slice arrays
    broadcastable to ``voxels``) give physical values (CT: Hounsfield units).
    ``value_range``: the stored type's valid range (DICOM: BitsStored and
    PixelRepresentation), None for floats. ``spacing``: mm per voxel along each of the first
    three axes. ``slice_axis``: the acquisition's slice axis (the default ``--axis``).
    ``upscaled``: ``(axes, factor)`` after super-resolution, for the writers."""

    voxels: np.ndarray
    format: str  # dicom | dicom-series | nifti | image | npy
    slope: Any = 1.0
    intercept: Any = 0.0
    value_range: tuple[float, float] | None = None
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0)
    affine: np.ndarray | None = None
    slice_axis: int = 0
    modality: str | None = None  # DICOM Modality (CT, MR), when the file says
    header: Any = None  # datasets (DICOM), header (NIfTI), Image (PNG/TIFF), None (npy)
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


def volume_kind(path: Path) -> str | None:
    """``dicom``, ``nifti``, ``image``, ``npy`` or None, by name and, for DICOM files
    without a known extension (scanners name them ``MR.1.2.3...``), by the ``DICM`` magic."""
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(IMAGE_SUFFIXES):
        return "image"
    if name.endswith(NUMPY_SUFFIXES):
        return "npy"
    if name.endswith(DICOM_SUFFIXES) or is_dicom(path):
        return "dicom"
    return None


def is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def output_name(name: str, suffix: str) -> str:
    """``name`` with ``suffix`` before its extension, ``.nii.gz`` counted as one."""
    lower = name.lower()
    extension = next((e for e in (".nii.gz", *DICOM_SUFFIXES, *NIFTI_SUFFIXES, *IMAGE_SUFFIXES, *NUMPY_SUFFIXES)
                      if lower.endswith(e)), "")
    stem = name[: len(name) - len(extension)] if extension else name
    return f"{stem}{suffix}{name[len(stem):]}"


# -- reading -------------------------------------------------------------------------


def read_volume(path: str | os.PathLike, files: list[Path] | None = None, max_voxels: int = DEFAULT_MAX_VOXELS) -> Volume:
    """Read a scan. ``path`` is a file, or a folder holding one DICOM series (``files``:
    its DICOM files, when the caller has already listed them). A scan whose header
    declares more than ``max_voxels`` voxels is refused before its pixels are decoded."""
    path = Path(path)
    if path.is_dir():
        if files is None:
            files = [p for p in sorted(path.iterdir()) if p.is_file() and volume_kind(p) == "dicom"]
        return _read_dicom_series(path, files, max_voxels)
    kind = volume_kind(path)
    if kind == "dicom":
        volume = _dicom_volume([_read_dicom(path)], path, max_voxels)
        volume.format = "dicom"
        return volume
    if kind == "nifti":
        return _read_nifti(path, max_voxels)
    if kind == "image":
        return _read_image(path, max_voxels)
    if kind == "npy":
        return _read_npy(path, max_voxels)
    raise MedicalReadError(f"{path}: not a scan (DICOM, NIfTI .nii/.nii.gz, PNG/TIFF or .npy)")


def _check_size(voxels: int, max_voxels: int, path: Path) -> None:
    if voxels > max_voxels:
        raise MedicalReadError(f"{path}: {voxels} voxels, more than the limit {max_voxels}; "
                               f"raise it with --max-voxels if the file is trusted")


def _pydicom():
    try:
        import pydicom
    except ImportError as error:
        raise MedicalReadError("DICOM needs pydicom: pip install 'restore[medical]'") from error
    return pydicom


def _read_dicom(path: Path) -> Any:
    pydicom = _pydicom()
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


def _pixels(dataset: Any, path: Path) -> np.ndarray:
    """The stored values, or an error naming the transfer syntax and its decoder package."""
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    try:
        pixels = dataset.pixel_array
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
    return pixels.reshape(frames, *pixels.shape[-2:])


def _dicom_range(dataset: Any) -> tuple[float, float]:
    bits = int(dataset.get("BitsStored", dataset.BitsAllocated))
    if int(dataset.get("PixelRepresentation", 0)):
        return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    return 0.0, float(2**bits - 1)


def _functional(dataset: Any, sequence: str, keyword: str, frame: int = 0) -> Any:
    """A value of an enhanced multi-frame DICOM's functional groups (per-frame first,
    then shared), or of the dataset itself."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        if groups in dataset and len(dataset[groups].value) > index:
            group = dataset[groups][index]
            if sequence in group and len(group[sequence].value) and keyword in group[sequence][0]:
                return group[sequence][0][keyword].value
    return dataset.get(keyword)


def _rescale(dataset: Any, frame: int = 0) -> tuple[float, float]:
    slope = _functional(dataset, "PixelValueTransformationSequence", "RescaleSlope", frame)
    intercept = _functional(dataset, "PixelValueTransformationSequence", "RescaleIntercept", frame)
    return float(slope if slope is not None else 1.0), float(intercept if intercept is not None else 0.0)


def _slice_geometry(dataset: Any, frame: int = 0) -> tuple[np.ndarray | None, np.ndarray | None, tuple[float, float]]:
    """(position, slice normal, (row spacing, column spacing)) of one slice or frame."""
    position = _functional(dataset, "PlanePositionSequence", "ImagePositionPatient", frame)
    orientation = _functional(dataset, "PlaneOrientationSequence", "ImageOrientationPatient", frame)
    spacing = _functional(dataset, "PixelMeasuresSequence", "PixelSpacing", frame)
    normal = None
    if orientation is not None and len(orientation) == 6:
        cosines = np.asarray(orientation, dtype=np.float64)
        normal = np.cross(cosines[:3], cosines[3:])
    spacing_pair = (float(spacing[0]), float(spacing[1])) if spacing is not None and len(spacing) == 2 else (1.0, 1.0)
    return (np.asarray(position, dtype=np.float64) if position is not None else None), normal, spacing_pair


def _read_dicom_series(folder: Path, files: list[Path], max_voxels: int) -> Volume:
    if not files:
        raise MedicalReadError(f"{folder}: no DICOM files")
    datasets = [_read_dicom(path) for path in files]
    series = {str(d.get("SeriesInstanceUID", "")) for d in datasets}
    if len(series) > 1:
        raise MedicalReadError(f"{folder}: {len(series)} DICOM series in one folder; give each series its own folder")
    volume = _dicom_volume(datasets, folder, max_voxels)
    volume.format, volume.files = "dicom-series", list(files)
    return volume


def _images(datasets: list[Any], path: Path) -> list[tuple[Any, int, int | None]]:
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


def _grouping(images: list[tuple[Any, int, int | None]], path: Path) -> tuple[Grouping, list[float | None]]:
    """The images grouped into volumes by position along the first file's slice normal and
    by time point (restore.io.dicom_grouping), and their distances along that normal.
    Frames of one file without per-frame positions are slices in frame order; the tiles
    of a mosaic lie one slice spacing apart."""
    first = images[0][0]
    normal = _slice_geometry(first)[1]
    several = len({id(dataset) for dataset, _, _ in images}) > 1
    per_frame = first.get("PerFrameFunctionalGroupsSequence")
    located = several or images[0][2] is not None or bool(per_frame) and "PlanePositionSequence" in per_frame[0]
    distances: list[float | None] = []
    for dataset, index, mosaic in images:
        position = _slice_geometry(dataset, 0 if mosaic else index)[0]
        if not located or position is None or normal is None:
            distances.append(None)
        else:
            distances.append(float(position @ normal) + (index * slice_step(dataset, normal) if mosaic else 0.0))
    orders = [float(dataset.get("InstanceNumber", 0) or 0) if several else float(index) for dataset, index, _ in images]
    lookups = [lambda sequence, keyword, dataset=dataset, frame=(0 if mosaic else index):
               _functional(dataset, sequence, keyword, frame) if sequence else dataset.get(keyword)
               for dataset, index, mosaic in images]
    try:
        return group_images(distances, lookups, orders), distances
    except GroupingError as error:
        raise MedicalReadError(f"{path}: {error}") from error


def _dicom_volume(datasets: list[Any], path: Path, max_voxels: int) -> Volume:
    """The volume(s) of the images of a series or of one multi-frame file (Siemens mosaics
    unpacked to their slices)."""
    first = datasets[0]
    declared = sum(int(d.Rows) * int(d.Columns) * int(d.get("NumberOfFrames", 1) or 1) for d in datasets)
    _check_size(declared, max_voxels, path)
    images = _images(datasets, path)
    slices = [_pixels(dataset, path) for dataset in datasets]
    slices = [unpack(s[0], count) if count else s for s, count in zip(slices, (mosaic_count(d) for d in datasets))]
    shapes = {s.shape[1:] for s in slices}
    dtypes = {s.dtype for s in slices}
    if len(shapes) > 1 or len(dtypes) > 1:
        raise MedicalReadError(f"{path}: slices differ in size or type ({sorted(map(str, shapes))}, {sorted(map(str, dtypes))})")
    grouping, distances = _grouping(images, path)
    voxels = grouping.gather(np.concatenate(slices, axis=0))
    rescale = [_rescale(dataset, 0 if mosaic else index) for dataset, index, mosaic in images]
    slopes = grouping.gather(np.array([s for s, _ in rescale]).reshape(-1, 1, 1))
    intercepts = grouping.gather(np.array([i for _, i in rescale]).reshape(-1, 1, 1))
    uniform = np.all(slopes == slopes.flat[0]) and np.all(intercepts == intercepts.flat[0])
    _, normal, (row_spacing, column_spacing) = _slice_geometry(first)
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
        value_range=_dicom_range(first),
        spacing=(slice_spacing, row_spacing, column_spacing),
        slice_axis=0,
        modality=str(first.get("Modality", "")) or None,
        header=datasets,
        files=[path],
        grouping=grouping,
    )


def _nibabel():
    try:
        import nibabel
    except ImportError as error:
        raise MedicalReadError("NIfTI needs nibabel: pip install 'restore[medical]'") from error
    return nibabel


def _read_nifti(path: Path, max_voxels: int) -> Volume:
    nibabel = _nibabel()
    from nibabel.openers import ImageOpener

    try:
        image = nibabel.load(path)
        _check_size(int(np.prod(image.shape)), max_voxels, path)
        with ImageOpener(path) as handle:  # the header as stored (nibabel resets scl_* on load)
            header = type(image.header).from_fileobj(handle)
        voxels = np.asanyarray(image.dataobj.get_unscaled())
    except (nibabel.filebasedimages.ImageFileError, OSError, ValueError, EOFError) as error:
        raise MedicalReadError(f"{path}: not a readable NIfTI file ({error})") from error
    if voxels.ndim not in (2, 3, 4):
        raise MedicalReadError(f"{path}: {voxels.ndim}-D NIfTI; 2-D, 3-D and 4-D volumes are supported")
    if voxels.ndim == 2:
        voxels = voxels[:, :, None]
    slope, intercept = header.get_slope_inter()
    zooms = tuple(float(z) for z in header.get_zooms()[:3])
    return Volume(
        voxels=voxels,
        format="nifti",
        slope=1.0 if slope is None else float(slope),
        intercept=0.0 if intercept is None else float(intercept),
        value_range=None if voxels.dtype.kind == "f" else stored_range(voxels.dtype),
        spacing=zooms + (1.0,) * (3 - len(zooms)),
        affine=image.affine,
        slice_axis=2,
        header=header,
        files=[path],
    )


def _read_image(path: Path, max_voxels: int) -> Volume:
    from restore.io.image import ImageReadError, read_image

    try:
        image = read_image(path, max_voxels)
    except ImageReadError as error:
        raise MedicalReadError(str(error)) from error
    if image.channels != 1 or image.alpha is not None:
        raise MedicalReadError(f"{path}: a colour or transparent image; scans are single-channel grey")
    pixels = image.pixels[None, :, :, 0]
    return Volume(
        voxels=pixels,
        format="image",
        value_range=None if pixels.dtype.kind == "f" else stored_range(pixels.dtype),
        header=image,
        files=[path],
    )


def _read_npy(path: Path, max_voxels: int) -> Volume:
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # the header only, for the size check
        _check_size(int(mapped.size), max_voxels, path)
        voxels = np.array(mapped)
    except (OSError, ValueError) as error:
        raise MedicalReadError(f"{path}: not a readable .npy array ({error})") from error
    squeezed = voxels.ndim == 2
    if squeezed:
        voxels = voxels[None]
    if voxels.ndim not in (3, 4) or voxels.dtype.kind not in "uif":
        raise MedicalReadError(f"{path}: a {voxels.ndim}-D {voxels.dtype} array; 2-D to 4-D numeric arrays are supported")
    return Volume(
        voxels=voxels,
        format="npy",
        value_range=None if voxels.dtype.kind == "f" else stored_range(voxels.dtype),
        files=[path],
        squeezed=squeezed,
    )


# -- writing -------------------------------------------------------------------------


def write_volume(
    path: str | os.PathLike, volume: Volume, name_suffix: str = "", description_suffix: str = " restored",
    keep_compression: bool = False, derivation: str = "processed",
) -> None:
    """Write ``volume`` in its input's format, each file atomically. A DICOM series goes to
    the folder ``path``, one file per slice named as the input's (plus ``name_suffix``),
    in name order: the last name existing means the whole series is there.

    DICOM keeps every element of the input except those that make it a derived image
    (restore.io.dicom_derived: new SOP Instance and Series Instance UIDs,
    SeriesDescription with ``description_suffix``, ImageType and frame types
    DERIVED\\SECONDARY, DerivationDescription from ``derivation``, SourceImageSequence
    referencing the input), Smallest/Largest Image
    Pixel Value (when present, recomputed), and after super-resolution Rows, Columns,
    PixelSpacing and ImagePositionPatient (moved half a new pixel so the voxel centres
    stay where they are). The dtype, BitsStored, PixelRepresentation and Rescale
    Slope/Intercept are the input's. A compressed input is written uncompressed
    (Explicit VR Little Endian), or with ``keep_compression`` compressed losslessly
    (restore.io.dicom_compression). NIfTI keeps its header byte for byte except the
    dimensions, and after super-resolution the voxel sizes and the q/s-form affines."""
    path = Path(path)
    if volume.format == "dicom-series":
        outputs = zip(volume.files, _dicom_outputs(volume, description_suffix, keep_compression, derivation))
        for source, dataset in sorted(outputs, key=lambda pair: output_name(pair[0].name, name_suffix)):
            target = path / output_name(source.name, name_suffix)
            atomic_write(target, lambda temp, dataset=dataset: dataset.save_as(temp, enforce_file_format=True))
    elif volume.format == "dicom":
        dataset = _dicom_outputs(volume, description_suffix, keep_compression, derivation)[0]
        atomic_write(path, lambda temp: dataset.save_as(temp, enforce_file_format=True))
    elif volume.format == "nifti":
        atomic_write(path, lambda temp: _write_nifti(temp, volume, gzipped=path.name.lower().endswith(".gz")))
    elif volume.format == "image":
        from restore.io.image import Image, write_image

        write_image(path, Image(volume.voxels[0][:, :, None], format=volume.header.format if volume.header else None))
    elif volume.format == "npy":
        atomic_write(path, lambda temp: _save_npy(temp, volume.voxels[0] if volume.squeezed else volume.voxels))
    else:
        raise ValueError(f"unknown volume format {volume.format!r}")


def _save_npy(temp: Path, voxels: np.ndarray) -> None:
    with open(temp, "wb") as handle:
        np.save(handle, voxels, allow_pickle=False)


def _dicom_outputs(volume: Volume, description_suffix: str, keep_compression: bool, derivation: str) -> list[Any]:
    """The output datasets: one per slice (series) or one holding every frame."""
    _pydicom()
    series_uid = new_series_uid()
    datasets = volume.header
    images = volume.grouping.scatter(volume.voxels)
    per_file, start = [], 0
    for dataset in datasets:  # each file's images, a mosaic's packed back into its tiles
        count = mosaic_count(dataset) or int(dataset.get("NumberOfFrames", 1) or 1)
        own = np.stack(images[start:start + count])
        per_file.append(repack(own, _pixels(dataset, Path("input"))[0]) if mosaic_count(dataset) else own)
        start += count
    outputs = []
    for source, pixels in zip(datasets, per_file):
        dataset = copy.deepcopy(source)
        if volume.upscaled is not None:
            _update_dicom_geometry(dataset, pixels.shape[-2:], volume.upscaled[1])
        set_pixels(dataset, pixels, output_syntax(dataset.file_meta.TransferSyntaxUID, keep_compression)[0])
        mark_derived(dataset, source, series_uid, description_suffix, derivation)
        for keyword, value in (("SmallestImagePixelValue", pixels.min()), ("LargestImagePixelValue", pixels.max())):
            if keyword in dataset:
                dataset[keyword].value = int(value)
        outputs.append(dataset)
    return outputs


def _update_dicom_geometry(dataset: Any, shape: tuple[int, int], factor: int) -> None:
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


def _write_nifti(temp: Path, volume: Volume, gzipped: bool) -> None:
    from nibabel.volumeutils import array_to_file

    header = volume.header.copy()
    voxels = volume.voxels
    flat = len(header.get_data_shape()) == 2  # a 2-D NIfTI is read as one slice and written back 2-D
    shape = voxels.shape[:2] if flat else voxels.shape
    if tuple(header.get_data_shape()) != shape:
        pixdim = header["pixdim"].copy()  # set_data_shape resets the voxel sizes it does not know
        header.set_data_shape(shape)
        header["pixdim"] = pixdim
    if volume.upscaled is not None:
        axes, factor = volume.upscaled
        zooms = list(header.get_zooms())
        for axis in axes:
            zooms[axis] /= factor
        header.set_zooms(zooms)
        for form in ("sform", "qform"):
            affine, code = getattr(header, f"get_{form}")(coded=True)
            if code:
                getattr(header, f"set_{form}")(upscaled_affine(affine, axes, factor), code=int(code))
    opener = gzip.open if gzipped else open
    with opener(temp, "wb") as handle:
        header.write_to(handle)
        array_to_file(voxels, handle, header.get_data_dtype(), offset=int(header["vox_offset"]), order="F")


def upscaled_affine(affine: np.ndarray, axes: tuple[int, ...], factor: int) -> np.ndarray:
    """The voxel-to-world affine after ``axes`` were upsampled ``factor`` times with the
    voxel-centre convention (pixel shuffle, bicubic with ``align_corners=False``): new
    voxel ``i`` sits at old index ``(i + 0.5) / factor - 0.5``."""
    result = np.array(affine, dtype=np.float64)
    for axis in axes:
        result[:3, 3] += affine[:3, axis] * (0.5 / factor - 0.5)
        result[:3, axis] = affine[:3, axis] / factor
    return result

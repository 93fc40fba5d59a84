"""The registered scan formats, and reading and writing through them.

A path is read by the first registered format that claims it (a folder: the first
folder format, a DICOM series); a volume is written back by the format named by its
:attr:`~restore.io.medical.volume.Volume.format`. The built-in formats are registered by
the package (restore.io.medical); :func:`register` adds another. Paths may be objects in
storage (:class:`~restore.io.storage.ObjectPath`): read through a local copy, written with
the atomic upload of restore.io.storage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from restore.io.limits import MAX_VOXELS
from restore.io.medical.base import MedicalReadError, VolumeFormat, WriteOptions
from restore.io.medical.volume import Volume
from restore.io.storage import ObjectPath, fetched, location

FORMATS: list[VolumeFormat] = []  # consulted in this order


def register(volume_format: VolumeFormat) -> None:
    """Add ``volume_format``, consulted before those registered earlier (so it may take
    over a suffix from a built-in format)."""
    FORMATS.insert(0, volume_format)


def volume_kind(path: Path) -> str | None:
    """The name of the format of the file ``path`` (``dicom``, ``nifti``, ``image``,
    ``npy``), or None: by name and, for DICOM files without a known extension (scanners
    name them ``MR.1.2.3...``), by the ``DICM`` magic."""
    return next((f.name for f in FORMATS if not f.folder and f.claims(path)), None)


def output_name(name: str, suffix: str) -> str:
    """``name`` with ``suffix`` before its extension, ``.nii.gz`` counted as one."""
    lower = name.lower()
    extension = next((e for f in FORMATS for e in f.suffixes if lower.endswith(e)), "")
    stem = name[: len(name) - len(extension)] if extension else name
    return f"{stem}{suffix}{name[len(stem):]}"


def read_volume(path: str | os.PathLike | ObjectPath, files: Sequence[Path | ObjectPath] | None = None,
                max_voxels: int = MAX_VOXELS) -> Volume:
    """Read a scan. ``path`` is a file, or a folder holding one DICOM series (``files``:
    its DICOM files, when the caller has already listed them); either may be in object
    storage (a URL or an ObjectPath). A scan whose header declares more than ``max_voxels``
    voxels is refused before its pixels are decoded."""
    path = location(path)
    if isinstance(path, ObjectPath):
        return _read_objects(path, files, max_voxels)
    folder = path.is_dir()
    reader = next((f for f in FORMATS if f.folder == folder and f.claims(path)), None)
    if reader is None:
        raise MedicalReadError(f"{path}: not a scan (DICOM, NIfTI .nii/.nii.gz, PNG/TIFF or .npy)")
    return reader.read(path, max_voxels, None if files is None else list(files))


def _read_objects(path: ObjectPath, files: Sequence[ObjectPath] | None, max_voxels: int) -> Volume:
    """:func:`read_volume` of a scan in object storage: its objects (those of the folder when
    ``files`` is None) fetched into a private local folder and read there. The volume's
    ``files`` and any error name the objects, not their passing copies."""
    folder = path.is_dir()
    objects = list(files) if files is not None else path.glob("*") if folder else [path]
    with fetched(objects) as local:
        copies = {local / source.name: source for source in objects}
        copy = local if folder else local / path.name
        try:
            volume = read_volume(copy, None if files is None else list(copies), max_voxels)
        except MedicalReadError as error:
            raise MedicalReadError(str(error).replace(str(copy), str(path))) from error
    volume.files = [copies.get(file, file) for file in volume.files]
    return volume


def write_volume(
    path: str | os.PathLike | ObjectPath, volume: Volume, name_suffix: str = "", description_suffix: str = " restored",
    keep_compression: bool = False, derivation: str = "processed",
) -> None:
    """Write ``volume`` in its input's format, each file atomically (``path`` in object
    storage: each object in one upload, visible only complete). A DICOM series goes to
    the folder ``path``, one file per slice named as the input's (plus ``name_suffix``),
    in name order: the last name existing means the whole series is there.

    DICOM keeps every element of the input except those that make it a derived image
    (restore.io.medical.dicom.derived: new SOP Instance and Series Instance UIDs,
    SeriesDescription with ``description_suffix``, ImageType and frame types
    DERIVED\\SECONDARY, DerivationDescription from ``derivation``, SourceImageSequence
    referencing the input), Smallest/Largest Image
    Pixel Value (when present, recomputed), and after super-resolution Rows, Columns,
    PixelSpacing and ImagePositionPatient (moved half a new pixel so the voxel centres
    stay where they are). The dtype, BitsStored, PixelRepresentation and Rescale
    Slope/Intercept are the input's. A compressed input is written uncompressed
    (Explicit VR Little Endian), or with ``keep_compression`` compressed losslessly
    (restore.io.medical.dicom.compression). NIfTI keeps its header byte for byte except the
    dimensions, and after super-resolution the voxel sizes and the q/s-form affines."""
    writer = next((f for f in FORMATS if f.name == volume.format), None)
    if writer is None:
        raise ValueError(f"unknown volume format {volume.format!r}")
    options = WriteOptions(name_suffix, description_suffix, keep_compression, derivation)
    writer.write(location(path), volume, options)

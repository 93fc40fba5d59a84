"""DICOM as two registered formats: one file (``dicom``: a single image, a multi-frame or
enhanced file, or a Siemens mosaic) and a folder holding one series (``dicom-series``:
one file per image, written back one file per image). Both read through
restore.io.medical.dicom.read and write through restore.io.medical.dicom.write."""

from __future__ import annotations

from pathlib import Path

from restore.io.atomic import atomic_write
from restore.io.medical.base import MedicalReadError, WriteOptions
from restore.io.medical.dicom.read import dicom_volume, read_dataset
from restore.io.medical.dicom.write import dicom_outputs
from restore.io.medical.registry import output_name, volume_kind
from restore.io.medical.volume import Volume
from restore.io.storage import ObjectPath, open_binary

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def is_dicom(path: Path | ObjectPath) -> bool:
    """Whether the file or object ``path`` starts with the DICOM preamble and ``DICM``."""
    try:
        with open_binary(path) as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


class DicomFileFormat:
    name = "dicom"
    suffixes = DICOM_SUFFIXES
    folder = False

    def claims(self, path: Path) -> bool:
        """By extension or, for files without one (scanners name them ``MR.1.2.3...``), by the ``DICM`` magic."""
        return path.name.lower().endswith(self.suffixes) or is_dicom(path)

    def read(self, path: Path, max_voxels: int, files: list[Path] | None = None) -> Volume:
        return dicom_volume([read_dataset(path)], path, max_voxels)

    def write(self, path: Path, volume: Volume, options: WriteOptions) -> None:
        dataset = dicom_outputs(volume, options)[0]
        atomic_write(path, lambda temp: dataset.save_as(temp, enforce_file_format=True))


class DicomSeriesFormat:
    name = "dicom-series"
    suffixes = ()
    folder = True

    def claims(self, path: Path) -> bool:
        return True  # any folder: its DICOM files are the series

    def read(self, path: Path, max_voxels: int, files: list[Path] | None = None) -> Volume:
        """The series of the folder ``path``, from ``files`` (default: its DICOM files)."""
        if files is None:
            files = [p for p in sorted(path.iterdir()) if p.is_file() and volume_kind(p) == DICOM_FILE.name]
        if not files:
            raise MedicalReadError(f"{path}: no DICOM files")
        datasets = [read_dataset(file) for file in files]
        series = {str(d.get("SeriesInstanceUID", "")) for d in datasets}
        if len(series) > 1:
            raise MedicalReadError(f"{path}: {len(series)} DICOM series in one folder; give each series its own folder")
        volume = dicom_volume(datasets, path, max_voxels)
        volume.format, volume.files = self.name, list(files)
        return volume

    def write(self, path: Path, volume: Volume, options: WriteOptions) -> None:
        """One file per input file, in the folder ``path``, in name order (the last one
        existing means the whole series is there)."""
        outputs = zip(volume.files, dicom_outputs(volume, options))
        for source, dataset in sorted(outputs, key=lambda pair: output_name(pair[0].name, options.name_suffix)):
            target = path / output_name(source.name, options.name_suffix)
            atomic_write(target, lambda temp, dataset=dataset: dataset.save_as(temp, enforce_file_format=True))


DICOM_FILE = DicomFileFormat()
DICOM_SERIES = DicomSeriesFormat()

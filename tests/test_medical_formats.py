"""The scan-format registry (restore.io.medical.registry): each built-in format claims its
files and writes back what it read, an unknown file or format is refused as before, and
a format registered from outside is used by read_volume, write_volume and output_name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medical_files import dicom_dataset, phantom, write_dicom_series, write_nifti
from restore.io.image import Image, write_image
from restore.io.medical import (
    MedicalReadError,
    Volume,
    WriteOptions,
    output_name,
    read_volume,
    register,
    registry,
    volume_kind,
    write_volume,
)
from restore.io.medical.base import check_size

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("nibabel")


def scans(folder: Path) -> dict[str, Path]:
    """One small scan of each built-in format, by the name of the format that reads it."""
    pixels = phantom((3, 8, 10))
    series = folder / "series"
    write_dicom_series(series, pixels)
    untitled = folder / "MR.1.2.3"  # a DICOM file known by its magic alone
    dicom_dataset(pixels[0]).save_as(untitled, enforce_file_format=True)
    write_image(folder / "slice.png", Image(pixels[0, :, :, None].astype(np.uint16)))
    np.save(folder / "volume.npy", pixels.astype(np.int16))
    return {
        "dicom": untitled,
        "dicom-series": series,
        "nifti": write_nifti(folder / "volume.nii.gz", pixels.astype(np.int16)),
        "image": folder / "slice.png",
        "npy": folder / "volume.npy",
    }


def test_each_format_claims_its_files_and_writes_back_what_it_read(tmp_path: Path) -> None:
    for name, path in scans(tmp_path / "in").items():
        if name != "dicom-series":
            assert volume_kind(path) == name, path
        volume = read_volume(path)
        assert volume.format == name, path  # write_volume finds the writer by this name
        output = tmp_path / "out" / path.name
        (output if volume.format == "dicom-series" else output.parent).mkdir(parents=True, exist_ok=True)
        write_volume(output, volume)
        assert np.array_equal(read_volume(output).voxels, volume.voxels), path


def test_a_suffix_wins_over_the_dicom_magic_and_folders_are_series(tmp_path: Path) -> None:
    disguised = tmp_path / "scan.npy"  # DICOM bytes under another format's suffix: the suffix decides
    dicom_dataset(phantom((8, 10))).save_as(disguised, enforce_file_format=True)
    assert volume_kind(disguised) == "npy"
    with pytest.raises(MedicalReadError, match="not a readable .npy array"):
        read_volume(disguised)
    folder = tmp_path / "looks.nii"
    folder.mkdir()
    with pytest.raises(MedicalReadError, match=r"looks.nii: no DICOM files$"):
        read_volume(folder)


def test_an_unknown_file_or_format_is_refused_as_before(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a scan")
    assert volume_kind(notes) is None
    with pytest.raises(MedicalReadError) as error:
        read_volume(notes)
    assert str(error.value) == f"{notes}: not a scan (DICOM, NIfTI .nii/.nii.gz, PNG/TIFF or .npy)"
    with pytest.raises(ValueError, match=r"^unknown volume format 'raw'$"):
        write_volume(tmp_path / "out.raw", Volume(np.zeros((1, 2, 2), np.uint16), format="raw"))


class RawFormat:
    """A test format: ``.raw`` files of little-endian uint16 after a 4-byte header
    (rows, columns as uint16), one slice each."""

    name = "raw"
    suffixes = (".raw",)
    folder = False

    def __init__(self) -> None:
        self.written: list[WriteOptions] = []

    def claims(self, path: Path) -> bool:
        return path.name.lower().endswith(self.suffixes)

    def read(self, path: Path, max_voxels: int, files: list[Path] | None = None) -> Volume:
        data = path.read_bytes()
        rows, columns = np.frombuffer(data[:4], "<u2")
        check_size(int(rows) * int(columns), max_voxels, path)
        voxels = np.frombuffer(data[4:], "<u2").reshape(1, rows, columns).copy()
        return Volume(voxels, format=self.name, value_range=(0.0, 65535.0), files=[path])

    def write(self, path: Path, volume: Volume, options: WriteOptions) -> None:
        self.written.append(options)
        path.write_bytes(np.array(volume.voxels.shape[1:], "<u2").tobytes() + volume.voxels.astype("<u2").tobytes())


@pytest.fixture
def raw_format(monkeypatch: pytest.MonkeyPatch) -> RawFormat:
    monkeypatch.setattr(registry, "FORMATS", list(registry.FORMATS))  # registered for this test only
    raw = RawFormat()
    register(raw)
    return raw


def test_a_registered_format_is_read_written_and_named(tmp_path: Path, raw_format: RawFormat) -> None:
    source = tmp_path / "Scan.RAW"
    pixels = phantom((1, 6, 7), high=60000).astype(np.uint16)
    raw_format.write(source, Volume(pixels, format="raw"), WriteOptions())
    assert volume_kind(source) == "raw"
    volume = read_volume(source)
    assert volume.format == "raw" and np.array_equal(volume.voxels, pixels)
    with pytest.raises(MedicalReadError, match="more than the limit 41"):
        read_volume(source, max_voxels=41)
    output = tmp_path / output_name(source.name, "_restored")
    assert output.name == "Scan_restored.RAW"
    write_volume(output, volume.with_voxels(volume.voxels // 2), keep_compression=True, derivation="halved")
    assert raw_format.written[-1] == WriteOptions(keep_compression=True, derivation="halved")
    assert np.array_equal(read_volume(output).voxels, pixels // 2)


def test_a_registered_format_takes_over_a_suffix(tmp_path: Path, raw_format: RawFormat) -> None:
    raw_format.suffixes = (".raw", ".npy")
    path = tmp_path / "slice.npy"
    raw_format.write(path, Volume(np.ones((1, 2, 3), np.uint16), format="raw"), WriteOptions())
    assert volume_kind(path) == "raw"
    assert read_volume(path).format == "raw"

"""Siemens MOSAIC files (restore.io.medical.dicom.mosaic): unpacked to slices in position order, packed
back into the same layout, so the output is still a mosaic."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from medical_files import SHARED, assert_dicom_round_trip, phantom, write_mosaic_series
from restore.io.medical import MedicalReadError, read_volume, write_volume
from restore.io.medical.dicom.mosaic import repack, unpack

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("nibabel")


def identity(volume):
    return volume.with_voxels(volume.from_physical(volume.physical()))


def nibabel_slices(path: Path) -> np.ndarray:
    """nibabel's reading of a mosaic, as (slices, rows, columns)."""
    from nibabel.nicom import dicomwrappers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel calls its DICOM readers experimental
        return np.transpose(dicomwrappers.wrapper_from_data(pydicom.dcmread(path)).get_data(), (2, 0, 1))


def test_unpack_and_repack_are_inverse() -> None:
    mosaic = np.arange(12 * 9).reshape(12, 9)
    slices = unpack(mosaic, 7)
    assert slices.shape == (7, 4, 3) and np.array_equal(slices[4], mosaic[4:8, 3:6])
    assert np.array_equal(repack(slices, mosaic), mosaic)  # the unused tiles are the canvas's


@pytest.mark.parametrize("flipped", [False, True])
def test_mosaic_series_is_slices_by_position_and_time_points(tmp_path: Path, flipped: bool) -> None:
    volumes = phantom((2, 5, 6, 4), seed=10, high=4000)
    paths = write_mosaic_series(tmp_path / "epi", volumes, flipped=flipped)
    scan = read_volume(tmp_path / "epi")
    expected = volumes[:, ::-1] if flipped else volumes  # slices ordered along the IOP normal
    assert scan.voxels.shape == (5, 6, 4, 2) and np.array_equal(scan.voxels, np.moveaxis(expected, 0, -1))
    assert scan.grouping.describe() == {"volumes": 2, "slices_per_volume": 5, "by": "AcquisitionNumber"}
    assert scan.spacing == (3.0, 0.8, 0.7)
    assert np.array_equal(nibabel_slices(paths[0]), volumes[0])  # nibabel reads the test's mosaic as built

    changed = scan.with_voxels(scan.voxels + 1)
    write_volume(tmp_path / "out", changed)
    for t, path in enumerate(paths):
        before, after = pydicom.dcmread(path), pydicom.dcmread(tmp_path / "out" / path.name)
        assert after[0x00291010].value == before[0x00291010].value and after.ImageType[-1] == "MOSAIC"
        assert np.array_equal(nibabel_slices(tmp_path / "out" / path.name), volumes[t] + 1)
        unused = np.zeros_like(before.pixel_array, dtype=bool)  # a 3x3 grid of 6x4 tiles, 0-4 used
        unused[6:12, 8:12] = unused[12:18, :] = True
        assert np.all(after.pixel_array[unused] == 7) and np.all(after.pixel_array[~unused] != 7)
    write_volume(tmp_path / "same", identity(scan))
    assert_dicom_round_trip(tmp_path / "epi", tmp_path / "same")


def test_a_mosaic_without_its_count_is_refused(tmp_path: Path) -> None:
    write_mosaic_series(tmp_path / "epi", phantom((1, 4, 4, 4), seed=11))
    path = next((tmp_path / "epi").iterdir())
    ds = pydicom.dcmread(path)
    del ds[0x00291010]
    ds.save_as(path)
    with pytest.raises(MedicalReadError, match="MOSAIC without NumberOfImagesInMosaic"):
        read_volume(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/medical is not available")
def test_real_siemens_mosaics_unpack_as_nibabel_reads_them(tmp_path: Path) -> None:
    series = SHARED / "dicom" / "mr_ax_series" / "axint35"
    scan = read_volume(series)
    assert scan.voxels.shape == (35, 64, 64, 2) and scan.spacing[1:] == (3.25, 3.25)
    assert abs(scan.spacing[0] - 3.6) < 1e-6
    files = sorted(series.iterdir())
    for t, path in enumerate(files):
        assert np.array_equal(scan.voxels[..., t], nibabel_slices(path))
    write_volume(tmp_path / "out", identity(scan))
    assert_dicom_round_trip(series, tmp_path / "out")
    assert np.array_equal(nibabel_slices(tmp_path / "out" / files[0].name), scan.voxels[..., 0])

"""Medical scans in and out (restore.io.medical) and their intensities (restore.io.intensity)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from medical_files import (
    CHANGED_TAGS,
    GEOMETRY_TAGS,
    META_TAGS,
    SHARED,
    assert_dicom_round_trip,
    changed_tags,
    dicom_dataset,
    dicom_files,
    phantom,
    write_dicom_series,
    write_nifti,
)
from restore.io.intensity import CT_WINDOW_HU, MR_PERCENTILE, MR_PERCENTILE_LEVEL, apply_change, normalisation_for
from restore.io.medical import MedicalReadError, read_volume, upscaled_affine, write_volume
from restore.io.medical.dicom.compression import can_decode

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")


def identity(volume):
    """What an identity model's output goes through: physical units and back."""
    return volume.with_voxels(volume.from_physical(volume.physical()))


# -- DICOM ---------------------------------------------------------------------------------


def test_series_is_ordered_by_position_and_round_trips(tmp_path: Path) -> None:
    volume = phantom((5, 12, 10), seed=1, high=4095)
    write_dicom_series(tmp_path / "series", volume)
    scan = read_volume(tmp_path / "series")
    assert scan.format == "dicom-series" and scan.modality == "CT"
    assert scan.voxels.dtype == np.uint16 and np.array_equal(scan.voxels, volume)
    assert scan.value_range == (0, 4095) and scan.spacing == (2.0, 0.8, 0.7)
    assert scan.physical().min() == volume.min() - 1024
    write_volume(tmp_path / "out", identity(scan))
    assert sorted(dicom_files(tmp_path / "out")) == sorted(dicom_files(tmp_path / "series"))
    assert_dicom_round_trip(tmp_path / "series", tmp_path / "out")


def test_signed_series_with_per_slice_rescale(tmp_path: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    for index, intercept in enumerate((-1024.0, -1000.0)):
        pixels = np.full((4, 4), -5 + index, dtype=np.int64)
        dicom_dataset(pixels, position=float(index), instance=index + 1, signed=True, intercept=intercept,
                      slope=0.5).save_as(folder / f"s{index}", enforce_file_format=True)
    scan = read_volume(folder)
    assert scan.voxels.dtype == np.int16 and scan.value_range == (-2048, 2047)
    assert scan.physical()[:, 0, 0].tolist() == [-1026.5, -1002.0]
    clipped = scan.from_physical(np.full(scan.voxels.shape, 1e6))
    assert clipped.max() == 2047  # the BitsStored range, not int16's


def test_multiframe_round_trip_and_superres_geometry(tmp_path: Path) -> None:
    frames = phantom((3, 8, 6), seed=2, high=4095)
    dicom_dataset(frames).save_as(tmp_path / "multi.dcm", enforce_file_format=True)
    scan = read_volume(tmp_path / "multi.dcm")
    assert scan.format == "dicom" and scan.voxels.shape == (3, 8, 6)
    write_volume(tmp_path / "same.dcm", identity(scan))
    assert_dicom_round_trip(tmp_path / "multi.dcm", tmp_path / "same.dcm")

    upscaled = np.repeat(np.repeat(scan.voxels, 2, axis=1), 2, axis=2)
    write_volume(tmp_path / "sr.dcm", scan.with_voxels(upscaled, (1, 2), 2))
    before, after = pydicom.dcmread(tmp_path / "multi.dcm"), pydicom.dcmread(tmp_path / "sr.dcm")
    assert changed_tags(before, after) <= CHANGED_TAGS | GEOMETRY_TAGS | META_TAGS
    assert (after.Rows, after.Columns) == (16, 12)
    assert [float(s) for s in after.PixelSpacing] == [0.4, 0.35]
    assert after.pixel_array.shape == (3, 16, 12) and after.BitsStored == 12
    # the first new pixel's centre is a quarter of an old pixel before the old one's
    assert np.allclose(np.asarray(after.ImagePositionPatient, float), [-100.175, -120.2, 0.0])


def test_undecodable_compressed_pixels_are_named(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate

    ds = dicom_dataset(np.zeros((4, 4), dtype=np.int64), syntax="1.2.840.10008.1.2.4.90")
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 40])
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    ds.save_as(tmp_path / "j2k.dcm", enforce_file_format=True)
    if can_decode("1.2.840.10008.1.2.4.90"):  # the codestream is cut short
        with pytest.raises(MedicalReadError, match=r"j2k.dcm: pixel data compressed as JPEG 2000.* is damaged"):
            read_volume(tmp_path / "j2k.dcm")
    else:
        with pytest.raises(MedicalReadError, match=r"JPEG 2000.*1\.2\.840\.10008\.1\.2\.4\.90.*pylibjpeg-openjpeg"):
            read_volume(tmp_path / "j2k.dcm")


def test_scans_over_the_voxel_limit_are_refused_before_decoding(tmp_path: Path) -> None:
    write_nifti(tmp_path / "v.nii.gz", phantom((6, 5, 4), seed=3).astype(np.uint16))
    np.save(tmp_path / "v.npy", np.zeros((6, 5, 4), np.float32))
    write_dicom_series(tmp_path / "series", phantom((3, 4, 4), seed=1))
    for path in ("v.nii.gz", "v.npy", "series"):
        with pytest.raises(MedicalReadError, match="voxels, more than the limit 40"):
            read_volume(tmp_path / path, max_voxels=40)
        assert read_volume(tmp_path / path, max_voxels=120).voxels.size <= 120


def test_unreadable_inputs_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MedicalReadError, match="not a scan"):
        read_volume(tmp_path / "notes.txt")
    (tmp_path / "broken.nii.gz").write_bytes(b"not gzip")
    with pytest.raises(MedicalReadError, match="broken.nii.gz"):
        read_volume(tmp_path / "broken.nii.gz")


@pytest.mark.parametrize("missing", ["Rows", "Columns", "BitsAllocated"])
def test_dicom_without_an_image_size_tag_is_named(tmp_path: Path, missing: str) -> None:
    ds = dicom_dataset(phantom((4, 4), seed=2))
    delattr(ds, missing)
    ds.save_as(tmp_path / "damaged.dcm", enforce_file_format=True)
    message = f"damaged.dcm: the DICOM file has no {missing} tag, which the pixel data cannot be read without"
    with pytest.raises(MedicalReadError, match=message):
        read_volume(tmp_path / "damaged.dcm")
    write_dicom_series(tmp_path / "series", phantom((2, 4, 4), seed=1))
    ds.save_as(tmp_path / "series" / "IM9999", enforce_file_format=True)  # one damaged slice in a series
    with pytest.raises(MedicalReadError, match=f"IM9999: the DICOM file has no {missing} tag"):
        read_volume(tmp_path / "series")


# -- NIfTI, images, npy ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz"])
def test_nifti_round_trip_keeps_the_file_byte_for_byte(tmp_path: Path, name: str) -> None:
    write_nifti(tmp_path / name, phantom((6, 5, 4), seed=3, high=3000).astype(np.int16), slope=0.5)
    scan = read_volume(tmp_path / name)
    assert scan.voxels.dtype == np.int16 and (scan.slope, scan.intercept) == (0.5, 3.0) and scan.slice_axis == 2
    write_volume(tmp_path / ("out_" + name), identity(scan))
    opener = gzip.open if name.endswith(".gz") else open
    with opener(tmp_path / name, "rb") as a, opener(tmp_path / ("out_" + name), "rb") as b:
        assert a.read() == b.read()


def test_nifti_gz_output_bytes_are_the_same_on_every_write(tmp_path: Path) -> None:
    """No temp file name and no clock in the gzip header: reruns and the web API give the CLI's bytes."""
    write_nifti(tmp_path / "v.nii.gz", phantom((6, 5, 4), seed=3, high=3000).astype(np.int16))
    scan = read_volume(tmp_path / "v.nii.gz")
    written = []
    for name in ("a", "b"):
        write_volume(tmp_path / name / "v.nii.gz", identity(scan))
        written.append((tmp_path / name / "v.nii.gz").read_bytes())
    assert written[0] == written[1] and b"tmp" not in written[0][:64]


def test_nifti_superres_updates_voxel_size_and_affine(tmp_path: Path) -> None:
    write_nifti(tmp_path / "v.nii.gz", phantom((6, 5, 4), seed=3).astype(np.uint16))
    scan = read_volume(tmp_path / "v.nii.gz")
    bigger = np.repeat(np.repeat(scan.voxels, 2, axis=0), 2, axis=1)
    write_volume(tmp_path / "sr.nii.gz", scan.with_voxels(bigger, (0, 1), 2))
    result = nibabel.load(tmp_path / "sr.nii.gz")
    assert result.shape == (12, 10, 4) and result.get_data_dtype() == np.uint16
    assert np.allclose(result.header.get_zooms(), (0.45, 0.4, 2.5))
    old, new = nibabel.load(tmp_path / "v.nii.gz").affine, result.affine
    # new voxel j along an upscaled axis sits at old index (j + 0.5) / 2 - 0.5
    assert np.allclose(new @ [3, 5, 1, 1], old @ [1.25, 2.25, 1, 1])
    assert result.header["descrip"] == b"restore test volume"


def test_upscaled_affine_keeps_the_field_of_view() -> None:
    affine = np.array([[0, 0, 2.0, 5], [-1.5, 0, 0, 7], [0, 3.0, 0, -1], [0, 0, 0, 1]])
    new = upscaled_affine(affine, (0, 2), 3)
    # the outer edges of the first and last voxels stay where they were (4 voxels -> 12)
    assert np.allclose(new @ [-0.5, 0, -0.5, 1], affine @ [-0.5, 0, -0.5, 1])
    assert np.allclose(new @ [11.5, 0, 11.5, 1], affine @ [3.5, 0, 3.5, 1])


def test_png16_and_npy_round_trip(tmp_path: Path) -> None:
    import cv2

    slice16 = phantom((9, 7), seed=4, high=60000).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "s.png"), slice16)
    np.save(tmp_path / "v.npy", phantom((3, 4, 5), seed=5).astype(np.float32))
    for name in ("s.png", "v.npy"):
        scan = read_volume(tmp_path / name)
        write_volume(tmp_path / ("out_" + name), identity(scan))
        again = read_volume(tmp_path / ("out_" + name))
        assert again.voxels.dtype == scan.voxels.dtype and np.array_equal(again.voxels, scan.voxels)
    assert read_volume(tmp_path / "s.png").voxels.shape == (1, 9, 7)


# -- intensities ------------------------------------------------------------------------------


def test_ct_window_is_fixed_and_out_of_window_voxels_pass_through() -> None:
    hu = np.array([-3024.0, -1024.0, 0.0, 40.0, 3071.0, 5000.0])
    ct = normalisation_for("ct", hu)
    assert (ct.low, ct.high) == CT_WINDOW_HU
    before = ct.forward(hu)
    assert before[1] == 0.0 and before[4] == 1.0
    after = np.clip(before, 0, 1) + np.array([0.1, 0.0, 0.01, 0.0, 0.0, 0.1], dtype=np.float32)
    result = apply_change(hu, before, after, ct)
    assert result[0] == -3024.0 and result[5] == 5000.0  # outside the window: untouched
    assert result[1] == -1024.0 and result[3] == 40.0  # no change: exact
    assert result[2] == pytest.approx(0.01 * 4095, abs=1e-3)


def test_mr_normalisation_uses_percentiles_and_never_clips() -> None:
    values = np.arange(1000, dtype=np.float64)
    mr = normalisation_for("mr", values)
    assert mr.forward(np.percentile(values, MR_PERCENTILE)) == pytest.approx(MR_PERCENTILE_LEVEL)
    assert mr.forward(values).min() == 0.0 and mr.forward(values).max() <= 1.0
    spiky = np.concatenate([values, [1e5]])
    assert normalisation_for("mr", spiky).forward(spiky).max() == pytest.approx(1.0)
    assert np.allclose(mr.inverse(mr.forward(values)), values)


# -- the shared scans ---------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/medical is not available")
def test_shared_series_multiframe_and_nifti_round_trip(tmp_path: Path) -> None:
    series = SHARED / "dicom" / "mr_ax_series" / "axasc35"
    scan = read_volume(series)
    assert scan.format == "dicom-series" and scan.voxels.shape[-1] == 2 and scan.modality == "MR"
    write_volume(tmp_path / "series", identity(scan))
    assert_dicom_round_trip(series, tmp_path / "series")
    write_volume(tmp_path / "enh.dcm", identity(read_volume(SHARED / "dicom" / "enh.dcm")))
    assert_dicom_round_trip(SHARED / "dicom" / "enh.dcm", tmp_path / "enh.dcm")
    for name in ("FLAIR.nii.gz", "oasis_mni.nii.gz"):
        write_volume(tmp_path / name, identity(read_volume(SHARED / "nifti" / name)))
        with gzip.open(SHARED / "nifti" / name) as a, gzip.open(tmp_path / name) as b:
            assert a.read() == b.read(), name

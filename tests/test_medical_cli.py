"""``restore medical denoise|superres`` through the batch engine, with identity weights."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from medical_files import (
    SHARED,
    assert_dicom_round_trip,
    dicom_dataset,
    phantom,
    write_dicom_series,
    write_identity_weights,
    write_nifti,
)
from restore.cli import main
from restore.weights import load_weights, save_weights

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["medical", *args, "--quiet", "--device", "cpu"])
    return result.exit_code, result.output


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """A mixed tree: an MR series folder, a NIfTI, a 16-bit PNG, a CT DICOM, a text file."""
    root = tmp_path / "in"
    write_dicom_series(root / "patient" / "series", phantom((3, 16, 16), seed=1, high=4095), modality="MR",
                       intercept=0.0)
    write_nifti(root / "brain.nii.gz", phantom((16, 16, 4), seed=2, high=900).astype(np.int16))
    (root / "slices").mkdir()
    cv2.imwrite(str(root / "slices" / "mr.png"), phantom((16, 16), seed=3, high=50000).astype(np.uint16))
    dicom_dataset(phantom((16, 16), seed=4)).save_as(root / "ct.dcm", enforce_file_format=True)
    (root / "notes.txt").write_text("not a scan")
    return root


def test_denoise_mixed_tree_round_trips_with_an_identity_model(scans: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "identity.safetensors")
    out = tmp_path / "out"
    code, output = run("denoise", "--modality", "mr", "--in", str(scans), "--out", str(out), "--weights", str(weights))
    assert code == 1, output  # the CT file and the text file fail, the rest is done
    report = json.loads((out / "report.json").read_text())
    status = {Path(item["input"]).name: item["status"] for item in report["files"]}
    assert status == {"series": "done", "brain.nii.gz": "done", "mr.png": "done", "ct.dcm": "failed",
                      "notes.txt": "failed"}
    reasons = {Path(item["input"]).name: item["reason"] for item in report["files"]}
    assert "CT (DICOM Modality) but --modality is mr" in reasons["ct.dcm"]
    assert_dicom_round_trip(scans / "patient" / "series", out / "patient" / "series")
    with gzip.open(scans / "brain.nii.gz") as a, gzip.open(out / "brain.nii.gz") as b:
        assert a.read() == b.read()
    png_in = cv2.imread(str(scans / "slices" / "mr.png"), cv2.IMREAD_UNCHANGED)
    png_out = cv2.imread(str(out / "slices" / "mr.png"), cv2.IMREAD_UNCHANGED)
    assert png_out.dtype == np.uint16 and np.array_equal(png_in, png_out)

    code, output = run("denoise", "--modality", "mr", "--in", str(scans), "--out", str(out), "--weights", str(weights))
    assert "0 done, 3 skipped, 2 failed" in output


def test_context_slices_follow_the_weights(scans: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "context.safetensors", context=1)
    series = scans / "patient" / "series"
    code, output = run("denoise", "--modality", "mr", "--in", str(series), "--out", str(tmp_path / "a"),
                       "--weights", str(weights), "--axis", "1")
    assert code == 0, output
    info = json.loads((tmp_path / "a" / "report.json").read_text())["files"][0]["info"]
    assert info["context"] == 1 and info["axis"] == 1
    assert_dicom_round_trip(series, tmp_path / "a")
    code, output = run("denoise", "--modality", "mr", "--in", str(series), "--out", str(tmp_path / "b"),
                       "--weights", str(weights), "--context", "2")
    assert code == 2 and "take 1 context slice(s) each side, not 2" in output


def test_superres_enlarges_slices_and_updates_geometry(scans: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "sr.safetensors", degradation="kspace", scale=2)
    out = tmp_path / "out"
    code, output = run("superres", "--modality", "mr", "--in", str(scans), "--out", str(out), "--weights",
                       str(weights), "--scale", "2")
    assert code == 1, output
    volume = nibabel.load(out / "brain.nii.gz")
    assert volume.shape == (32, 32, 4) and volume.get_data_dtype() == np.int16
    assert np.allclose(volume.header.get_zooms(), (0.45, 0.4, 2.5))
    for path in (out / "patient" / "series").iterdir():
        dataset = pydicom.dcmread(path)
        assert (dataset.Rows, dataset.Columns) == (32, 32) and dataset.pixel_array.dtype == np.uint16
        assert [float(s) for s in dataset.PixelSpacing] == [0.4, 0.35]
    assert cv2.imread(str(out / "slices" / "mr.png"), cv2.IMREAD_UNCHANGED).shape == (32, 32)
    code, output = run("superres", "--modality", "mr", "--in", str(scans), "--out", str(out), "--weights",
                       str(weights), "--scale", "3")
    assert code == 2 and "upscale x2, not x3" in output


def test_weights_for_another_job_or_none_shipped_are_usage_errors(scans: Path, tmp_path: Path) -> None:
    ct_weights = write_identity_weights(tmp_path / "ct.safetensors", modality="ct", degradation="lowdose")
    code, output = run("denoise", "--modality", "mr", "--in", str(scans), "--out", str(tmp_path / "o"),
                       "--weights", str(ct_weights))
    assert code == 2 and "trained for medical ct lowdose, not medical denoise of MR" in output
    code, output = run("superres", "--modality", "ct", "--in", str(scans), "--out", str(tmp_path / "o"))
    assert code == 2 and "super-resolution is for MR" in output


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/medical is not available")
def test_shared_folder_with_a_series_and_a_nifti_side_by_side(tmp_path: Path) -> None:
    source = tmp_path / "in"
    shutil.copytree(SHARED / "dicom" / "mr_ax_series" / "axasc35", source / "axasc35")
    shutil.copy(SHARED / "dicom" / "enh.dcm", source / "enh.dcm")
    shutil.copy(SHARED / "nifti" / "oasis_mni.nii.gz", source / "oasis_mni.nii.gz")  # float32
    weights = write_identity_weights(tmp_path / "identity.safetensors", context=1)
    code, output = run("denoise", "--modality", "mr", "--in", str(source), "--out", str(tmp_path / "out"),
                       "--weights", str(weights), "--workers", "1")
    assert code == 0, output
    assert "4 done" in output  # the series, its NIfTI conversion, the multi-frame file, a float NIfTI
    assert_dicom_round_trip(source / "axasc35", tmp_path / "out" / "axasc35")
    assert_dicom_round_trip(source / "enh.dcm", tmp_path / "out" / "enh.dcm")
    nifti = "6_ax_asc_35sl.nii"
    assert (source / "axasc35" / nifti).read_bytes() == (tmp_path / "out" / "axasc35" / nifti).read_bytes()
    with gzip.open(source / "oasis_mni.nii.gz") as a, gzip.open(tmp_path / "out" / "oasis_mni.nii.gz") as b:
        assert a.read() == b.read()


def test_images_are_read_with_the_rescale_the_weights_were_trained_with(tmp_path: Path) -> None:
    """CT slices stored as HU + 1024 in 16-bit PNGs: the same HU at inference as in training."""
    from restore.io.medical import read_volume
    from restore.tasks.medical import volume_slices
    from restore.model import RestorerSettings
    from restore.volumes import ScanOptions, VolumeProcessor

    cv2.imwrite(str(tmp_path / "ct.png"), phantom((16, 16), seed=6, high=2200).astype(np.uint16))
    weights = write_identity_weights(tmp_path / "ct.safetensors", modality="ct", degradation="lowdose",
                                     stored_intercept=-1024.0)
    processor = VolumeProcessor("denoise", "ct", ScanOptions(weights=str(weights)), RestorerSettings(device="cpu"))
    seen = []
    run = processor.model.run
    processor.model.run = lambda image, **options: seen.append(image.clone()) or run(image, **options)
    result, _ = processor(read_volume(tmp_path / "ct.png"), tmp_path / "ct.png")
    (trained,), _, _ = volume_slices(tmp_path / "ct.png", processor.trained)
    assert torch.equal(seen[0][0, 0], torch.from_numpy(trained[0]))
    assert np.array_equal(result.voxels, read_volume(tmp_path / "ct.png").voxels)


def test_max_voxels_refuses_big_scans_and_the_batch_goes_on(scans: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "identity.safetensors")
    code, output = run("denoise", "--modality", "mr", "--in", str(scans), "--out", str(tmp_path / "out"),
                       "--weights", str(weights), "--max-voxels", "300")
    assert code == 1 and "1 done" in output  # the 16x16 PNG (256 voxels); the volumes are larger
    assert "more than the limit 300" in output


def test_npy_keeps_its_dimensions_and_every_int64_outside_the_window(tmp_path: Path) -> None:
    """A CT model that adds a constant (its tail's bias): voxels inside the window change,
    those outside (INT64 limits included, and ints float64 cannot hold) come back as stored."""
    weights = write_identity_weights(tmp_path / "identity.safetensors", modality="ct", degradation="lowdose",
                                     stored_intercept=0.0)
    tensors, metadata = load_weights(weights)
    bias = [key for key in tensors if key.startswith("tail") and key.endswith("bias")][-1]
    tensors[bias] = tensors[bias] + 0.01  # 0.01 of the 4095 HU window: +41
    save_weights(tmp_path / "shift.safetensors", tensors, metadata)
    limits = np.iinfo(np.int64)
    flat = np.full((8, 8), 500, np.int64)
    outside = [limits.min, limits.max, limits.max - 1, -5000, 10**18 + 1]
    flat[0, : len(outside)] = outside
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "flat.npy", flat)
    np.save(tmp_path / "in" / "volume.npy", np.stack([flat, flat]))
    code, output = run("denoise", "--modality", "ct", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                       "--weights", str(tmp_path / "shift.safetensors"))
    assert code == 0, output
    for name, shape in (("flat.npy", (8, 8)), ("volume.npy", (2, 8, 8))):
        result = np.load(tmp_path / "out" / name)
        assert result.shape == shape and result.dtype == np.int64, name
        assert result.reshape(-1, 64)[:, : len(outside)].tolist() == [outside] * (1 if name == "flat.npy" else 2)
        assert np.all(result.reshape(-1, 64)[:, len(outside):] == 541), name  # inside the window: changed


def test_report_records_the_scan_settings_and_a_rerun_with_others_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    write_nifti(tmp_path / "in" / "brain.nii.gz", phantom((16, 16, 4), seed=2, high=900).astype(np.int16))
    weights = write_identity_weights(tmp_path / "identity.safetensors")
    args = ("denoise", "--modality", "mr", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
            "--weights", str(weights))
    code, output = run(*args)
    assert code == 0, output
    settings = json.loads((tmp_path / "out" / "report.json").read_text())["settings"]
    assert settings["task"] == "medical denoise" and settings["modality"] == "mr" and settings["axis"] is None
    assert settings["weights"] == {str(weights.resolve()): hashlib.sha256(weights.read_bytes()).hexdigest()}
    assert settings["precision"] == "fp32" and settings["context"] == 0  # scans never run in bf16 by default
    code, output = run(*args, "--axis", "1")
    assert code == 2 and "axis: null -> 1" in output and "--overwrite" in output, output
    code, output = run(*args)
    assert code == 0 and "0 done, 1 skipped" in output, output

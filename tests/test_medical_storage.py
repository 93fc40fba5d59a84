"""``restore medical`` with --in/--out in object storage: a real S3 API (moto in server mode,
the ``s3`` fixture of tests/s3_server.py), every output checked against a local run of the
same command, as tests/test_storage.py does for the image tasks."""

from __future__ import annotations

import json
import os
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from medical_files import META_TAGS, changed_tags, phantom, write_dicom_series, write_identity_weights, write_nifti
from restore.cli import main
from restore.io.atomic import TEMP_PREFIX
from restore.io.storage import staging_folder
from s3_server import S3
from test_storage import files

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")

SERIES = "patient/series"
# What two runs of one command on one DICOM file write differently: the new UIDs of each run.
NEW_UIDS = {"SOPInstanceUID", "SeriesInstanceUID"} | META_TAGS


def scan_tree(root: Path) -> Path:
    """An MR series of three files, a NIfTI volume, a 16-bit PNG slice, a truncated NIfTI
    and a text file (the two failures)."""
    write_dicom_series(root / SERIES, phantom((3, 16, 16), seed=1, high=4095), modality="MR", intercept=0.0)
    brain = write_nifti(root / "brain.nii.gz", phantom((16, 16, 4), seed=2, high=900).astype(np.int16))
    (root / "slices").mkdir()
    cv2.imwrite(str(root / "slices" / "mr.png"), phantom((16, 16), seed=3, high=50000).astype(np.uint16))
    (root / "broken.nii.gz").write_bytes(brain.read_bytes()[:200])
    (root / "notes.txt").write_text("not a scan")
    return root


def medical_denoise(*args: str) -> Result:
    return CliRunner().invoke(main, ["medical", "denoise", "--modality", "mr", *args, "--quiet", "--device", "cpu"])


def assert_same_output(key: str, local: bytes, remote: bytes) -> None:
    """Byte for byte, except a DICOM file's new UIDs: its pixels and every other tag equal."""
    if not key.startswith(SERIES):
        assert remote == local, key
        return
    before, after = pydicom.dcmread(BytesIO(local)), pydicom.dcmread(BytesIO(remote))
    assert after.PixelData == before.PixelData, key
    assert changed_tags(before, after) <= NEW_UIDS, key


def test_s3_to_s3_is_the_local_run_and_resumes(s3: S3, tmp_path: Path) -> None:
    tree = scan_tree(tmp_path / "in")
    s3.upload(tree, "in")
    weights = write_identity_weights(tmp_path / "shift.safetensors", offset=0.02)  # every voxel changes
    local = medical_denoise("--in", str(tree), "--out", str(tmp_path / "local"), "--weights", str(weights))
    args = ("--in", s3.url("in/"), "--out", s3.url("out/"), "--weights", str(weights))
    remote = medical_denoise(*args)
    assert local.exit_code == remote.exit_code == 1, remote.output  # broken.nii.gz and notes.txt, as locally

    expected = files(tmp_path / "local")
    outputs = s3.objects("out")
    assert set(outputs) == {*expected, "report.json"}  # the tree mirrored, no temp object left
    for key, data in expected.items():
        assert_same_output(key, data, s3.read(f"out/{key}"))
    report = json.loads(s3.read("out/report.json"))
    reference = json.loads((tmp_path / "local" / "report.json").read_text())
    assert report["complete"] and report["settings"] == reference["settings"]
    assert report["summary"] == reference["summary"] == {"done": 3, "skipped": 0, "failed": 2}
    assert report["made_from"][f"{SERIES}/IM0010"] == s3.url(f"in/{SERIES}")
    reasons = {Path(entry["input"]).name: entry["reason"] for entry in report["files"] if entry["reason"]}
    assert reasons == {Path(entry["input"]).name: entry["reason"].replace(str(tree), s3.url("in"))
                       for entry in reference["files"] if entry["reason"]}  # URLs, not the copies' paths
    assert "not a readable NIfTI file" in reasons["broken.nii.gz"]
    assert not list(staging_folder().glob(f"{TEMP_PREFIX}{os.getpid()}-*"))  # each job's copies deleted

    again = medical_denoise(*args)
    assert again.exit_code == 1 and "0 done, 3 skipped, 2 failed" in again.output, again.output
    assert {key: entry["ETag"] for key, entry in s3.objects("out").items() if key != "report.json"} == \
        {key: entry["ETag"] for key, entry in outputs.items() if key != "report.json"}


def test_out_equal_to_in_is_refused_and_out_inside_in_is_no_input(s3: S3, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    write_nifti(root / "brain.nii.gz", phantom((16, 16, 4), seed=2, high=900).astype(np.int16))
    s3.upload(root, "in")
    weights = write_identity_weights(tmp_path / "identity.safetensors")
    same = medical_denoise("--in", s3.url("in"), "--out", s3.url("in/"), "--weights", str(weights))
    assert same.exit_code == 2 and "is the --in folder" in same.output
    for done in ("1 done, 0 skipped", "0 done, 1 skipped"):  # the second run does not read the first's outputs
        inside = medical_denoise("--in", s3.url("in"), "--out", s3.url("in/clean"), "--weights", str(weights))
        assert inside.exit_code == 0 and f"{done}, 0 failed" in inside.output, inside.output

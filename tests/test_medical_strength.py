"""``restore medical denoise --strength / --ct-window / --mr-percentile``: how much of the
network's change is kept, where, and with which MR normalisation; all in report.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medical_files import dicom_dataset, phantom, write_identity_weights, write_nifti
from restore.cli import main
from restore.io.intensity import CT_WINDOW_HU, Normalisation, apply_change, normalisation_for

pydicom = pytest.importorskip("pydicom")
OFFSET = 0.01  # the test network adds this (normalised units) to every voxel: 40.95 HU for CT


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["medical", "denoise", *args, "--quiet", "--device", "cpu"])
    return result.exit_code, result.output


def test_apply_change_blends_and_keeps_voxels_outside_the_window() -> None:
    ct = Normalisation(*CT_WINDOW_HU)
    physical = np.array([-2000.0, -600.0, 0.0, 400.0, 3500.0])
    before = ct.forward(physical)
    after = np.clip(before, 0, 1) + 0.1
    full = apply_change(physical, before, after, ct)
    assert np.allclose(full, [-2000, -600 + 409.5, 409.5, 400 + 409.5, 3500])
    assert np.allclose(apply_change(physical, before, after, ct, strength=0.0), physical)
    half = apply_change(physical, before, after, ct, strength=0.5, window=(-500.0, 500.0))
    assert np.allclose(half, [-2000, -600, 204.75, 604.75, 3500])


def test_mr_percentile_sets_the_top_of_the_range() -> None:
    values = np.arange(1001, dtype=np.float64)
    assert normalisation_for("mr", values).high == pytest.approx(995 / 0.8)
    assert normalisation_for("mr", values, mr_percentile=90).high == pytest.approx(900 / 0.8)
    assert normalisation_for("mr", values, mr_percentile=50).high == 1000  # never below the maximum


def test_strength_and_ct_window_from_the_cli(tmp_path: Path) -> None:
    stored = phantom((24, 20), seed=12, low=0, high=2000)  # HU -1024..976
    (tmp_path / "in").mkdir()
    dicom_dataset(stored).save_as(tmp_path / "in" / "ct.dcm", enforce_file_format=True)
    weights = write_identity_weights(tmp_path / "w.safetensors", modality="ct", degradation="lowdose", offset=OFFSET)
    change = OFFSET * (CT_WINDOW_HU[1] - CT_WINDOW_HU[0])
    for strength, window in (("1", None), ("0.5", None), ("0", None), ("0.5", "-500,300")):
        out = tmp_path / f"out-{strength}-{window}"
        args = ["--modality", "ct", "--in", str(tmp_path / "in"), "--out", str(out), "--weights", str(weights),
                "--strength", strength] + (["--ct-window", window] if window else [])
        code, output = run(*args)
        assert code == 0, output
        hu = stored - 1024.0
        inside = (hu >= -500) & (hu <= 300) if window else np.ones_like(hu, dtype=bool)
        expected = np.where(inside, np.rint(stored + float(strength) * change), stored)
        assert np.array_equal(pydicom.dcmread(out / "ct.dcm").pixel_array, expected)
        info = json.loads((out / "report.json").read_text())["files"][0]["info"]
        assert info["strength"] == float(strength)
        assert info["ct_window"] == ([-500.0, 300.0] if window else list(CT_WINDOW_HU))


def test_options_for_the_other_modality_are_usage_errors(tmp_path: Path) -> None:
    write_nifti(tmp_path / "v.nii.gz", phantom((8, 8, 3), seed=13).astype(np.int16))
    weights = write_identity_weights(tmp_path / "w.safetensors")
    code, output = run("--modality", "mr", "--in", str(tmp_path / "v.nii.gz"), "--out", str(tmp_path / "o"),
                       "--weights", str(weights), "--ct-window", "-100,100")
    assert code == 2 and "--ct-window" in output and "needs --modality ct" in output
    code, output = run("--modality", "mr", "--in", str(tmp_path / "v.nii.gz"), "--out", str(tmp_path / "o"),
                       "--weights", str(weights), "--ct-window", "100,-100")
    assert code == 2 and "LOW must be below HIGH" in output
    code, output = run("--modality", "mr", "--in", str(tmp_path / "v.nii.gz"), "--out", str(tmp_path / "o"),
                       "--weights", str(weights), "--mr-percentile", "90")
    assert code == 0, output
    info = json.loads((tmp_path / "o" / "report.json").read_text())["files"][0]["info"]
    assert info["mr_percentile"] == 90 and info["strength"] == 1.0

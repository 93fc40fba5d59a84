"""``restore eval medical``: held-out slices, our weights against BM3D / cubic / zero-filled k-space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medical_files import phantom, write_identity_weights, write_nifti
from restore.cli import main
from restore.evaluate.medical import evaluate_medical

nibabel = pytest.importorskip("nibabel")


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return write_nifti(tmp_path / "held_out.nii.gz", phantom((32, 32, 5), seed=7, high=3000).astype(np.int16))


def test_denoising_rows_against_bm3d_and_bm4d(volume: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "identity.safetensors")
    table = evaluate_medical(str(weights), [volume], limit=2, level=0.05, device="cpu")
    means = table.means()
    assert list(means) == ["ours", "bm3d", "bm4d", "bm4d_vst", "noisy"]
    assert means["ours"]["psnr"] == pytest.approx(means["noisy"]["psnr"], abs=1e-3)  # identity weights
    for classical in ("bm3d", "bm4d", "bm4d_vst"):
        assert means[classical]["psnr"] > means["noisy"]["psnr"] + 1, classical
    assert {row["data_range"] for row in table.rows} == {65535}  # int16 NIfTI: the dtype's range
    again = evaluate_medical(str(weights), [volume], limit=2, level=0.05, device="cpu")
    scores = [(row["slice"], row["method"], round(row["psnr"], 4)) for row in table.rows]
    assert [(row["slice"], row["method"], round(row["psnr"], 4)) for row in again.rows] == scores  # same inputs


def test_the_wider_stack_of_bm4d_leaves_our_inputs_as_they_were(volume: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "identity.safetensors", context=1)
    alone = evaluate_medical(str(weights), [volume], limit=2, level=0.05, methods=("ours",), device="cpu")
    beside = evaluate_medical(str(weights), [volume], limit=2, level=0.05, methods=("ours", "bm4d"), device="cpu")
    ours = [row["psnr"] for row in beside.rows if row["method"] == "ours"]
    assert ours == [row["psnr"] for row in alone.rows]


def test_methods_that_do_not_apply_are_refused(volume: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "ct.safetensors", modality="ct", degradation="lowdose")
    with pytest.raises(ValueError, match="'bm4d_vst' does not apply to lowdose"):
        evaluate_medical(str(weights), [volume], limit=1, methods=("ours", "bm4d_vst"), device="cpu")


def test_superres_cli_writes_the_table_and_json(volume: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "sr.safetensors", degradation="kspace", scale=2)
    result = CliRunner().invoke(main, ["eval", "medical", "--weights", str(weights), "--data", str(volume),
                                       "--limit", "1", "--quiet", "--json", str(tmp_path / "scores.json")])
    assert result.exit_code == 0, result.output
    assert "cubic" in result.output and "zero_filled" in result.output
    saved = json.loads((tmp_path / "scores.json").read_text())
    assert set(saved["means"]) == {"ours", "cubic", "zero_filled"} and saved["settings"]["level"] == pytest.approx(0.0275)
    # the bicubic upsampling inside identity SR weights is close to MATLAB's cubic
    assert abs(saved["means"]["ours"]["psnr"] - saved["means"]["cubic"]["psnr"]) < 1.0


def test_weights_of_another_task_are_refused(volume: Path, tmp_path: Path) -> None:
    from tiny_weights import write_tiny_denoise_weights

    weights = write_tiny_denoise_weights(tmp_path / "denoise.safetensors")
    result = CliRunner().invoke(main, ["eval", "medical", "--weights", str(weights), "--data", str(volume)])
    assert result.exit_code == 2 and "are for denoise, not medical" in result.output


def test_bench_records_overall_and_per_file_means(volume: Path, tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    import restore.weights.manifest as registry

    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    registry.export_weights(write_identity_weights(tmp_path / "sr.safetensors", degradation="kspace", scale=2),
                            "sr", "r.toml")
    spec = importlib.util.spec_from_file_location("medical_quality",
                                                  Path(__file__).resolve().parents[1] / "bench" / "medical_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--weights", "sr", "--data", str(volume), "--limit", "2", "--level", "0.01", "--record"])
    metrics = registry.load_manifest()["sr"].metrics["level_0.01"]
    assert metrics["slices"] == 2 and metrics["ours_psnr"] > 20
    assert metrics["files"]["held_out.nii.gz"]["cubic_psnr"] == pytest.approx(metrics["cubic_psnr"])
    assert "--record" in registry.load_manifest()["sr"].metrics_command


def test_cli_method_picks_the_rows(volume: Path, tmp_path: Path) -> None:
    weights = write_identity_weights(tmp_path / "identity.safetensors")
    result = CliRunner().invoke(main, ["eval", "medical", "--weights", str(weights), "--data", str(volume),
                                       "--limit", "1", "--quiet", "--method", "ours,noisy"])
    assert result.exit_code == 0, result.output
    assert "noisy" in result.output and "bm3d" not in result.output
    refused = CliRunner().invoke(main, ["eval", "medical", "--weights", str(weights), "--data", str(volume),
                                        "--method", "cubic"])
    assert refused.exit_code == 2 and "'cubic' does not apply to rician" in refused.output

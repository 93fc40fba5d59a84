"""The `restore` command: help, exit codes, the foundation batch check, the README command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from restore.cli import main
from restore.engine.config import to_toml
from restore.weights import load_manifest
from tiny_weights import write_tiny_denoise_weights

REPO = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_help_lists_every_command_without_importing_torch() -> None:
    code = "import sys; from restore.cli import main; print('torch' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"
    exit_code, output = run("--help")
    assert exit_code == 0
    for command in ("denoise", "superres", "inpaint", "style", "medical", "train", "eval", "weights"):
        assert command in output


def test_version() -> None:
    from restore import __version__

    assert run("--version") == (0, f"restore, version {__version__}\n")


def test_denoise_folder_check(mixed_tree: Path, tmp_path: Path) -> None:
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    args = ["denoise", "--in", str(mixed_tree), "--out", str(out), "--weights", str(weights), "--quiet"]
    exit_code, output = run(*args)
    assert exit_code == 1, output
    expected = {"rgb.png": ((24, 32, 3), np.uint8), "sub/grey16.png": ((20, 20), np.uint16),
                "sub/deeper/rgba.png": ((16, 24, 4), np.uint8), "sub/photo.jpg": ((32, 32, 3), np.uint8)}
    for relative, (shape, dtype) in expected.items():
        original = cv2.imread(str(mixed_tree / relative), cv2.IMREAD_UNCHANGED)
        produced = cv2.imread(str(out / relative), cv2.IMREAD_UNCHANGED)
        assert produced.shape == shape and produced.dtype == dtype, relative
        if relative.endswith("rgba.png"):
            assert np.array_equal(produced[:, :, 3], original[:, :, 3])  # alpha carried through
    report = json.loads((out / "report.json").read_text())
    assert len(report["files"]) == 6
    failed = {Path(item["input"]).name: item["reason"] for item in report["files"] if item["status"] == "failed"}
    assert set(failed) == {"corrupt.png", "readme.txt"} and all(failed.values())
    assert "corrupt.png" in output and "readme.txt" in output
    exit_code, output = run(*args)
    assert exit_code == 1 and "0 done, 4 skipped, 2 failed" in output


def test_fp16_on_cpu_is_a_usage_error(mixed_tree: Path, tmp_path: Path) -> None:
    exit_code, output = run("denoise", "--in", str(mixed_tree), "--out", str(tmp_path / "o"),
                            "--device", "cpu", "--precision", "fp16")
    assert exit_code == 2 and "fp16 is not supported on the CPU" in output


def test_missing_device_is_a_usage_error(mixed_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from restore.engine.device import DeviceError, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="no CUDA GPU is available"):
        resolve_device("cuda")
    exit_code, output = run("denoise", "--in", str(mixed_tree), "--out", str(tmp_path / "o"), "--device", "cuda")
    assert exit_code == 2 and "--device cuda was asked for, but no CUDA GPU is available" in output


@pytest.mark.parametrize("value", ["0", "many"])
def test_bad_batch_size_is_a_usage_error(mixed_tree: Path, tmp_path: Path, value: str) -> None:
    exit_code, output = run("denoise", "--in", str(mixed_tree), "--out", str(tmp_path / "o"), "--batch-size", value)
    assert exit_code == 2 and "number of tiles" in output


def test_bad_sigma_is_a_usage_error(mixed_tree: Path, tmp_path: Path) -> None:
    exit_code, output = run("denoise", "--in", str(mixed_tree), "--out", str(tmp_path / "o"), "--sigma", "loud")
    assert exit_code == 2 and "noise level" in output


@pytest.mark.skipif("denoise-color" not in load_manifest(), reason="no denoise weights shipped")
def test_readme_command_on_shipped_samples(tmp_path: Path) -> None:
    """README's third command: shipped weights on the shipped samples, offline."""
    samples = REPO / "datasets" / "samples" / "noisy"
    exit_code, output = run("denoise", "--in", str(samples), "--out", str(tmp_path / "denoised"), "--quiet")
    assert exit_code == 0, output
    clean = REPO / "datasets" / "samples" / "clean"
    before = cv2.imread(str(samples / "colour" / "astronaut.png")).astype(float)
    after = cv2.imread(str(tmp_path / "denoised" / "colour" / "astronaut.png")).astype(float)
    truth = cv2.imread(str(clean / "astronaut.png")).astype(float)
    assert np.mean((after - truth) ** 2) < 0.5 * np.mean((before - truth) ** 2)  # noise really removed


def test_print_config_shows_every_section() -> None:
    exit_code, output = run("train", "denoise", "--print-config", "--steps", "123")
    assert exit_code == 0
    for section in ("[data]", "[loss]", "[optim]", "[log]", "[generator]", "[task_options]"):
        assert section in output
    assert "steps = 123" in output


def test_resume_without_steps_finishes_the_run_instead_of_extending_it(
    clean_images: Path, tmp_path: Path, tiny_config
) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(to_toml(tiny_config("denoise", clean_images, steps=2)))
    run_dir = str(tmp_path / "run")
    assert run("train", "denoise", "--config", str(recipe), "--out", run_dir, "--quiet")[0] == 0
    exit_code, output = run("train", "denoise", "--out", run_dir, "--resume", "--quiet")  # default steps: 10000
    assert exit_code == 0 and "trained 2 steps" in output, output
    exit_code, output = run("train", "denoise", "--out", run_dir, "--resume", "--steps", "3", "--quiet")
    assert exit_code == 0 and "trained 3 steps" in output, output


def test_weights_list_runs() -> None:
    exit_code, output = run("weights", "list")
    assert exit_code == 0
    assert all(name in output for name in load_manifest())


def test_eval_pairs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref").mkdir()
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "ref" / "a.png"), image)
    cv2.imwrite(str(tmp_path / "pred" / "a_x.png"), np.clip(image.astype(int) + 2, 0, 255).astype(np.uint8))
    exit_code, output = run("eval", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref"),
                            "--strip-suffix", "_x", "--json", str(tmp_path / "r.json"))
    assert exit_code == 0, output
    assert "a" in output and (tmp_path / "r.json").is_file()


def test_eval_denoise_table_and_json(tmp_path: Path) -> None:
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    (tmp_path / "set").mkdir()
    image = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "set" / "a.png"), image)
    exit_code, output = run("eval", "denoise", "--data", str(tmp_path / "set"), "--sigma", "25",
                            "--weights", str(weights), "--methods", "ours,noisy", "--json", str(tmp_path / "r.json"))
    assert exit_code == 0, output
    assert "ours" in output and "noisy" in output and "sigma=25" in output
    table = json.loads((tmp_path / "r.json").read_text())["set"]
    assert set(table["methods"]) == {"ours", "noisy"} and table["settings"]["weights"] == str(weights)
    assert 19 < table["methods"]["noisy"]["sigma"]["25"]["psnr"] < 22  # 20*log10(255/25) = 20.2


def test_eval_denoise_rejects_unknown_methods_and_sigmas(tmp_path: Path) -> None:
    (tmp_path / "set").mkdir()
    assert run("eval", "denoise", "--data", str(tmp_path / "set"), "--methods", "dncnn")[0] == 2
    assert run("eval", "denoise", "--data", str(tmp_path / "set"), "--sigma", "0,25")[0] == 2
    exit_code, output = run("eval", "denoise", "--data", str(tmp_path / "set"), "--methods", "noisy")
    assert exit_code == 2 and "no images found" in output  # an empty set names the folder, no traceback


def test_denoise_strength_outside_zero_to_one_is_a_usage_error(mixed_tree: Path, tmp_path: Path) -> None:
    code, output = run("denoise", "--in", str(mixed_tree), "--out", str(tmp_path / "out"), "--strength", "1.5")
    assert code == 2 and "--strength" in output
    assert not (tmp_path / "out").exists()

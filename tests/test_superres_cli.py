"""`restore superres`: default weights by scale/model, --outscale, alpha, 16-bit and grey."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from restore.cli import main
from tiny_weights import write_tiny_superres_weights


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """8-bit RGB, 16-bit grey and RGBA with a hard-edged alpha."""
    root = tmp_path / "in"
    root.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "rgb.png"), rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "grey16.png"), rng.integers(0, 65536, (10, 10), dtype=np.uint16))
    rgba = rng.integers(0, 256, (8, 12, 4), dtype=np.uint8)
    rgba[:, :, 3] = 0
    rgba[:, 6:, 3] = 255
    cv2.imwrite(str(root / "rgba.png"), rgba)
    return root


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_upscales_keeping_bit_depth_grey_and_alpha(inputs: Path, tmp_path: Path) -> None:
    weights = write_tiny_superres_weights(tmp_path / "x2.safetensors", scale=2)
    out = tmp_path / "out"
    code, output = run("superres", "--in", str(inputs), "--out", str(out), "--weights", str(weights), "--quiet")
    assert code == 0, output
    assert read(out / "rgb.png").shape == (24, 32, 3)
    grey = read(out / "grey16.png")
    assert grey.shape == (20, 20) and grey.dtype == np.uint16
    rgba = read(out / "rgba.png")
    assert rgba.shape == (16, 24, 4)
    report = json.loads((out / "report.json").read_text())
    assert report["summary"] == {"done": 3, "skipped": 0, "failed": 0}


def test_outscale_and_alpha_by_the_model(inputs: Path, tmp_path: Path) -> None:
    weights = write_tiny_superres_weights(tmp_path / "x2.safetensors", scale=2)
    sizes = {}
    for alpha in ("bicubic", "model"):
        out = tmp_path / alpha
        code, output = run("superres", "--in", str(inputs), "--out", str(out), "--weights", str(weights),
                           "--scale", "2", "--outscale", "1.5", "--alpha", alpha, "--quiet")
        assert code == 0, output
        assert read(out / "rgb.png").shape == (18, 24, 3) and read(out / "grey16.png").shape == (15, 15)
        sizes[alpha] = read(out / "rgba.png")
        assert sizes[alpha].shape == (12, 18, 4)
    # the untrained network does not reproduce bicubic's alpha: the option reached it
    assert not np.array_equal(sizes["bicubic"][:, :, 3], sizes["model"][:, :, 3])


def test_a_scale_that_does_not_match_the_weights_is_refused(inputs: Path, tmp_path: Path) -> None:
    weights = write_tiny_superres_weights(tmp_path / "x2.safetensors", scale=2)
    code, output = run("superres", "--in", str(inputs / "rgb.png"), "--out", str(tmp_path / "out"),
                       "--weights", str(weights), "--scale", "4", "--quiet")
    assert code != 0 and not (tmp_path / "out" / "rgb.png").exists()
    assert "upscale x2, not the x4 asked for" in output


@pytest.mark.parametrize(("flags", "name"), [((), "superres-x4"), (("--scale", "2"), "superres-x2"),
                                             (("--model", "real"), "superres-x4-real")])
def test_missing_default_weights_name_the_weights_and_their_recipe(
    inputs: Path, tmp_path: Path, monkeypatch, flags: tuple[str, ...], name: str
) -> None:
    monkeypatch.setattr("restore.api.load_manifest", dict)  # an installation that ships none
    code, output = run("superres", "--in", str(inputs), "--out", str(tmp_path / "out"), *flags)
    assert code == 2
    assert f"({name})" in output
    assert f"restore train superres --config weights/recipes/{name}.toml --out runs/{name}" in output


def test_help_explains_the_superres_options() -> None:
    code, output = run("superres", "--help")
    assert code == 0
    for option in ("--scale", "--model", "--outscale", "--alpha", "--tile"):
        assert option in output


def test_model_real_runs_on_the_shipped_weights(inputs: Path, tmp_path: Path) -> None:
    code, output = run("superres", "--in", str(inputs), "--out", str(tmp_path / "out"), "--model", "real", "--quiet")
    assert code == 0, output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {item["info"]["weights"] for item in report["files"]} == {"superres-x4-real"}
    assert read(tmp_path / "out" / "rgb.png").shape == (48, 64, 3)
    assert read(tmp_path / "out" / "grey16.png").dtype == np.uint16

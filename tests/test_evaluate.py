"""Folder-vs-folder scoring, the denoising benchmark protocol, and the bench's model adapter."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from restore.evaluate.denoise import BASELINES, add_noise, evaluate_denoise, load_clean_images, model_method, to_uint8
from restore.evaluate.pairs import evaluate_pairs
from restore.metrics import psnr, ssim
from restore.nets import build_network
from restore.weights import save_weights

REPO = Path(__file__).resolve().parents[1]


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write RGB (or grey) uint8 pixels; OpenCV wants BGR."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = pixels[:, :, ::-1] if pixels.ndim == 3 and pixels.shape[2] == 3 else pixels
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))


def random_image(seed: int, shape: tuple[int, ...] = (32, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- evaluate_pairs ---------------------------------------------------------------


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """ref/{a, sub/b, c}.png; pred/{a_out.png, sub/b_out.bmp, d_out.png}: a and sub/b match
    once ``_out`` is stripped (b across extensions), c and d are orphans."""
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    images = {name: random_image(seed) for seed, name in enumerate(["a", "sub/b", "c"])}
    for name, pixels in images.items():
        write_png(ref / f"{name}.png", pixels)
    outputs = {"a": np.clip(images["a"].astype(int) + 9, 0, 255).astype(np.uint8), "sub/b": images["sub/b"]}
    write_png(pred / "a_out.png", outputs["a"])
    write_png(pred / "sub" / "b_out.bmp", outputs["sub/b"])
    write_png(pred / "d_out.png", random_image(9))
    return pred, ref, outputs


def test_pairs_match_by_stem_after_stripping_the_suffix(folders):
    pred, ref, outputs = folders
    table = evaluate_pairs(pred, ref, strip_suffix="_out")
    assert [score.name for score in table.scores] == ["a", "sub/b"]
    a, b = table.scores
    clean_a = cv2.imread(str(ref / "a.png"))[:, :, ::-1]
    assert a.psnr == pytest.approx(psnr(outputs["a"], clean_a))
    assert a.ssim == pytest.approx(ssim(outputs["a"], clean_a))
    assert b.psnr == math.inf
    assert table.mean_psnr == math.inf
    assert table.unmatched_predictions == [pred / "d_out.png"]
    assert table.unmatched_references == [ref / "c.png"]


def test_pairs_without_suffix_stripping_match_nothing(folders):
    pred, ref, _ = folders
    table = evaluate_pairs(pred, ref)
    assert table.scores == []
    assert len(table.unmatched_predictions) == 3 and len(table.unmatched_references) == 3
    assert math.isnan(table.mean_psnr)
    json.loads(json.dumps(table.to_dict(), allow_nan=False))  # still strict JSON


def test_pairs_y_channel_and_crop_are_applied(folders):
    pred, ref, outputs = folders
    table = evaluate_pairs(pred, ref, strip_suffix="_out", y_channel=True, crop=4)
    clean_a = cv2.imread(str(ref / "a.png"))[:, :, ::-1]
    expected = psnr(outputs["a"], clean_a, crop_border=4, y_channel=True)
    assert table.scores[0].psnr == pytest.approx(expected)
    assert expected != pytest.approx(psnr(outputs["a"], clean_a))


def test_pairs_table_renders_and_writes_csv_and_json(folders, tmp_path):
    pred, ref, _ = folders
    table = evaluate_pairs(pred, ref, strip_suffix="_out")
    text = table.to_text()
    assert "sub/b" in text and "mean" in text and "d_out.png" in text and "c.png" in text
    table.write_csv(tmp_path / "out" / "scores.csv")
    table.write_json(tmp_path / "out" / "scores.json")
    with open(tmp_path / "out" / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == ["a", "sub/b"]
    assert float(rows[0]["psnr"]) == table.scores[0].psnr
    data = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert data["images"][1]["psnr"] == "inf"
    assert data["mean"]["images"] == 2
    assert data["settings"]["strip_suffix"] == "_out"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scores.csv", "scores.json"]


def test_two_files_with_one_name_are_refused(folders):
    pred, ref, _ = folders
    write_png(pred / "a_out.bmp", random_image(3))
    with pytest.raises(ValueError, match="a_out"):
        evaluate_pairs(pred, ref, strip_suffix="_out")


def test_pairs_of_different_sizes_are_refused(folders):
    pred, ref, _ = folders
    write_png(pred / "c_out.png", random_image(4, (30, 32, 3)))
    with pytest.raises(ValueError, match="c_out.png"):
        evaluate_pairs(pred, ref, strip_suffix="_out")


# --- the denoising protocol ---------------------------------------------------------


def test_noise_is_reproducible_and_matches_kair():
    clean = random_image(1)
    first, second = add_noise(clean, 25), add_noise(clean, 25)
    np.testing.assert_array_equal(first, second)
    assert first.dtype == np.float32
    assert first.min() < 0 or first.max() > 1  # kept as float, not clipped
    assert not np.array_equal(first, add_noise(clean, 25, seed=1))
    saved = np.random.get_state()
    try:  # KAIR's exact lines (main_test_dncnn.py / main_test_drunet.py)
        img_L = np.float32(clean / 255.0)
        np.random.seed(seed=0)
        img_L += np.random.normal(0, 25 / 255.0, img_L.shape)
    finally:
        np.random.set_state(saved)
    np.testing.assert_array_equal(first, img_L)


@pytest.fixture
def colour_set(tmp_path: Path) -> Path:
    """One random 32x32 RGB image in mid-tones, so that sigma 25 noise is rarely clipped."""
    folder = tmp_path / "tiny"
    write_png(folder / "img.png", np.random.default_rng(2).integers(60, 196, (32, 32, 3), dtype=np.uint8))
    return folder


def test_noisy_baseline_scores_the_quantised_noisy_image(colour_set):
    table = evaluate_denoise(colour_set, {"noisy": BASELINES["noisy"]}, [25])
    clean = cv2.imread(str(colour_set / "img.png"))[:, :, ::-1]
    noise = np.random.RandomState(0).normal(0, 25 / 255.0, clean.shape)
    quantised = np.clip(np.round((clean / 255.0 + noise) * 255), 0, 255)
    expected = 10 * math.log10(255**2 / np.mean((quantised - clean) ** 2))
    assert table.channels == 3
    assert table.mean_psnr("noisy", 25) == pytest.approx(expected, abs=1e-3)
    # about the theoretical 20*log10(255/25) = 20.17 dB (this draw of 3072 values is a bit
    # weaker than sigma 25), and close to what the unrounded, unclipped noise itself gives
    assert abs(expected - 20 * math.log10(255 / 25)) < 0.5
    assert expected == pytest.approx(-10 * math.log10(np.mean(noise**2)), abs=0.05)


def test_bm3d_and_nlmeans_beat_noisy_on_a_smooth_image(tmp_path):
    rows, columns = np.mgrid[0:32, 0:32]
    smooth = (60 + 3 * rows + 2 * columns).astype(np.uint8)[:, :, None]
    folder = tmp_path / "smooth"
    write_png(folder / "ramp.png", smooth)
    table = evaluate_denoise(folder, BASELINES, [25])
    assert table.channels == 1
    assert table.mean_psnr("bm3d", 25) > table.mean_psnr("noisy", 25) + 3
    assert table.mean_psnr("nlmeans", 25) > table.mean_psnr("noisy", 25) + 3


def test_grey_sets_are_read_as_one_channel(tmp_path):
    colour = random_image(5)
    write_png(tmp_path / "Set12" / "01.png", colour)
    [(name, grey)] = load_clean_images(tmp_path / "Set12", channels=1)
    assert name == "01" and grey.shape == (32, 32, 1)
    np.testing.assert_array_equal(grey[:, :, 0], cv2.imread(str(tmp_path / "Set12" / "01.png"), cv2.IMREAD_GRAYSCALE))
    table = evaluate_denoise(tmp_path / "Set12", {"noisy": BASELINES["noisy"]}, [15])
    assert table.channels == 1


def test_table_json_holds_every_image_and_timing(tmp_path, colour_set):
    write_png(colour_set / "second.png", random_image(6))

    def halve_noise(noisy: np.ndarray, sigma: float) -> np.ndarray:
        return noisy * 0.5 + 0.25

    table = evaluate_denoise(colour_set, {"noisy": BASELINES["noisy"], "half": halve_noise}, [15, 50], max_images=1)
    assert table.images == ["img"]
    table.write_json(tmp_path / "table.json")
    data = json.loads((tmp_path / "table.json").read_text())
    cell = data["methods"]["half"]["sigma"]["50"]
    assert cell["psnr"] == pytest.approx(table.mean_psnr("half", 50))
    clean = cv2.imread(str(colour_set / "img.png"))[:, :, ::-1]
    expected = psnr(to_uint8(halve_noise(add_noise(clean, 50), 50)), clean)
    assert cell["per_image"]["img"]["psnr"] == pytest.approx(expected)
    assert data["methods"]["half"]["seconds_per_megapixel"] >= 0
    text = table.to_text()
    assert "sigma=15" in text and "half" in text and "s/MP" in text


def test_a_method_returning_the_wrong_shape_is_named(colour_set):
    with pytest.raises(ValueError, match="'broken'"):
        evaluate_denoise(colour_set, {"broken": lambda noisy, sigma: noisy[:-1]}, [25])


# --- our model as a benchmark method ----------------------------------------------------


@pytest.fixture
def tiny_weights(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    spec = {
        "arch": "unet",
        "in_channels": 3,
        "out_channels": 3,
        "extra_channels": 1,
        "base_channels": 4,
        "depth": 2,
        "max_channels": 8,
        "blocks_per_level": 0,
        "residual": True,
    }
    torch.manual_seed(0)
    network = build_network(spec).eval()
    path = tmp_path / "tiny.safetensors"
    save_weights(path, network.state_dict(), {"network": spec, "task": "denoise"})
    return path, network


def test_adapter_feeds_the_network_the_image_and_sigma_map(tiny_weights):
    path, network = tiny_weights
    noisy = np.random.default_rng(0).random((16, 20, 3), dtype=np.float32)  # both multiples of 4
    ours = model_method(str(path))
    inputs = torch.cat([torch.from_numpy(noisy.transpose(2, 0, 1))[None], torch.full((1, 1, 16, 20), 30 / 255)], 1)
    with torch.no_grad():
        expected = network(inputs)[0].clamp(0, 1).numpy().transpose(1, 2, 0)  # the engine clips to [0, 1]
    np.testing.assert_allclose(ours(noisy, 30.0), expected, atol=1e-6)


def test_adapter_pads_and_crops_back_any_size(tiny_weights):
    """With the last convolution zeroed the residual network is the identity, so any
    misplaced padding or crop shows up as a mismatch."""
    path, network = tiny_weights
    with torch.no_grad():
        for parameter in network.tail.parameters():
            parameter.zero_()
    save_weights(path, network.state_dict(), {"network": {"arch": "unet", **vars(network.config)}, "task": "denoise"})
    ours = model_method(str(path))
    colour = np.random.default_rng(1).random((13, 18, 3), dtype=np.float32)
    np.testing.assert_allclose(ours(colour, 25.0), colour, atol=1e-6)
    grey = colour[:, :, :1]
    result = ours(grey, 25.0)
    assert result.shape == grey.shape
    np.testing.assert_allclose(result, grey, atol=1e-6)


def test_quality_bench_records_its_means_in_the_manifest(tmp_path, monkeypatch, colour_set):
    import importlib.util

    import restore.weights.manifest as registry
    from tiny_weights import write_tiny_denoise_weights

    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    registry.export_weights(write_tiny_denoise_weights(tmp_path / "tiny.safetensors"), "tiny", "r.toml")
    spec = importlib.util.spec_from_file_location("denoise_quality", REPO / "bench" / "denoise_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--weights", "tiny", "--methods", "ours,noisy", "--sigmas", "25", "--data", str(colour_set.parent),
                "--sets", colour_set.name, "--max-images", "1", "--record"])
    metrics = registry.load_manifest()["tiny"].metrics[f"{colour_set.name}[:1]"]
    assert metrics["images"] == 1 and set(metrics["sigma25"]) == {"psnr", "ssim", "noisy_psnr"}
    assert 19 < metrics["sigma25"]["noisy_psnr"] < 22
    assert "--record" in registry.load_manifest()["tiny"].metrics_command


# -- bm3d is an optional extra (non-commercial licence) -----------------------------------------


def test_bm3d_is_no_runtime_dependency() -> None:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert not [dep for dep in project["dependencies"] if dep.startswith(("bm3d", "bm4d"))]
    assert any(dep.startswith("bm3d") for dep in project["optional-dependencies"]["bench"])
    assert "restore[bench]" in project["optional-dependencies"]["dev"]


def test_eval_without_bm3d_names_the_extra(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from restore.cli import main

    folder = tmp_path / "set"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((16, 16), 128, np.uint8))
    monkeypatch.setitem(sys.modules, "bm3d", None)  # as if not installed: importing it raises ImportError
    result = CliRunner().invoke(main, ["eval", "denoise", "--data", str(folder), "--methods", "bm3d,noisy"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "pip install 'restore[bench]'" in result.output
    result = CliRunner().invoke(main, ["eval", "denoise", "--data", str(folder), "--methods", "noisy"])
    assert result.exit_code == 0, result.output


BLOCK_BM3D_AND_RUN = """
import sys
sys.modules["bm3d"] = sys.modules["bm4d"] = None  # importing either now raises ImportError
from restore.cli import main
main(sys.argv[1:])
"""


def test_inference_never_imports_bm3d(tmp_path):
    from tiny_weights import write_tiny_denoise_weights

    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.full((16, 16, 3), 128, np.uint8))
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    result = subprocess.run([sys.executable, "-c", BLOCK_BM3D_AND_RUN, "denoise", "--in", str(tmp_path / "in"),
                             "--out", str(tmp_path / "out"), "--weights", str(weights), "--quiet"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "a.png").is_file()

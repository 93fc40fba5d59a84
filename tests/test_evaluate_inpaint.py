"""The inpainting benchmark: area bins, mask fitting, hole PSNR, the table and `restore eval inpaint`."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from restore.cli import main
from restore.weights import save_weights
from restore.evaluate.inpaint import (
    BASELINES,
    evaluate_inpaint,
    fit_mask,
    hole_bin,
    hole_psnr,
)
from restore.nets import build_network

TINY_SPEC = {"arch": "unet", "in_channels": 3, "out_channels": 3, "extra_channels": 1, "base_channels": 4,
             "depth": 2, "max_channels": 8, "blocks_per_level": 1, "residual": False}


def test_bins_are_tenths_up_to_sixty_percent() -> None:
    assert hole_bin(0.0) is None and hole_bin(0.6) is None and hole_bin(0.95) is None
    assert hole_bin(0.001) == 0 and hole_bin(0.1) == 1 and hole_bin(0.599) == 5


def test_fit_mask_crops_the_centre_or_resizes() -> None:
    hole = np.zeros((10, 10), bool)
    hole[0, :] = True  # a top row that the centre crop removes
    hole[5, 5] = True
    cropped = fit_mask(hole, 6, 8)
    assert cropped.shape == (6, 8) and cropped.sum() == 1 and cropped[3, 4]
    grown = fit_mask(np.eye(4, dtype=bool), 8, 8)
    assert grown.shape == (8, 8) and grown.sum() == 16


def test_hole_psnr_counts_only_the_hole() -> None:
    reference = np.zeros((4, 4, 3), np.uint8)
    output = reference.copy()
    output[0, 0] = 10
    output[3, 3] = 200  # outside the hole: ignored
    hole = np.zeros((4, 4), bool)
    hole[0, :2] = True
    assert hole_psnr(output, reference, hole) == pytest.approx(10 * math.log10(255**2 / 50))
    assert hole_psnr(reference, reference, hole) == math.inf


@pytest.fixture
def benchmark(tmp_path: Path) -> tuple[Path, Path]:
    """3 photos of 24x24 and masks of 32x32 (centre-cropped) in several area bins."""
    data, masks = tmp_path / "photos", tmp_path / "masks"
    data.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        smooth = cv2.GaussianBlur(rng.random((24, 24, 3)).astype(np.float32), (0, 0), 2)
        cv2.imwrite(str(data / f"p{index}.png"), (smooth / smooth.max() * 255).astype(np.uint8))
    for index, side in enumerate((4, 7, 9, 12)):  # 16/576, 49/576, 81/576, 144/576 of the 24x24 centre
        mask = np.zeros((32, 32), np.uint8)
        mask[10 : 10 + side, 10 : 10 + side] = 255
        cv2.imwrite(str(masks / f"{index:05d}.png"), mask)
    empty = np.zeros((32, 32), np.uint8)
    empty[:3, :3] = 255  # only outside the centre crop: no hole left, never used
    cv2.imwrite(str(masks / "corner.png"), empty)
    return data, masks


def test_table_per_bin_with_known_pixels_kept(benchmark: tuple[Path, Path]) -> None:
    data, masks = benchmark

    def white(holed: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return np.full_like(holed, 255)  # wrong everywhere: only its hole pixels may count

    table = evaluate_inpaint(data, masks, {"telea": BASELINES["telea"], "white": white})
    assert sorted(table.pairs) == [0, 1, 2]  # 0-10 %, 10-20 %, 20-30 %
    assert len(table.pairs[0]) == 3 and {mask for _, mask in table.pairs[0]} == {"00000.png", "00001.png"}
    assert all(mask != "corner.png" for pairs in table.pairs.values() for _, mask in pairs)
    for index in table.pairs:
        assert np.mean(table.hole_psnr["telea"][index]) > np.mean(table.hole_psnr["white"][index])
        # whole-image PSNR is finite and above the hole PSNR: the known pixels were kept exactly
        assert all(whole > hole for whole, hole in zip(table.psnr["white"][index], table.hole_psnr["white"][index]))
    text = table.to_text()
    assert "0-10%" in text and "hole PSNR" in text and "telea" in text


def test_limit_takes_the_first_images(benchmark: tuple[Path, Path]) -> None:
    data, masks = benchmark
    table = evaluate_inpaint(data, masks, {"ns": BASELINES["navier_stokes"]}, limit=1)
    assert {image for pairs in table.pairs.values() for image, _ in pairs} == {"p0"}


def test_eval_inpaint_command(benchmark: tuple[Path, Path], tmp_path: Path) -> None:
    data, masks = benchmark
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_weights(weights, build_network(TINY_SPEC).state_dict(), {"task": "inpaint", "network": TINY_SPEC})
    result = CliRunner().invoke(main, ["eval", "inpaint", "--data", str(data), "--masks", str(masks),
                                       "--weights", str(weights), "--methods", "ours,ours+,telea,biharmonic",
                                       "--limit", "2", "--csv", str(tmp_path / "t.csv"),
                                       "--json", str(tmp_path / "t.json"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "ours+" in result.output and "biharmonic" in result.output
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert len(rows) == 3 * 4 and {row["method"] for row in rows} == {"ours", "ours+", "telea", "biharmonic"}
    single, ensemble = ({row["bin"]: row["hole_psnr"] for row in rows if row["method"] == name} for name in ("ours", "ours+"))
    assert single != ensemble  # ours+ averages 8 flips/rotations of an untrained, unsymmetric network
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["settings"]["limit"] == 2 and saved["settings"]["weights"] == str(weights)


def test_eval_inpaint_refuses_unknown_methods(benchmark: tuple[Path, Path]) -> None:
    data, masks = benchmark
    arguments = ["eval", "inpaint", "--data", str(data), "--masks", str(masks), "--methods", "lama"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2 and "choose from" in result.output


def test_quality_bench_records_its_bin_means_in_the_manifest(benchmark: tuple[Path, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import restore.weights.manifest as registry

    data, masks = benchmark
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))  # as when run as a script
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_weights(weights, build_network(TINY_SPEC).state_dict(), {"task": "inpaint", "network": TINY_SPEC})
    registry.export_weights(weights, "tiny-inpaint", "r.toml")
    spec = importlib.util.spec_from_file_location("inpaint_quality", Path(__file__).parents[1] / "bench" / "inpaint_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--weights", "tiny-inpaint", "--methods", "ours,ours+,telea", "--data", str(data),
                "--masks", str(masks), "--limit", "2", "--record"])
    entry = registry.load_manifest()["tiny-inpaint"]
    metrics = entry.metrics["photos[:2]"]
    assert metrics["images"] == 2 and metrics["masks"] == "masks"
    assert set(metrics["holes_0-10pct"]) == {"pairs", "psnr", "ssim", "hole_psnr", "texture", "original_texture",
                                             "ensemble_hole_psnr", "ensemble_texture", "telea_hole_psnr",
                                             "telea_texture"}
    assert metrics["holes_0-10pct"]["pairs"] == 2
    assert math.isfinite(metrics["mean_hole_psnr_gain_over_telea"])
    assert metrics["mean_hole_psnr_gain_over_telea_ensemble"] != metrics["mean_hole_psnr_gain_over_telea"]
    assert "--record" in entry.metrics_command

    big = tmp_path / "big_masks"
    big.mkdir()
    mask = np.zeros((24, 24), np.uint8)
    mask[3:20, 2:20] = 255  # 306 of 576 pixels: the 50-60 % bin
    cv2.imwrite(str(big / "large.png"), mask)
    bench.main(["--weights", "tiny-inpaint", "--methods", "telea", "--data", str(data), "--masks", str(big),
                "--grid", str(tmp_path / "grid.jpg"), "--grid-images", "2"])
    grid = cv2.imread(str(tmp_path / "grid.jpg"))
    assert grid.shape == (2 * 24 + 4, 4 * 24 + 3 * 4, 3)  # two pairs: holed, telea, ours, original


EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "eval"


@pytest.mark.skipif(not (EVAL / "inpaint" / "masks").is_dir() or not (EVAL / "denoise" / "Kodak24").is_dir(),
                    reason="../shared/data/eval (Kodak24, NVIDIA masks) is not available")
def test_the_shipped_model_beats_telea_on_held_out_photos_in_every_bin(tmp_path: Path) -> None:
    from restore.evaluate.inpaint import model_method

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("kodim01.png", "kodim02.png"):
        (photos / name).write_bytes((EVAL / "denoise" / "Kodak24" / name).read_bytes())
    methods = {"ours": model_method("inpaint"), "telea": BASELINES["telea"]}
    table = evaluate_inpaint(photos, EVAL / "inpaint" / "masks", methods)
    assert sorted(table.pairs) == list(range(6))
    for index in table.pairs:  # the full Kodak24 run: bench/inpaint_quality.py (README)
        assert np.mean(table.hole_psnr["ours"][index]) > np.mean(table.hole_psnr["telea"][index]), index

"""``restore eval style``: FID/KID against independent reference computations, the colour
histogram distance on cases with known answers, a user-supplied feature network, and the
command."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision
from click.testing import CliRunner

from restore.cli import main
from restore.evaluate.style import (
    evaluate_style,
    feature_architecture,
    frechet_distance,
    histogram_distance,
    kernel_inception_distance,
)

from conftest import write_images


def test_frechet_distance_matches_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    first = rng.normal(size=(200, 6))
    second = rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu = first.mean(0) - second.mean(0)
    s1, s2 = np.cov(first, rowvar=False), np.cov(second, rowvar=False)
    expected = mu @ mu + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(first, second) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_a_set_with_itself_is_zero_even_when_singular() -> None:
    features = np.random.default_rng(1).normal(size=(5, 40))  # 5 images, 40 dimensions
    assert abs(frechet_distance(features, features)) < 1e-8


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 1

    def kernel(a: np.ndarray, b: np.ndarray) -> float:
        return (a @ b / 3 + 1) ** 3

    n = len(x)
    within = sum(kernel(x[i], x[j]) + kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    across = sum(kernel(x[i], y[j]) for i in range(n) for j in range(n)) / n**2
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=n)  # whole sets: every subset equal
    assert mean == pytest.approx(within - 2 * across) and std == pytest.approx(0, abs=1e-12)


def test_histogram_distance_has_the_known_extremes() -> None:
    black, white = np.zeros((3, 256)), np.zeros((3, 256))
    black[:, 0], white[:, 255] = 10, 10
    assert np.allclose(histogram_distance(black, white), 1.0)
    assert np.allclose(histogram_distance(black, black), 0.0)
    grey = np.zeros((3, 256))
    grey[:, 51] = 4  # 51 / 255 = 0.2 of the range away from black
    assert np.allclose(histogram_distance(black, grey), 0.2)


def solid_folder(folder: Path, bgr: tuple[int, int, int], count: int = 2) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((8, 10, 3), bgr, dtype=np.uint8))
    return folder


def test_histogram_fallback_per_channel(tmp_path: Path) -> None:
    red = solid_folder(tmp_path / "red", (0, 0, 255))  # OpenCV writes BGR
    black = solid_folder(tmp_path / "black", (0, 0, 0), count=3)
    scores = evaluate_style(red, black)
    assert scores.method == "colour-histogram" and (scores.predictions, scores.targets) == (2, 3)
    assert scores.values["histogram_w1_R"] == pytest.approx(1.0)
    assert scores.values["histogram_w1_G"] == pytest.approx(0.0)
    assert scores.values["histogram_w1"] == pytest.approx(1 / 3)


def test_feature_architecture_is_read_from_the_keys() -> None:
    with torch.device("meta"):
        keys = {name: set(getattr(torchvision.models, name)(weights=None).state_dict()) for name in ("vgg16", "vgg19_bn")}
        inception = set(torchvision.models.inception_v3(weights=None, init_weights=False).state_dict())
    assert feature_architecture(keys["vgg16"]) == "vgg16"
    assert feature_architecture(keys["vgg19_bn"]) == "vgg19_bn"
    assert feature_architecture(inception) == "inception_v3"
    with pytest.raises(ValueError, match="neither"):
        feature_architecture({"encoder.weight"})


@pytest.fixture
def vgg_features_file(tmp_path: Path) -> Path:
    """A VGG11 ``features`` state dict with random weights, as a user's file would be saved."""
    torch.manual_seed(0)
    path = tmp_path / "vgg11_features.pth"
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["A"])
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def test_fid_and_kid_with_a_user_feature_network(tmp_path: Path, vgg_features_file: Path) -> None:
    images = write_images(tmp_path / "a", 2, 24, 24, seed=1)
    red = solid_folder(tmp_path / "b", (0, 0, 255), count=2)
    scores = evaluate_style(images, red, features=vgg_features_file, kid_subsets=2)
    assert scores.method == "features"
    assert scores.settings["network"] == "vgg11" and scores.settings["feature_dim"] == 512
    assert scores.values["fid"] > 0 and np.isfinite(scores.values["kid"])


def test_eval_style_command_writes_json(tmp_path: Path) -> None:
    red = solid_folder(tmp_path / "red", (0, 0, 255))
    blue = solid_folder(tmp_path / "blue", (255, 0, 0))
    result = CliRunner().invoke(main, ["eval", "style", "--pred", str(red), "--target", str(blue),
                                       "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert "colour-histogram" in result.output
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["values"]["histogram_w1"] == pytest.approx(2 / 3)


def test_eval_style_refuses_an_unknown_features_file(tmp_path: Path) -> None:
    red = solid_folder(tmp_path / "red", (0, 0, 255))
    features = tmp_path / "f.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, features)
    result = CliRunner().invoke(main, ["eval", "style", "--pred", str(red), "--target", str(red), "--features", str(features)])
    assert result.exit_code == 2 and "neither a torchvision" in result.output

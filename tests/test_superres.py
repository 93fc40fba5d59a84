"""The super-resolution task: MATLAB-bicubic pairs, and a scale that follows its options."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from restore.engine.data import DegradedPairs
from restore.engine.train import Trainer, resolve_config
from restore.metrics.imresize import imresize
from restore.tasks import get_task


def test_pairs_are_matlab_bicubic_in_8_bits() -> None:
    task = get_task("superres", {"scale": 2})
    clean = torch.rand(3, 17, 21, generator=torch.Generator().manual_seed(0))
    low, high = task.make_pair(clean, {"scale": 2}, torch.Generator())
    assert torch.equal(high, clean[:, :16, :20])  # cropped to a multiple of the scale
    assert low.shape == (3, 8, 10)
    assert torch.equal(low * 255, (low * 255).round()) and low.min() >= 0 and low.max() <= 1
    assert (low - imresize(high, 0.5)).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_scale_comes_from_the_options(scale: int) -> None:
    task = get_task("superres", {"scale": scale})
    assert task.scale == scale
    defaults = task.default_config()
    assert defaults["generator"]["upscale"] == scale and defaults["task_options"]["scale"] == scale
    low, high = task.make_pair(torch.rand(3, 24, 24), {"scale": scale}, torch.Generator())
    assert high.shape[-1] == low.shape[-1] * scale == 24


def test_default_scale_is_4_and_others_are_refused() -> None:
    assert get_task("superres").scale == 4
    with pytest.raises(ValueError, match=r"scale must be one of \(2, 3, 4\), not 5"):
        get_task("superres", {"scale": 5})
    with pytest.raises(ValueError, match="unknown mode 'real'"):
        get_task("superres").make_pair(torch.rand(3, 8, 8), {"mode": "real"}, torch.Generator())


def test_training_crops_are_scale_times_the_input_crop() -> None:
    images = [torch.rand(3, 40, 40)]
    pairs = DegradedPairs(images, get_task("superres", {"scale": 3}), {"scale": 3}, crop=8, seed=0)
    low, high = pairs[5]
    assert low.shape == (3, 8, 8) and high.shape == (3, 24, 24)


def test_scale_option_sets_the_generator_upscale() -> None:
    config = resolve_config("superres", None, {"task_options": {"scale": 3}})
    assert config.generator["upscale"] == 3 and config.generator["arch"] == "unet"
    assert config.generator["residual"] is True and config.loss.reconstruction == "l1"


def test_trainer_refuses_a_generator_of_another_scale(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config("superres", clean_images, steps=1, task_options={"scale": 2}, generator={"upscale": 4})
    with pytest.raises(ValueError, match="makes x2 pairs but generator.upscale is 4"):
        Trainer(config, tmp_path / "run", progress=False)

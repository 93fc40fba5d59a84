"""The super-resolution task: MATLAB-bicubic pairs, and a scale that follows its options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restore.engine.data import DegradedPairs
from restore.metrics.imresize import imresize
from restore.tasks import get_task
from restore.tasks.superres import SuperResOptions
from restore.training import build_trainer, resolve_config


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
    with pytest.raises(ValueError, match=r"scale must be one of \(2, 3, 4, 8\), not 5"):
        get_task("superres", {"scale": 5})
    with pytest.raises(ValueError, match="unknown mode 'blurry'"):
        get_task("superres").make_pair(torch.rand(3, 8, 8), {"mode": "blurry"}, torch.Generator())


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
        build_trainer(config, tmp_path / "run", progress=False)


def test_real_mode_pairs_are_reproducible_from_the_sample_generator() -> None:
    options = {"scale": 4, "mode": "real"}
    task = get_task("superres", options)
    clean = torch.rand(3, 66, 70, generator=torch.Generator().manual_seed(0))
    low, high = task.make_pair(clean, options, torch.Generator().manual_seed(3))
    assert high.shape == (3, 64, 68) and low.shape == (3, 16, 17)
    again, _ = task.make_pair(clean, options, torch.Generator().manual_seed(3))
    other, _ = task.make_pair(clean, options, torch.Generator().manual_seed(4))
    assert torch.equal(low, again) and not torch.equal(low, other)
    bicubic, _ = task.make_pair(clean, {"scale": 4}, torch.Generator().manual_seed(3))
    assert not torch.equal(low, bicubic)
    gentle = {**options, "real": {"final_sinc_prob": 0.0, "first": {"jpeg_range": [95, 95]}}}
    assert task.make_pair(clean, gentle, torch.Generator().manual_seed(3))[0].shape == low.shape
    with pytest.raises(ValueError, match=r"unknown setting real\.'fist'"):
        task.make_pair(clean, {**options, "real": {"fist": {}}}, torch.Generator())


def test_real_mode_trains_with_the_multiscale_patchgan(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config(
        "superres", clean_images, steps=2, task_options={"scale": 2, "mode": "real"},
        discriminator={"arch": "multiscale_patch", "base_channels": 4, "n_layers": 2, "norm": "none",
                       "spectral_norm": True, "num_scales": 2},
        loss={"adversarial_weight": 0.1, "feature_matching_weight": 1.0},
    )
    trainer = build_trainer(config, tmp_path / "run", progress=False)
    trainer.fit()
    assert trainer.step == 2 and set(trainer.objective.networks) == {"G", "D"}


def test_sample_grids_hold_validation_images_of_different_sizes(tmp_path: Path, tiny_config) -> None:
    from conftest import write_images

    folder = tmp_path / "mixed"
    write_images(folder, 4, 32, 32, seed=1)
    write_images(folder / "z_held_out", 1, 24, 40, seed=2)  # last in path order: validated
    config = tiny_config("superres", folder, steps=10, task_options={"scale": 2}, data={"val_holdout": 2})
    build_trainer(config, tmp_path / "run", progress=False).fit()
    assert (tmp_path / "run" / "samples" / "step_0000010.png").is_file()


@pytest.mark.parametrize(("options", "name"), [
    ({}, "superres-x4"), ({"scale": 2}, "superres-x2"), ({"scale": 4, "model": "real"}, "superres-x4-real"),
])
def test_default_weights_follow_scale_and_model(options: dict, name: str) -> None:
    task = get_task("superres", options)
    assert task.default_weights(3) == task.default_weights(1) == [name]


def test_unknown_model_is_refused_when_the_task_is_built() -> None:
    with pytest.raises(ValueError, match="unknown model 'gan'"):
        get_task("superres", {"model": "gan"})


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_outscale_resizes_the_output_from_the_input_size(dtype) -> None:
    task = get_task("superres")
    image = np.zeros((10, 15, 3), dtype)
    output = np.full((40, 60, 3), np.iinfo(dtype).max if dtype != np.float32 else 1.0, dtype)
    assert task.postprocess(output, image, SuperResOptions()) is output
    assert task.postprocess(output, image, SuperResOptions(outscale=4)) is output
    larger = task.postprocess(output, image, SuperResOptions(outscale=5.5))
    assert larger.shape == (55, 82, 3) and larger.dtype == dtype
    assert np.allclose(larger.astype(float), float(output.flat[0]), rtol=1e-6)  # flat stays flat, no overshoot
    smaller = task.postprocess(output[:, :, :1], image[:, :, :1], SuperResOptions(outscale=1.5))
    assert smaller.shape == (15, 22, 1)
    with pytest.raises(ValueError, match="leaves no pixel"):
        task.postprocess(output, image, SuperResOptions(outscale=0.01))


def test_outscale_averages_when_shrinking() -> None:
    checker = np.indices((40, 40)).sum(axis=0) % 2 * 255  # finest detail: aliases if subsampled
    output = np.repeat(checker.astype(np.uint8)[:, :, None], 3, axis=2)
    shrunk = get_task("superres").postprocess(output, np.zeros((20, 20, 3), np.uint8), SuperResOptions(outscale=1))
    assert shrunk.shape == (20, 20, 3) and np.all(np.abs(shrunk.astype(int) - 128) <= 1)

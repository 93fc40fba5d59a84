"""The training loop: run-folder outputs, bit-exact resume in every layout, divergence
detection, learning-rate schedules and config handling. All runs are tiny CPU runs
(see ``conftest.py``)."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import threading
import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from restore.engine.checkpoint import load_training_state
from restore.engine.config import ConfigError, OptimConfig, TrainConfig, from_dict, load_toml, to_toml
from restore.engine.train import Trainer, TrainingDiverged, TrainingStalled, lr_factor
from restore.nets import parse_network_spec
from restore.training import build_trainer, resolve_config
from restore.weights import load_weights

from conftest import TINY_UNET


def train(config: TrainConfig, run_dir: Path, resume: bool = False) -> Trainer:
    trainer = build_trainer(config, run_dir, resume=resume, progress=False)
    trainer.fit()
    return trainer


def assert_identical(left: Any, right: Any, where: str = "state") -> None:
    """Nested checkpoint contents equal to the bit (tensors by ``torch.equal``)."""
    if isinstance(left, torch.Tensor):
        assert isinstance(right, torch.Tensor) and left.dtype == right.dtype, where
        assert torch.equal(left, right), f"{where} differs"
    elif isinstance(left, dict):
        assert isinstance(right, dict) and left.keys() == right.keys(), f"{where}: keys differ"
        for key in left:
            assert_identical(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, (list, tuple)):
        assert isinstance(right, (list, tuple)) and len(left) == len(right), f"{where}: lengths differ"
        for index, (a, b) in enumerate(zip(left, right)):
            assert_identical(a, b, f"{where}[{index}]")
    else:
        assert left == right, f"{where}: {left!r} != {right!r}"


def as_a_new_process(entropy: int) -> None:
    """Give the global numpy and Python RNGs the arbitrary state a fresh process starts
    with (each run of ``restore train`` is one): in one test process they would otherwise
    carry over from run to run and hide a run that leaves them unseeded."""
    np.random.seed(entropy)
    random.seed(entropy)


def assert_resume_is_exact(config: TrainConfig, tmp_path: Path, steps: int) -> dict[str, Any]:
    """``2 * steps`` in one run and ``steps`` + resume to ``2 * steps``, each in its own
    (simulated) process, end in identical networks, EMA, optimiser, objective (image
    pools) and RNG states, global numpy and Python included; returns that state."""
    as_a_new_process(1)
    train(dataclasses.replace(config, steps=2 * steps), tmp_path / "straight")
    as_a_new_process(2)
    train(dataclasses.replace(config, steps=steps), tmp_path / "resumed")
    halfway = load_training_state(tmp_path / "resumed" / "last.pt")
    assert halfway["step"] == steps
    as_a_new_process(3)
    resumed = train(dataclasses.replace(config, steps=2 * steps), tmp_path / "resumed", resume=True)
    assert resumed.step == 2 * steps
    straight = load_training_state(tmp_path / "straight" / "last.pt")
    final = load_training_state(tmp_path / "resumed" / "last.pt")
    assert final["step"] == straight["step"] == 2 * steps
    for key in ("networks", "optimizers", "ema", "scaler", "objective", "rng"):
        assert_identical(straight[key], final[key], key)
    # the resumed half did train: otherwise equality would prove nothing
    assert not all(
        torch.equal(halfway["networks"][name][key], final["networks"][name][key])
        for name in final["networks"]
        for key in final["networks"][name]
    )
    return final


TINY_PATCH = {"arch": "patch", "base_channels": 4, "n_layers": 2}


# -- run folder ------------------------------------------------------------------------


def test_run_folder_has_every_output(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    run = tmp_path / "run"
    config = tiny_config("denoise", clean_images, steps=20)
    threads = set(threading.enumerate())
    trainer = train(config, run)
    assert trainer.step == 20
    assert set(threading.enumerate()) <= threads, "fit() left a thread running (TensorBoard's writer)"
    assert from_dict(load_toml(run / "config.toml")) == config
    assert load_training_state(run / "last.pt")["step"] == 20
    for name in ("best", "last"):
        weights, metadata = load_weights(run / f"{name}.safetensors")
        assert metadata["task"] == "denoise"
        assert parse_network_spec(metadata["network"]) == parse_network_spec(config.generator)
        assert weights.keys() == trainer.inference_network().state_dict().keys()
    _, last_metadata = load_weights(run / "last.safetensors")
    assert last_metadata["step"] == 20
    assert sorted(path.name for path in (run / "samples").glob("*.png")) == ["step_0000010.png", "step_0000020.png"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [10, 20]
    assert all(math.isfinite(line["psnr"]) and 0 < line["ssim"] <= 1 for line in lines)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert logged_scalars(run / "tensorboard", "loss/G") == [5, 10, 15, 20]


def logged_scalars(folder: Path, tag: str) -> list[int]:
    """Steps at which ``tag`` reached the event file on disk."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return [event.step for event in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


# -- bit-exact resume --------------------------------------------------------------------


def test_denoise_resume_is_bit_exact(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config("denoise", clean_images, steps=0, log={"checkpoint_every": 4, "val_every": 3})
    assert_resume_is_exact(config, tmp_path, steps=5)


def test_superres_resume_is_bit_exact(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config("superres", clean_images, steps=0, task_options={"scale": 2}, data={"crop": 8})
    assert config.generator["upscale"] == 2  # resolved from the task's scale
    assert_resume_is_exact(config, tmp_path, steps=4)


def test_training_from_s3_equals_the_local_folder(clean_images: Path, tmp_path: Path, tiny_config, s3,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """--data s3://... (moto's S3 server) trains on a cached copy: the same weights as from
    the local folder; a second run downloads nothing again, a changed object again."""
    monkeypatch.setenv("RESTORE_CACHE", str(tmp_path / "cache"))
    s3.upload(clean_images, "photos")
    url = s3.url("photos")
    local = train(tiny_config("denoise", clean_images, steps=4), tmp_path / "local")
    remote = train(tiny_config("denoise", url, steps=4), tmp_path / "remote")
    assert_identical(remote.inference_network().state_dict(), local.inference_network().state_dict())
    copies = sorted((tmp_path / "cache" / "data").rglob("*.png"))
    assert [path.name for path in copies] == sorted(path.name for path in clean_images.iterdir())
    stamps = {path: path.stat().st_mtime_ns for path in copies}
    changed = copies[0]
    s3.client.put_object(Bucket=s3.name, Key=f"photos/{changed.name}", Body=(clean_images / copies[1].name).read_bytes())
    train(tiny_config("denoise", url, steps=4), tmp_path / "again")
    assert {path: path.stat().st_mtime_ns for path in copies if path != changed} == {
        path: stamp for path, stamp in stamps.items() if path != changed}
    assert changed.read_bytes() == (clean_images / copies[1].name).read_bytes()
    with pytest.raises(ValueError, match=f"--data {url}-missing: no files under it"):
        train(tiny_config("denoise", url + "-missing", steps=4), tmp_path / "missing")


def test_resume_needs_a_run(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        build_trainer(tiny_config("denoise", clean_images, steps=2), tmp_path / "empty", resume=True)


def test_init_weights_start_the_generator_from_a_file(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    train(tiny_config("denoise", clean_images, steps=3), tmp_path / "first")
    trained, _ = load_weights(tmp_path / "first" / "last.safetensors")
    config = tiny_config("denoise", clean_images, steps=1, init_weights=str(tmp_path / "first" / "last.safetensors"))
    started = build_trainer(config, tmp_path / "second", progress=False).objective.networks["G"].state_dict()
    assert all(torch.equal(started[key], trained[key].float()) for key in trained)
    fresh = build_trainer(tiny_config("denoise", clean_images, steps=1), tmp_path / "third", progress=False)
    assert not all(torch.equal(fresh.objective.networks["G"].state_dict()[key], trained[key].float()) for key in trained)
    wider = tiny_config("denoise", clean_images, steps=1, init_weights=config.init_weights,
                        generator={"base_channels": 2 * config.generator["base_channels"]})
    with pytest.raises(ValueError, match="do not fit"):
        build_trainer(wider, tmp_path / "fourth", progress=False)


def test_a_resize_convolution_run_starts_from_a_transposed_one(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    """The U-Net's adapt_state_dict is applied to init_weights (inpaint stage 3 starts so)."""
    train(tiny_config("denoise", clean_images, steps=2), tmp_path / "transposed")
    path = tmp_path / "transposed" / "last.safetensors"
    trained, _ = load_weights(path)
    config = tiny_config("denoise", clean_images, steps=1, init_weights=str(path),
                         generator={**TINY_UNET, "decoder_upsample": "resize"})
    started = build_trainer(config, tmp_path / "resize", progress=False).objective.networks["G"].state_dict()
    assert started["up.0.0.weight"].shape[-2:] == (3, 3) and trained["up.0.0.weight"].shape[-2:] == (4, 4)
    assert all(torch.equal(started[key], trained[key].float()) for key in trained if not key.startswith("up."))



def test_partial_init_takes_the_matching_tensors_of_another_scale(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    x2 = {**TINY_UNET, "upscale": 2}
    train(tiny_config("superres", clean_images, steps=1, task_options={"scale": 2}, generator=x2), tmp_path / "x2")
    source, _ = load_weights(tmp_path / "x2" / "last.safetensors")
    x4 = tiny_config("superres", clean_images, steps=1, task_options={"scale": 4}, generator={**TINY_UNET, "upscale": 4},
                     init_weights=str(tmp_path / "x2" / "last.safetensors"))
    with pytest.raises(ValueError, match="init_strict = false"):
        build_trainer(x4, tmp_path / "strict", progress=False)
    x4.init_strict = False
    started = build_trainer(x4, tmp_path / "x4", progress=False).objective.networks["G"].state_dict()
    shared = [key for key in started if key in source and source[key].shape == started[key].shape]
    assert all(torch.equal(started[key], source[key].float()) for key in shared)
    assert "tail.3.weight" not in shared and "tail.0.weight" in shared  # x2's last conv is x4's second upsampler

# -- divergence ----------------------------------------------------------------------------


def test_divergence_stops_and_keeps_the_last_checkpoint(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    run = tmp_path / "run"
    config = tiny_config(
        "denoise", clean_images, steps=20, optim={"lr_g": 1e30, "ema_decay": 0.0}, log={"checkpoint_every": 1}
    )
    with pytest.raises(TrainingDiverged, match="not finite") as raised:
        train(config, run)
    state = load_training_state(run / "last.pt")
    assert f"step {state['step']}:" in str(raised.value)  # the checkpoint is the step before
    assert all(torch.isfinite(tensor).all() for tensor in state["networks"]["G"].values())
    resumed = build_trainer(config, run, resume=True, progress=False)
    assert resumed.step == state["step"]


def test_a_frozen_validation_psnr_warns(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    # a learning rate of ~0 leaves the output unchanged, as a dead layer does
    frozen = tiny_config("denoise", clean_images, steps=4, optim={"lr_g": 1e-30, "ema_decay": 0.0}, log={"val_every": 1})
    with pytest.warns(TrainingStalled, match="stopped changing"):
        train(frozen, tmp_path / "frozen")


def test_a_learning_run_does_not_warn(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    learning = tiny_config("denoise", clean_images, steps=4, optim={"ema_decay": 0.0}, log={"val_every": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingStalled)
        train(learning, tmp_path / "learning")
    assert len((tmp_path / "learning" / "metrics.jsonl").read_text().splitlines()) == 4


# -- learning-rate schedules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"schedule": "constant"}, {0: 1.0, 50: 1.0, 99: 1.0}),
        # pix2pix: constant for the first half, then linear to the floor
        ({"schedule": "linear", "decay_start": 0.5}, {0: 1.0, 49: 1.0, 50: 1.0, 75: 0.5, 99: 0.02}),
        ({"schedule": "linear", "decay_start": 0.0, "min_lr_ratio": 0.5}, {0: 1.0, 50: 0.75, 100: 0.5}),
        ({"schedule": "cosine"}, {0: 1.0, 50: 0.5, 100: 0.0}),
        ({"schedule": "cosine", "min_lr_ratio": 0.2}, {0: 1.0, 50: 0.6, 100: 0.2}),
        ({"schedule": "step", "step_every": 30, "step_gamma": 0.1}, {0: 1.0, 29: 1.0, 30: 0.1, 60: 0.01, 99: 0.001}),
        # warm-up ramps linearly to the full rate, then the schedule starts from there
        ({"schedule": "constant", "warmup_steps": 10}, {0: 0.1, 4: 0.5, 9: 1.0, 10: 1.0}),
        ({"schedule": "cosine", "warmup_steps": 20}, {0: 0.05, 19: 1.0, 20: 1.0, 60: 0.5, 100: 0.0}),
    ],
)
def test_lr_factor(settings: dict[str, Any], expected: dict[int, float]) -> None:
    optim = dataclasses.replace(OptimConfig(), **settings)
    for step, factor in expected.items():
        assert lr_factor(optim, step, total_steps=100) == pytest.approx(factor, abs=1e-12), step


def test_lr_factor_rejects_bad_schedules() -> None:
    with pytest.raises(ValueError, match="step_every"):
        lr_factor(OptimConfig(schedule="step"), 0, 100)
    with pytest.raises(ValueError, match="unknown lr schedule 'exponential'"):
        lr_factor(OptimConfig(schedule="exponential"), 0, 100)


def test_trainer_applies_the_schedule(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config("denoise", clean_images, steps=4, optim={"schedule": "step", "step_every": 2, "step_gamma": 0.5})
    trainer = train(config, tmp_path / "run")
    # the rate of the last step taken (step 3): 0.5 ** (3 // 2)
    assert trainer.objective.optimizers["G"].param_groups[0]["lr"] == pytest.approx(config.optim.lr_g * 0.5)


# -- pix2pix (aligned) and CycleGAN (unaligned) -------------------------------------------------


def test_pix2pix_aligned_trains_and_resumes_exactly(aligned_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config(
        "denoise",  # the task only matters for the clean layout; aligned data brings its own pairs
        aligned_images,
        steps=0,
        generator={"arch": "pix2pix_unet", "base_channels": 4, "num_downs": 5},
        discriminator={**TINY_PATCH, "in_channels": 6},  # conditional: sees input | output
        data={"layout": "aligned", "crop": 32},
        loss={"gan": "vanilla", "adversarial_weight": 1.0, "reconstruction_weight": 100.0},
    )
    final = assert_resume_is_exact(config, tmp_path, steps=3)
    assert set(final["networks"]) == {"G", "D"}
    assert (tmp_path / "straight" / "samples").is_dir()  # aligned pairs are validated too


def test_cyclegan_unaligned_trains_and_resumes_exactly(unaligned_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config(
        "denoise",
        unaligned_images,
        steps=0,
        generator={"arch": "resnet", "base_channels": 4, "n_blocks": 1},
        discriminator=TINY_PATCH,
        data={"layout": "unaligned", "val_holdout": 0},
        loss={"pool_size": 3},  # smaller than the images seen, so resuming must restore it
    )
    final = assert_resume_is_exact(config, tmp_path, steps=3)
    assert set(final["networks"]) == {"G_A", "G_B", "D_A", "D_B"}
    assert final["objective"]["A"]["images"].shape[0] == 3
    for name in ("last_A", "last_B"):  # each direction exported for inference
        _, metadata = load_weights(tmp_path / "straight" / f"{name}.safetensors")
        assert metadata["network"]["arch"] == "resnet"


# -- configuration ---------------------------------------------------------------------------


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'stpes'"):
        from_dict({"stpes": 10})
    with pytest.raises(ConfigError, match=r"optim\.'lr_gen'"):
        from_dict({"optim": {"lr_gen": 1e-3}})
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('task = "denoise"\n[data]\ncorp = 64\n')
    with pytest.raises(ConfigError, match=r"data\.'corp'"):
        resolve_config("denoise", str(recipe), {})


def test_config_toml_round_trips(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config(
        "superres",
        clean_images,
        steps=2,
        task_options={"scale": 3},
        data={"crop": 8},
        optim={"schedule": "cosine", "betas_g": [0.5, 0.99]},
        discriminator={"arch": "patch", "init": {"type": "xavier", "gain": 0.5}},  # nested table
    )
    assert from_dict(tomllib.loads(to_toml(config))) == config
    train(config, tmp_path / "run")
    assert from_dict(load_toml(tmp_path / "run" / "config.toml")) == config


def test_recipe_and_flags_override_task_defaults(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('task = "superres"\nsteps = 7\n[task_options]\nscale = 2\n[generator]\nbase_channels = 16\n')
    config = resolve_config("superres", str(recipe), {"optim": {"lr_g": 1e-3}})
    assert (config.steps, config.optim.lr_g, config.task_options["scale"]) == (7, 1e-3, 2)
    assert config.generator["upscale"] == 2 and config.generator["base_channels"] == 16
    assert config.generator["depth"] == 2  # task default kept where the recipe is silent
    # a recipe naming another arch replaces the default network instead of mixing fields
    recipe.write_text('[generator]\narch = "resnet"\nn_blocks = 6\n')
    assert resolve_config("superres", str(recipe), {}).generator == {"arch": "resnet", "n_blocks": 6}
    recipe.write_text('task = "denoise"\n')
    with pytest.raises(ValueError, match="recipe for 'denoise'"):
        resolve_config("superres", str(recipe), {})

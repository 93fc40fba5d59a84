"""Training configuration: typed sections, TOML in and out, CLI overrides.

Resolution order, later wins: dataclass defaults < the task's defaults < the recipe/config
TOML < CLI flags. The resolved config is written to ``RUN_DIR/config.toml`` so a run
can always be reproduced from its own folder.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from restore.schema import check_field


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=list)  # folders of training images
    val: str = ""  # held-out folder; empty = no validation (or see val_holdout)
    val_holdout: int = 0  # without a val folder: hold out the last N training images for it
    layout: str = "clean"  # clean (task degrades) | aligned (A|B) | unaligned (trainA/trainB)
    direction: str = "AtoB"  # for aligned/unaligned layouts
    crop: int = 64
    load_size: int = 0  # aligned/unaligned: resize to this square before cropping (pix2pix: 286); 0 = as is
    batch_size: int = 16
    workers: int = 2
    val_images: int = 8  # at most this many validation images, for speed


@dataclass
class LossConfig:
    reconstruction: str = "l1"  # l1 | charbonnier | mse
    reconstruction_weight: float = 1.0
    ssim_weight: float = 0.0
    gan: str = "lsgan"  # vanilla | lsgan | hinge | wgangp
    adversarial_weight: float = 0.0  # 0 = pure reconstruction (PSNR) model
    feature_matching_weight: float = 0.0
    gradient_penalty_weight: float = 10.0  # wgangp
    r1_weight: float = 0.0
    label_smoothing: float = 0.0  # real label 1 - smoothing for the discriminator
    perceptual_weight: float = 0.0
    vgg_weights: str = ""  # a VGG19 file the user supplies; never downloaded
    cycle_weight: float = 10.0  # unpaired (CycleGAN)
    identity_weight: float = 0.5  # unpaired, relative to cycle_weight as in CycleGAN
    pool_size: int = 50  # unpaired image history buffer


@dataclass
class OptimConfig:
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas_g: list[float] = field(default_factory=lambda: [0.9, 0.999])
    betas_d: list[float] = field(default_factory=lambda: [0.5, 0.999])
    schedule: str = "constant"  # constant | linear | cosine | step
    decay_start: float = 0.5  # linear: fraction of steps before decay begins (pix2pix)
    step_every: int = 0  # step schedule: steps between decays
    step_gamma: float = 0.5
    min_lr_ratio: float = 0.0  # cosine/linear floor as a fraction of the start lr
    warmup_steps: int = 0
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    ema_decay: float = 0.999  # 0 = no EMA


@dataclass
class LogConfig:
    log_every: int = 50
    val_every: int = 1000
    checkpoint_every: int = 500
    sample_every: int = 1000
    tensorboard: bool = True


@dataclass
class TrainConfig:
    task: str = ""
    steps: int = 10000
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16
    channels_last: bool = True
    # a weights file (restore .safetensors, or a .pt/.pth of tensors) the generator starts
    # from instead of its random init: fine-tuning, e.g. superres-x4-real from superres-x4
    init_weights: str = ""
    # false: take only the tensors whose name and shape match (the rest keep their random
    # init), e.g. a x4 super-resolution run from x2 weights, whose upsampling tails differ
    init_strict: bool = True
    task_options: dict[str, Any] = field(default_factory=dict)  # the task's degradation knobs
    generator: dict[str, Any] = field(default_factory=dict)  # network spec, see restore.nets
    discriminator: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)


# settings whose smallest sensible value is above 0 (check_field already refuses negatives)
MINIMUMS: dict[type, dict[str, int]] = {
    DataConfig: {"crop": 8, "batch_size": 1, "val_images": 1},
}


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def merge_into(config: Any, updates: dict[str, Any], where: str = "") -> Any:
    """Return a copy of dataclass ``config`` with ``updates`` (nested dicts) applied.

    Unknown keys raise :class:`ConfigError` naming the key: a misspelt recipe key must not
    silently train with the default."""
    changes: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(config)}
    for key, value in updates.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {where}{key!r}; known: {', '.join(fields)}")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key} must be a table")
            changes[key] = merge_into(current, value, f"{where}{key}.")
        else:
            try:
                check_field(type(config), key, value, where)
            except ValueError as error:
                raise ConfigError(str(error)) from None
            if isinstance(current, dict):
                # a network spec naming another arch replaces the old one: the old arch's
                # fields (depth, upscale...) would be unknown settings of the new one
                replaced = "arch" in value and value["arch"] != current.get("arch")
                changes[key] = dict(value) if replaced else {**current, **value}
            else:
                changes[key] = tuple(value) if isinstance(current, tuple) else value  # TOML has lists only
    for key, minimum in MINIMUMS.get(type(config), {}).items():
        value = changes.get(key)
        if value is not None and value < minimum:
            raise ConfigError(f"{where}{key} must be at least {minimum}, not {value!r}")
    return dataclasses.replace(config, **changes)


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from error


def to_toml(config: TrainConfig) -> str:
    return tomli_w.dumps(_drop_empty(dataclasses.asdict(config)))


def from_dict(data: dict[str, Any]) -> TrainConfig:
    return merge_into(TrainConfig(), data)


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null; leave out empty tables so the output stays loadable."""
    return {k: _drop_empty(v) if isinstance(v, dict) else v for k, v in data.items() if v != {}}

"""Shared fixtures: tiny image folders in every training layout, and tiny run configs.

Everything is small enough to train a few steps on two CPU cores in about a second:
8 images of 32x32, networks of 4-8 channels, no loader workers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from restore.engine.config import TrainConfig
from restore.training import resolve_config

# Tiny tensors gain nothing from intra-op threads, and on a busy machine (two cores, a
# training job beside the tests) the threads' barriers make each op up to 100x slower.
torch.set_num_threads(1)

# the s3_endpoint and s3 fixtures (moto's S3 server)
pytest_plugins = ["s3_server"]

IMAGE_SIZE = 32
IMAGE_COUNT = 8


def write_images(folder: Path, count: int, height: int, width: int, seed: int) -> Path:
    """``count`` smooth random RGB PNGs (blurred noise, so networks have structure to learn)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        noise = rng.random((height, width, 3)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
        smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min() + 1e-6)
        cv2.imwrite(str(folder / f"{index:03d}.png"), (smooth * 255).round().astype(np.uint8))
    return folder


@pytest.fixture
def clean_images(tmp_path: Path) -> Path:
    """The ``clean`` layout: a folder of 8 images of 32x32."""
    return write_images(tmp_path / "clean", IMAGE_COUNT, IMAGE_SIZE, IMAGE_SIZE, seed=1)


@pytest.fixture
def aligned_images(tmp_path: Path) -> Path:
    """pix2pix's ``aligned`` layout: 8 images of 36x72, A on the left, B on the right; 36
    is no power of two, so validation must crop to what the generator accepts."""
    return write_images(tmp_path / "aligned", IMAGE_COUNT, IMAGE_SIZE + 4, 2 * IMAGE_SIZE + 8, seed=2)


@pytest.fixture
def unaligned_images(tmp_path: Path) -> Path:
    """CycleGAN's ``unaligned`` layout: ``trainA/`` (8 images) and ``trainB/`` (6)."""
    root = tmp_path / "unaligned"
    write_images(root / "trainA", IMAGE_COUNT, IMAGE_SIZE, IMAGE_SIZE, seed=3)
    write_images(root / "trainB", IMAGE_COUNT - 2, IMAGE_SIZE, IMAGE_SIZE, seed=4)
    return root


TINY_UNET = {"base_channels": 4, "max_channels": 8, "depth": 2, "blocks_per_level": 1}
TINY_LOG = {"log_every": 5, "val_every": 10, "checkpoint_every": 10, "sample_every": 10}
TINY_DATA = {"val_holdout": 2, "crop": 16, "batch_size": 2, "workers": 0, "val_images": 2}


def tiny_config(task: str, data_folder: Path, steps: int, **sections: Any) -> TrainConfig:
    """A tiny CPU run of ``task`` on ``data_folder``, resolved as the CLI does (task
    defaults, then these updates). ``sections`` update tables key by key
    (``optim={"lr_g": 1.0}``), replace the network spec when they name an ``arch``, or set
    top-level keys (``seed=3``)."""
    overrides: dict[str, Any] = {
        "steps": steps,
        "device": "cpu",
        "generator": dict(TINY_UNET),
        "data": {"train": [str(data_folder)], **TINY_DATA},
        "optim": {"ema_decay": 0.9},
        "log": dict(TINY_LOG),
    }
    for key, value in sections.items():
        merge = isinstance(overrides.get(key), dict) and not (isinstance(value, dict) and "arch" in value)
        overrides[key] = {**overrides[key], **value} if merge else value
    return resolve_config(task, None, overrides)


@pytest.fixture(name="tiny_config")
def tiny_config_fixture() -> Callable[..., TrainConfig]:
    """:func:`tiny_config`, for tests (pytest shares conftest helpers through fixtures)."""
    return tiny_config


@pytest.fixture
def mixed_tree(tmp_path: Path) -> Path:
    """The foundation check's nested folder: 8-bit RGB, 16-bit grey, RGBA and JPEG images,
    a corrupt PNG and a text file (the two failures), plus a hidden file that is no input."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "rgb.png"), rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "sub" / "grey16.png"), rng.integers(0, 65536, (20, 20), dtype=np.uint16))
    cv2.imwrite(str(root / "sub" / "deeper" / "rgba.png"), rng.integers(0, 256, (16, 24, 4), dtype=np.uint8))
    cv2.imwrite(str(root / "sub" / "photo.jpg"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    good = (root / "rgb.png").read_bytes()
    (root / "sub" / "corrupt.png").write_bytes(good[:60])
    (root / "sub" / "readme.txt").write_text("hello")
    (root / ".hidden.png").write_bytes(good)
    return root

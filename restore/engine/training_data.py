"""A run's training data: its files read through the task, as the dataset of its layout,
behind a loader that continues the exact sample sequence on resume."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol

import torch
from torch.utils.data import DataLoader, Dataset

from restore.engine.config import TrainConfig
from restore.engine.data import (
    IMAGE_SUFFIXES,
    AlignedPairs,
    DegradedPairs,
    PairMaker,
    StepSampler,
    UnalignedPairs,
    list_images,
)
from restore.io.image import ImageReadError
from restore.io.medical import MedicalReadError
from restore.io.storage import is_url


class TrainingTask(PairMaker, Protocol):
    """What the trainer needs of a task (a :class:`restore.tasks.base.Task` is one), handed
    in by the caller that resolved it."""

    training_suffixes: tuple[str, ...]  # suffixes of its training files; empty: images

    def training_images(self, path: Path, channels: int) -> list[torch.Tensor]:
        """The ``(C, H, W)`` [0, 1] images one training file holds."""
        ...


class TrainingFiles:
    """The run's training and held-out files, read through the task."""

    def __init__(self, config: TrainConfig, task: TrainingTask, warn: bool) -> None:
        """``warn``: print a warning for each file that cannot be read (rank 0 only, so a
        distributed run warns once)."""
        self.config, self.task, self.warn = config, task, warn
        self.skipped: set[Path] = set()  # files that could not be read
        self.suffixes = task.training_suffixes or IMAGE_SUFFIXES
        # the folders read: a storage URL (s3://...) through its local copy in the cache
        self.train = [local_folder(folder) for folder in config.data.train]
        self.val = local_folder(config.data.val) if config.data.val else ""

    def load(self, folders: list[str], held_out: bool = False) -> list[torch.Tensor]:
        """Every image in ``folders`` (or with ``held_out`` the validation images)."""
        paths = self.paths(folders, held_out)
        images = [image for path in paths for image in self.read(path)]
        if not images:
            raise ValueError(f"none of the {len(paths)} {'validation' if held_out else 'training'} files "
                             f"in {', '.join(folders)} could be read (see the warnings above)")
        return images

    def read(self, path: Path) -> list[torch.Tensor]:
        """The images one training file holds; a file that cannot be read (corrupt,
        truncated, not an image) is skipped with a warning naming it, as one bad photo
        among thousands should not stop a run (the batch commands skip it the same way)."""
        try:
            return self.task.training_images(path, self.config.generator.get("in_channels", 3))
        except (ImageReadError, MedicalReadError, OSError) as error:
            if self.warn and path not in self.skipped:
                self.skipped.add(path)
                reason = str(error) if str(path) in str(error) else f"{path}: {error}"
                print(f"warning: skipped a training file that cannot be read: {reason}", file=sys.stderr)
            return []

    def paths(self, folders: list[str], held_out: bool = False) -> list[Path]:
        """Training images, or with ``held_out`` the validation images; ``val_holdout``
        moves the last N training images (in path order) from the first list to the second."""
        data = self.config.data
        if held_out and self.val:
            return list_images(self.val, self.suffixes)
        paths = [path for folder in folders for path in list_images(folder, self.suffixes)]
        holdout = 0 if data.val else data.val_holdout
        if holdout >= len(paths):
            raise ValueError(f"val_holdout={holdout} leaves no training images out of {len(paths)}")
        return paths[len(paths) - holdout :] if held_out else paths[: len(paths) - holdout]


def local_folder(folder: str) -> str:
    """``folder``, or for a storage URL its local copy, brought up to date (restore.io.mirror)."""
    if not is_url(folder):
        return folder
    from restore.engine.backends import cache_dir
    from restore.io.mirror import local_mirror

    return str(local_mirror(folder, cache_dir() / "data"))


def training_dataset(files: TrainingFiles) -> Dataset:
    """The dataset of the run's layout: degraded clean images, A|B pairs or two domains."""
    config = files.config
    data = config.data
    if not files.train:
        raise ValueError("no training data: give --data DIR or data.train in the config")
    if data.layout == "clean":
        return DegradedPairs(files.load(files.train), files.task, config.task_options, data.crop, config.seed)
    if data.layout == "aligned":
        return AlignedPairs(files.load(files.train), data.crop, config.seed, data.direction, data.load_size)
    if data.layout == "unaligned":
        roots = [Path(folder) for folder in files.train]
        domain_a = files.load([str(root / "trainA") for root in roots])
        domain_b = files.load([str(root / "trainB") for root in roots])
        if data.direction == "BtoA":
            domain_a, domain_b = domain_b, domain_a
        return UnalignedPairs(domain_a, domain_b, data.crop, config.seed, data.load_size)
    raise ValueError(f"unknown data layout {data.layout!r}: clean, aligned or unaligned")


def training_loader(files: TrainingFiles, start_step: int, rank: int, world_size: int) -> DataLoader:
    """Endless batches from ``start_step`` on, this rank's share of each step."""
    config = files.config
    data = config.data
    sampler = StepSampler(data.batch_size, start_step, rank, world_size)
    return DataLoader(
        training_dataset(files),
        batch_size=data.batch_size,
        sampler=sampler,
        # Its own generator: starting an iterator draws a worker seed from the one it
        # has, which from the global RNG would shift the dropout and image-pool draws
        # of a resumed run. Samples never use that seed (see restore.engine.data).
        generator=torch.Generator().manual_seed(config.seed),
        num_workers=data.workers,
        persistent_workers=data.workers > 0,
        prefetch_factor=4 if data.workers > 0 else None,
    )

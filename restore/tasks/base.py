"""What a task is: a degradation, a default network, and pre/post-processing.

Everything else (training loop, tiled inference, I/O, metrics) is shared and lives in
``restore.engine``; a task only says how its training pairs are made and how an image
becomes a network input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.engine.data import load_image_tensor
from restore.engine.tiling import TileReader
from restore.io.image import Image
from restore.schema import options_of


@dataclass(frozen=True)
class TaskOptions:
    """The options of one inference run of a task (``model(image, sigma=25)``, ``restore
    denoise --sigma 25``). Each task declares its own as a subclass (its
    :attr:`Task.options_type`), so a name it does not take is an error, not ignored.

    Not to be confused with the task's ``task_options``, its configuration from training
    (a recipe's table, stored in the weights file), which :class:`Task` is built with."""


@dataclass
class PreparedImage:
    """What a task found for one image before the network runs (see :meth:`Task.prepare`)."""

    image: Image
    options: dict[str, Any] = field(default_factory=dict)  # run options replaced for this image
    info: dict[str, Any] = field(default_factory=dict)  # recorded in report.json
    run: bool = True  # False: the image is written unchanged (``info["warning"]`` says why)


class Task(ABC):
    """A restoration task. Subclasses are small: see ``restore/tasks/denoise.py``."""

    name: str = ""
    scale: int = 1  # output size / input size
    # A grey picture stored as RGB comes out grey (see Restorer.restore_array): restoration
    # must not invent colour; a translation (style) may be meant to.
    keeps_grey: bool = True
    options_type: type[TaskOptions] = TaskOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        """``options`` are the run's ``task_options``. Most tasks read them per sample in
        :meth:`make_pair`; a task whose geometry depends on them (super-resolution's
        scale) reads them here, so the data pipeline and validation, which ask
        :attr:`scale`, see the run's value."""
        del options  # read per sample, in make_pair

    def run_options(self, options: dict[str, Any]) -> TaskOptions:
        """The run options ``options`` name, as :attr:`options_type`; a name it does not
        declare is a TypeError that names it."""
        return options_of(self.options_type, options, self.name)

    @abstractmethod
    def default_config(self) -> dict[str, Any]:
        """TrainConfig updates (network spec, task_options, losses) for this task."""

    def default_config_for(self, layout: str) -> dict[str, Any]:
        """The defaults for training on ``layout`` data (``clean``, ``aligned``,
        ``unaligned``). Restoration tasks train on clean images whatever the layout; style
        transfer trains pix2pix on aligned pairs and CycleGAN on unaligned folders."""
        del layout
        return self.default_config()

    def recognise_weights(
        self, state_dict: dict[str, torch.Tensor], source: str
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Make sense of a plain state dict without restore's metadata (a checkpoint
        published by another project): return the state dict to load and the metadata
        (``task``, ``network`` spec) to build the network from. By default any architecture
        spandrel recognises whose purpose fits the task (:mod:`restore.zoo`)."""
        from restore.zoo.models import community_metadata  # spandrel is slow to import

        return community_metadata(state_dict, source, self.name)

    @abstractmethod
    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Degrade one clean ``(C, H, W)`` crop into ``(network_input, target)``.

        A task may add a third tensor, a per-pixel weight ``(1, H, W)`` of the
        reconstruction loss (inpainting weighs holes more than known pixels).
        Randomness comes only from ``generator`` so pairs are reproducible per sample."""

    # File suffixes of training data (restore.engine.data.list_images); empty: images.
    training_suffixes: tuple[str, ...] = ()

    def training_images(self, path: Path, channels: int) -> list[torch.Tensor]:
        """The ``(C, H, W)`` [0, 1] images one training file holds, which crops are taken
        from. By default the file is one image with ``channels`` channels; a task that
        trains on volumes returns their slices (see ``restore/tasks/medical.py``)."""
        return [load_image_tensor(path, channels)]

    def default_weights(self, channels: int) -> list[str]:
        """Shipped weights names for an image with ``channels`` channels (1 or 3), best
        first; the first one this installation ships is used."""
        del channels
        return []

    # options holding an ``(H, W, ...)`` array or ``(..., H, W)`` tensor aligned with the image
    # (inpainting's mask, a scan's neighbouring slices): cut to each tile with it
    spatial_options: tuple[str, ...] = ()

    def image_options(
        self, read: TileReader, height: int, width: int, options: TaskOptions
    ) -> tuple[TaskOptions, dict[str, Any]]:
        """Decisions made once per image, before its tiles run (e.g. an estimated noise
        level): the options every tile gets, and what to record in report.json. ``read``
        gives any ``(top, bottom, left, right)`` region of the image as a ``(1, C, h, w)``
        [0, 1] tensor; huge images are never whole in float32, so read them in bands.
        The default decides nothing."""
        del read, height, width
        return options, {}

    def inference_input(self, image: torch.Tensor, options: TaskOptions) -> torch.Tensor:
        """Turn an image region ``(1, C, h, w)`` into the network's input, with the options
        from :meth:`image_options` (spatial ones cut to the region). The default is the
        region itself."""
        del options  # tasks without inference options
        return image

    def is_input(self, path: Path, options: TaskOptions) -> bool:
        """Whether a file found under ``--in`` is an image to process; a task whose
        inputs come with sidecar files (inpainting's masks) leaves those out."""
        del path, options
        return True

    def prepare(
        self, image: Image, source: Path | None, relative: Path | None, options: TaskOptions
    ) -> PreparedImage:
        """Per-image inputs found from the image and its file before the network runs
        (inpainting: its mask). ``source`` is the file, ``relative`` its path under
        ``--in``; both are None for images given in memory."""
        del source, relative, options
        return PreparedImage(image)

    def postprocess(self, output: np.ndarray, image: np.ndarray, options: TaskOptions) -> np.ndarray:
        """The final ``(H, W, C)`` output from the network's, at the output dtype, given
        the input ``image`` (same dtype): inpainting puts the known pixels back exactly."""
        del image, options
        return output

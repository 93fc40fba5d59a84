"""What a task is: a degradation, a default network, and pre/post-processing.

Everything else (training loop, tiled inference, I/O, metrics) is shared and lives in
``restore.engine``; a task only says how its training pairs are made and how an image
becomes a network input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from restore.engine.checkpoint import WeightsError


class Task(ABC):
    """A restoration task. Subclasses are small: see ``restore/tasks/denoise.py``."""

    name: str = ""
    scale: int = 1  # output size / input size

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        """``options`` are the run's ``task_options``. Most tasks read them per sample in
        :meth:`make_pair`; a task whose geometry depends on them (super-resolution's
        scale) reads them here, so the data pipeline and validation, which ask
        :attr:`scale`, see the run's value."""
        del options  # read per sample, in make_pair

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
        (``task``, ``network`` spec) to build the network from. By default none is known."""
        del state_dict
        raise WeightsError(f"{source}: no restore metadata (task, network); it was not written by restore")

    @abstractmethod
    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Degrade one clean ``(C, H, W)`` crop into ``(network_input, target)``.

        Randomness comes only from ``generator`` so pairs are reproducible per sample."""

    def default_weights(self, channels: int) -> list[str]:
        """Shipped weights names for an image with ``channels`` channels (1 or 3), best
        first; the first one this installation ships is used."""
        del channels
        return []

    def inference_input(self, image: torch.Tensor, options: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """Turn an image ``(1, C, H, W)`` into the network's input, using the user's options.

        Returns the input and what was decided for this image (recorded in report.json),
        e.g. an estimated noise level. The default is the image itself."""
        del options  # tasks without inference options
        return image, {}


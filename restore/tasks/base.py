"""What a task is: a degradation, a default network, and pre/post-processing.

Everything else (training loop, tiled inference, I/O, metrics) is shared and lives in
``restore.engine``; a task only says how its training pairs are made and how an image
becomes a network input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch


class Task(ABC):
    """A restoration task. Subclasses are small: see ``restore/tasks/denoise.py``."""

    name: str = ""
    scale: int = 1  # output size / input size

    @abstractmethod
    def default_config(self) -> dict[str, Any]:
        """TrainConfig updates (network spec, task_options, losses) for this task."""

    @abstractmethod
    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Degrade one clean ``(C, H, W)`` crop into ``(network_input, target)``.

        Randomness comes only from ``generator`` so pairs are reproducible per sample."""

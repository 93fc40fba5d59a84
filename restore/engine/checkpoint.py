"""Training checkpoints (``last.pt``): everything needed to resume a run bit-exactly
(networks, optimisers, RNG states, step), written atomically with ``torch.save`` and read
back with ``weights_only=True`` so loading never unpickles arbitrary objects.

Inference weights are another file with its own format: :mod:`restore.weights.format`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from restore.io.atomic import atomic_write
from restore.weights.format import WeightsError, refusal_reason


def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda temp: torch.save(state, temp))


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read ``last.pt``. Every write of it is atomic, so a damaged one was damaged outside
    restore (a disk, a copy): say so instead of showing torch's traceback."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # zip, pickle and refusal errors come in many types
        raise WeightsError(
            f"{path}: cannot read this training state ({refusal_reason(error)}): the file is damaged "
            f"or was not written by restore; restore it from a copy, or train again without --resume"
        ) from error

"""Fine-tuning a community checkpoint: ``restore train superres|denoise --init-weights FILE``.

The run trains the checkpoint's own architecture (its spec replaces the recipe's
generator, and its scale or blindness the task options), starting from its weights. What
the run saves is a restore ``.safetensors`` whose ``network`` spec names the architecture,
so inference rebuilds it from the file's tensors alone (:func:`restore.zoo.network.build`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from restore.zoo.files import read_checkpoint
from restore.zoo.models import community_metadata
from restore.zoo.network import ARCH, UnrecognisedArchitecture, build


def community_training(path: str | Path, task: str) -> dict[str, Any] | None:
    """``{"generator": spec, "task_options": {...}}`` to train a community architecture from
    ``path`` (a community checkpoint, or a restore file fine-tuned from one), or None for
    restore's own networks, which the recipe's generator describes. The file is read safely:
    a pickle that would run code is refused here, before anything else."""
    state_dict, metadata = read_checkpoint(path)
    if metadata:
        if metadata.get("network", {}).get("arch") != ARCH:
            return None
        found = metadata
    else:
        try:
            _, found = community_metadata(state_dict, str(path), task)
        except UnrecognisedArchitecture:
            return None  # a plain state dict of restore's own network: the trainer loads it by name
    return {"generator": found["network"], "task_options": found.get("task_options", {})}


def community_generator(spec: dict[str, Any], path: str | Path, task: str) -> nn.Module:
    """The architecture ``spec`` names with the weights of ``path``, the run's init weights."""
    state_dict, metadata = read_checkpoint(path)
    if not metadata:
        state_dict, _ = community_metadata(state_dict, str(path), task)
    return build(spec, state_dict)

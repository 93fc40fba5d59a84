"""The calibration crops of an int8 recipe (:mod:`restore.engine.backends.int8`), degraded
by the weights' task as in training: the task layer's part of quantisation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.engine.backends import BackendError
from restore.io.convert import array_to_tensor
from restore.io.image import read_image
from restore.tasks import get_task

CALIBRATION_BATCH = 8  # crops per calibration run (bounds the memory of the calibrator's outputs)


def train_data() -> Path:
    """Where the recipes' training images are: ``RESTORE_TRAIN_DATA``, else the project's
    ``../shared/data/train`` beside the checkout."""
    if os.environ.get("RESTORE_TRAIN_DATA"):
        return Path(os.environ["RESTORE_TRAIN_DATA"]).expanduser()
    from restore.weights import weights_dir

    return weights_dir().resolve().parents[1] / "shared" / "data" / "train"


def calibration_batches(recipe: dict[str, Any], multiple: int) -> list[np.ndarray]:
    """The recipe's crops, degraded by the task as in training, as network-input batches;
    each crop's randomness comes from ``seed + index`` so the batches are the same every time."""
    task = get_task(recipe["task"], recipe.get("task_options"))
    folder, size = train_data(), int(recipe["crop"])
    inputs = []
    for index, (relative, top, left) in enumerate(recipe["crops"]):
        path = folder / relative
        if not path.is_file():
            raise BackendError(f"int8 calibration reads the training crops weights/int8/{recipe['weights']}.json lists, "
                               f"but {path} is missing: set RESTORE_TRAIN_DATA to the folder holding "
                               f"{relative.split('/')[0]}/, or use --precision fp32")
        image = array_to_tensor(read_image(path).pixels)[0]
        image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
        crop = image[:3, top:top + size, left:left + size]
        generator = torch.Generator().manual_seed(int(recipe["seed"]) + index)
        network_input = task.make_pair(crop, recipe.get("training_options", {}), generator)[0]
        height, width = (side // multiple * multiple for side in network_input.shape[-2:])
        inputs.append(network_input[:, :height, :width].float().numpy())
    return [np.stack(inputs[start:start + CALIBRATION_BATCH])
            for start in range(0, len(inputs), CALIBRATION_BATCH)]

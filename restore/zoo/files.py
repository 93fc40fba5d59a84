"""Reading any weights file without running code from it.

spandrel's own ``ModelLoader.load_from_file`` is not used: it unpickles ``.pth`` files with
its own restricted unpickler (not torch's ``weights_only``) and opens ``.pt`` files with
``torch.jit.load``, which loads TorchScript code. Here every pickle goes through
:func:`restore.weights.format.load_tensor_pickle` and every ``.safetensors`` through
safetensors; only the resulting tensors are handed to spandrel for recognition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from restore.weights import WeightsError, load_weights

from restore.weights.format import PICKLE_SUFFIXES, check_finite, load_tensor_pickle


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, restore metadata)`` of a restore file, or of a community checkpoint
    (metadata empty) with its wrappers removed: ``params``/``params_ema`` (BasicSR,
    Real-ESRGAN), ``state_dict`` (Lightning), ``model``/``net``, ``module.`` prefixes.
    Values that are not tensors (a training step count, an optimiser's settings) are dropped."""
    path = Path(path)
    if path.suffix.lower() not in PICKLE_SUFFIXES:
        return load_weights(path)  # .safetensors (restore's or anyone's); refuses other suffixes
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    loaded = load_tensor_pickle(path)
    if not isinstance(loaded, dict):
        raise WeightsError(f"{path}: expected a state dict of tensors, found a {type(loaded).__name__}")
    if not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        from spandrel import canonicalize_state_dict  # imported only for wrapped files: it is slow

        loaded = canonicalize_state_dict(loaded)
    state_dict = {key: value for key, value in loaded.items() if isinstance(value, torch.Tensor)}
    if not state_dict:
        raise WeightsError(f"{path}: expected a state dict of tensors, found none (keys: {', '.join(list(loaded)[:5])})")
    check_finite(state_dict, path)
    return state_dict, {}

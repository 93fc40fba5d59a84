"""The global random number generators a training run seeds, saves in ``last.pt`` and
restores on resume.

restore itself draws only from torch (samples have their own generators, see
``restore.engine.data``), but dropout, image pools and third-party code may draw from
numpy or Python: all of them are saved, so a resumed run continues every stream exactly.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed torch and the global numpy and Python RNGs. Left unseeded, a fresh process
    starts numpy and Python from OS entropy, and a run resumed in another process could
    never match an uninterrupted one."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """Every global RNG's state, as ``last.pt``'s ``rng`` entry: tensors only (numpy's and
    Python's states as JSON bytes), so the checkpoint loads with ``weights_only``."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": _json_bytes(_numpy_state()),
        "python": _json_bytes(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set every global RNG from :func:`capture_rng_state`'s ``state``; the CUDA states only
    where both the checkpoint and this machine have them."""
    torch.set_rng_state(state["torch"])
    _set_numpy_state(_from_json_bytes(state["numpy"]))
    random.setstate(_tuples(_from_json_bytes(state["python"])))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _json_bytes(value: Any) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(json.dumps(value).encode(), dtype=np.uint8).copy())


def _from_json_bytes(tensor: torch.Tensor) -> Any:
    return json.loads(bytes(tensor.tolist()).decode())


def _numpy_state() -> list:
    name, keys, position, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), position, has_gauss, cached]


def _set_numpy_state(state: list) -> None:
    name, keys, position, has_gauss, cached = state
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))


def _tuples(value):
    """JSON turns Python's RNG state tuples into lists; turn them back."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value

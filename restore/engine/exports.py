"""Inference weights a run exports: ``last.safetensors`` at every checkpoint and
``best.safetensors`` at the best validation, one pair per generator, each with the
metadata inference rebuilds the network from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from restore.engine.config import TrainConfig
from restore.nets import network_spec, parse_network_spec
from restore.weights.format import save_weights
from restore.zoo.network import ARCH as COMMUNITY

_REVERSED = {"AtoB": "BtoA", "BtoA": "AtoB"}


def export_generators(
    run_dir: Path, config: TrainConfig, step: int, generators: dict[str, nn.Module], best: bool
) -> None:
    """Write ``last*.safetensors`` (and with ``best`` ``best*.safetensors``) of each of
    ``generators`` (name: the network inference uses, EMA where there is one)."""
    for name, network in generators.items():
        suffix, direction = generator_file(name, config.data.direction)
        metadata = {
            "task": config.task,
            "network": saved_network_spec(config.generator),
            "task_options": config.task_options,
            "step": step,
            "direction": direction,
        }
        weights = network.state_dict()
        save_weights(run_dir / f"last{suffix}.safetensors", weights, metadata)
        if best:
            save_weights(run_dir / f"best{suffix}.safetensors", weights, metadata)


def generator_file(name: str, direction: str) -> tuple[str, str]:
    """The file name suffix of generator ``name`` and the direction it translates. A paired
    run's G has no suffix and goes the run's ``direction``. CycleGAN's (unaligned data, for
    any task: the layout is the data's) G_A goes that way too, into ``best_A``; G_B, which
    maps the B side back, goes the other way, into ``best_B``."""
    if name == "G":
        return "", direction
    return f"_{name[2:]}", _REVERSED[direction] if name == "G_B" else direction


def saved_network_spec(generator: dict[str, Any]) -> dict[str, Any]:
    """The generator's spec as saved with its weights: every field, no init."""
    if generator.get("arch") == COMMUNITY:
        return generator  # recognised from the checkpoint, already complete
    return network_spec(parse_network_spec(generator))

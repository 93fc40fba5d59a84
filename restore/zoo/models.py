"""From a weights file's tensors to the network restore runs, whoever wrote the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from restore.nets import build_network, check_tensors_fit
from restore.weights import WeightsError
from restore.zoo.files import read_checkpoint
from restore.zoo.network import ARCH, PREFIX, Description, build, recognise

PURPOSE_WORDS = {"superres": "super-resolution", "denoise": "restoration (denoising)", "inpaint": "inpainting"}


def community_metadata(
    state_dict: dict[str, torch.Tensor], source: str, task: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """restore's metadata for a community checkpoint run by ``task``, and its state dict as
    :class:`restore.zoo.network.CommunityNetwork` holds it (``model.`` + the checkpoint's keys). A model whose purpose does not fit ``task`` is refused, naming its architecture
    and the command that runs it."""
    network, state_dict = recognise(state_dict, source)
    description = network.description
    fits = description.task
    if fits is None:
        raise WeightsError(f"{source}: {description.label} is a {description.purpose} model (face restoration); "
                           f"no restore command runs it")
    if fits != task:
        raise WeightsError(
            f"{source}: {description.label} is a {PURPOSE_WORDS[fits]} model (x{description.upscale}), not a {task} "
            f"one: use `restore {fits} --weights {source}`"
        )
    return {PREFIX + key: value for key, value in state_dict.items()}, description.metadata(Path(source).name)


def network_from_weights(spec: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """The network a spec describes, with the file's tensors loaded (as float32)."""
    if spec.get("arch") == ARCH:
        return build(spec, state_dict)
    check_tensors_fit(spec, state_dict)
    network = build_network(spec)
    network.load_state_dict({key: value.float() for key, value in state_dict.items()})
    return network


def describe_file(path: Path, task: str | None = None) -> dict[str, Any]:
    """What a weights file holds (restore's or a community checkpoint), read safely:
    task, architecture, scale, channels, parameters, size requirements, precisions."""
    state_dict, metadata = read_checkpoint(path)
    if "network" in metadata and metadata["network"].get("arch") != "community":
        spec = metadata["network"]
        return {
            "format": "restore", "task": metadata.get("task"), "architecture": spec.get("arch"),
            "scale": int(spec.get("upscale", 1)), "in_channels": int(spec.get("in_channels", 3)),
            "out_channels": int(spec.get("out_channels", spec.get("in_channels", 3))),
            "parameters": sum(t.numel() for t in state_dict.values() if t.is_floating_point()),
            "size_multiple": None, "precisions": "fp32, bf16, fp16 (restore's own networks)",
        }
    if "network" in metadata:  # fine-tuned community architecture
        description, fmt, fits = Description.from_spec(metadata["network"]), "restore (fine-tuned)", metadata["task"]
    elif task is not None:
        _, found = community_metadata(state_dict, str(path), task)
        description, fmt, fits = Description.from_spec(found["network"]), "community", task
    else:
        network, _ = recognise(state_dict, str(path))
        description, fmt, fits = network.description, "community", network.description.task
    return {
        "format": fmt, "task": fits, "architecture": description.label,
        "purpose": description.purpose, "scale": description.upscale, "in_channels": description.in_channels,
        "out_channels": description.out_channels, "input": description.kind, "parameters": description.parameters,
        "size_requirements": f"multiple of {description.multiple}, minimum {description.minimum}"
                             + (", square" if description.square else ""),
        "tiling": description.tiling, "precisions": ", ".join(description.precisions),
        "tags": ", ".join(description.tags),
    }

"""Networks, built by name from plain dictionaries (``{"arch": "unet", ...}``).

The dictionary is what checkpoints store, so any network can be rebuilt from its file
alone. Architectures register themselves in :data:`ARCHITECTURES`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from restore.nets.discriminator import MultiScaleConfig, MultiScaleDiscriminator, PatchConfig, PatchDiscriminator
from restore.nets.pix2pix_unet import Pix2PixUnetConfig, Pix2PixUnetGenerator
from restore.nets.resnet import ResnetConfig, ResnetGenerator
from restore.nets.unet import UNetConfig, UNetGenerator
from restore.schema import check_field

# arch name -> (config dataclass, module class taking that config)
ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    "unet": (UNetConfig, UNetGenerator),
    "resnet": (ResnetConfig, ResnetGenerator),
    "pix2pix_unet": (Pix2PixUnetConfig, Pix2PixUnetGenerator),
    "patch": (PatchConfig, PatchDiscriminator),
    "multiscale_patch": (MultiScaleConfig, MultiScaleDiscriminator),
}


def network_spec(config: Any) -> dict[str, Any]:
    """The plain-dict form of a network config, with its ``arch`` name."""
    for arch, (config_class, _) in ARCHITECTURES.items():
        if type(config) is config_class:
            return {"arch": arch, **dataclasses.asdict(config)}
    raise TypeError(f"{type(config).__name__} is not a registered network config")


def parse_network_spec(spec: dict[str, Any]) -> Any:
    """Turn ``{"arch": ..., **fields}`` into the architecture's config dataclass.

    Unknown fields are an error rather than silently ignored: a typo in a recipe must not
    train a different network than the one the user asked for. A setting's old name (the
    config class's ``RENAMED``) is read as its new one, so older files load unchanged."""
    if not isinstance(spec, dict):
        raise ValueError(f"a network spec is a table with an arch, not {type(spec).__name__}")
    fields = dict(spec)
    arch = fields.pop("arch", None)
    fields.pop("init", None)  # how training initialises the weights, not part of the layout
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ValueError(f"unknown network arch {arch!r}; known: {', '.join(ARCHITECTURES)}")
    config_class, _ = ARCHITECTURES[arch]
    for old, new in getattr(config_class, "RENAMED", {}).items():
        if old in fields:
            if new in fields:
                raise ValueError(f"{arch}: {old} is the old name of {new}: give only {new}")
            fields[new] = fields.pop(old)
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = set(fields) - known
    if unknown:
        raise ValueError(f"{arch}: unknown setting(s) {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        check_field(config_class, name, value, f"{arch}: ")
    for name, maximum in getattr(config_class, "LIMITS", {}).items():
        if fields.get(name, 0) > maximum:
            raise ValueError(f"{arch}: {name} must be at most {maximum}, not {fields[name]}")
    return config_class(**fields)


def build_network(spec: dict[str, Any]) -> nn.Module:
    """Build a network from its spec dict (as stored in checkpoints and recipes)."""
    config = parse_network_spec(spec)
    _, module_class = ARCHITECTURES[spec["arch"]]
    return module_class(config)


def check_tensors_fit(spec: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Raise ValueError unless ``tensors`` are exactly the parameters of the network ``spec``
    describes. The network is laid out on the meta device (no memory), so a header that
    describes a far larger network than its file holds is refused before anything is
    allocated for it."""
    with torch.device("meta"):
        expected = {name: tuple(tensor.shape) for name, tensor in build_network(spec).state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = [f"{label} tensor(s) {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                 for label, names in (("missing", missing), ("unexpected", unexpected)) if names]
        raise ValueError(f"the tensors do not fit the network in the header: {'; '.join(parts)}")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise ValueError(f"the tensors do not fit the network in the header: {name} is "
                             f"{tuple(tensors[name].shape)} in the file, {shape} in the network")

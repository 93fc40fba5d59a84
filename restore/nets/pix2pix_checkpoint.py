"""Recognise generator checkpoints published by pytorch-CycleGAN-and-pix2pix.

Their ``latest_net_G.pth`` / ``latest_net_G_A.pth`` files are plain state dicts with no
description of the network, so the layout is read from the keys and shapes:
``model.model.0.weight`` is the recursive ``UnetGenerator``, ``model.N.conv_block.*`` the
``ResnetGenerator``; the widths come from the first convolution, the depth from the
nesting (U-Net) or the number of residual blocks (ResNet), the norm from the first norm
layer (batch norm has a weight; instance norm has none, and then the convolutions have a
bias). Files saved by PyTorch < 0.4 hold running statistics for instance-norm layers,
which have none today: they are dropped, as that project's own loader does.

The spec returned uses ``value_range="unit"`` (the [-1, 1] scaling their test code does
moves into the network, see :mod:`restore.nets.resnet`) and ``batch_per_image`` for
batch norm, because their test script runs pix2pix in training mode by default: each
image is normalised by its own statistics, not the running averages.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from restore.nets import build_network

INSTANCE_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")
_TOP_LEVEL = re.compile(r"^model\.(\d+)\.")


def recognise_generator(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict to load, network spec)`` for a pix2pix/CycleGAN generator file.

    Raises ``ValueError`` naming what did not fit when the keys are not one of theirs."""
    state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}  # DataParallel saves
    if "model.model.0.weight" in state_dict:
        spec = _unet_spec(state_dict)
    elif "model.1.weight" in state_dict and any(".conv_block." in key for key in state_dict):
        spec = _resnet_spec(state_dict)
    else:
        raise ValueError(
            "not a pytorch-CycleGAN-and-pix2pix generator: expected the keys of a UnetGenerator "
            "(model.model.0.weight, ...) or a ResnetGenerator (model.1.weight, model.10.conv_block.1.weight, ...)"
        )
    return _checked(state_dict, spec), spec


def _norm_of(state_dict: dict[str, torch.Tensor], norm_prefix: str, conv_prefix: str) -> str:
    """Batch norm has an affine weight; instance norm has none (pix2pix: affine=False) but
    then the convolution before it has a bias; with neither, there is no norm."""
    if f"{norm_prefix}weight" in state_dict:
        return "batch_per_image"
    if f"{norm_prefix}running_mean" in state_dict or f"{conv_prefix}bias" in state_dict:
        return "instance"
    return "none"


def _resnet_spec(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    # stem: pad(0) conv(1) norm(2) relu(3); each downsampling conv, norm, relu; then the blocks
    blocks = sorted({int(m.group(1)) for key in state_dict if ".conv_block." in key and (m := _TOP_LEVEL.match(key))})
    first_block = blocks[0]
    convs = sorted(
        int(key.split(".")[3])
        for key, value in state_dict.items()
        if key.startswith(f"model.{first_block}.conv_block.") and key.endswith(".weight") and value.ndim == 4
    )
    if len(convs) != 2:
        raise ValueError(f"model.{first_block}.conv_block holds {len(convs)} convolutions, a residual block has 2")
    padding = "zero" if convs[0] == 0 else "reflect"  # replicate padding cannot be told from reflect; pix2pix uses reflect
    # conv, norm, ReLU, [Dropout], [pad], conv: the second conv moves one further with dropout
    dropout = convs[1] - convs[0] == (4 if padding == "zero" else 5)
    indices = [int(m.group(1)) for key in state_dict if (m := _TOP_LEVEL.match(key))]
    stem = state_dict["model.1.weight"]
    return {
        "arch": "resnet",
        "in_channels": int(stem.shape[1]),
        "out_channels": int(state_dict[f"model.{max(indices)}.weight"].shape[0]),
        "base_channels": int(stem.shape[0]),
        "n_blocks": len(blocks),
        "norm": _norm_of(state_dict, "model.2.", "model.1."),
        "dropout": dropout,
        "padding": padding,
        "n_downsampling": (first_block - 4) // 3,
        "value_range": "unit",
    }


def _unet_spec(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    # level k's layers sit under "model" repeated k + 1 times: model.model.1.model.3.model....
    num_downs = max(key.split(".").count("model") for key in state_dict) - 1
    outer_down, outer_up = state_dict["model.model.0.weight"], state_dict["model.model.3.weight"]
    return {
        "arch": "pix2pix_unet",
        "in_channels": int(outer_down.shape[1]),
        "out_channels": int(outer_up.shape[1]),  # ConvTranspose2d weights are (in, out, kh, kw)
        "base_channels": int(outer_down.shape[0]),
        "num_downs": num_downs,
        # the second level: LeakyReLU(0), downconv(1), downnorm(2)
        "norm": _norm_of(state_dict, "model.model.1.model.2.", "model.model.1.model.1."),
        "dropout": True,  # invisible in the keys (no weights); off at inference either way
        "value_range": "unit",
    }


def _checked(state_dict: dict[str, torch.Tensor], spec: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Drop the stale instance-norm statistics and check every key and shape against the
    network the spec builds (on the meta device: no memory, no initialisation)."""
    with torch.device("meta"):
        network = build_network(spec)
    expected = network.state_dict()
    modules = dict(network.named_modules())
    cleaned = {}
    for key, value in state_dict.items():
        module_name, _, field = key.rpartition(".")
        if key not in expected and field in INSTANCE_NORM_STATS and isinstance(modules.get(module_name), nn.InstanceNorm2d):
            continue
        cleaned[key] = value
    missing, unexpected = sorted(expected.keys() - cleaned.keys()), sorted(cleaned.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(
            f"read as {spec['arch']} {spec}, but keys do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for key, value in cleaned.items():
        if value.shape != expected[key].shape:
            wanted = tuple(expected[key].shape)
            raise ValueError(f"read as {spec['arch']} {spec}, but {key} is {tuple(value.shape)}, not {wanted}")
    return cleaned

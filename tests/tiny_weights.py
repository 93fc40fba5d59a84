"""Tiny weights files for tests: real restore checkpoints, small enough to run instantly."""

from __future__ import annotations

from pathlib import Path

import torch

from restore.engine.checkpoint import save_weights
from restore.nets import build_network


def tiny_denoise_spec(channels: int = 3) -> dict:
    return {
        "arch": "unet",
        "in_channels": channels,
        "out_channels": channels,
        "extra_channels": 1,
        "base_channels": 4,
        "depth": 2,
        "max_channels": 8,
        "blocks_per_level": 1,
        "residual": True,
    }


def write_tiny_denoise_weights(path: Path, channels: int = 3, seed: int = 0) -> Path:
    """A random (untrained) tiny denoiser saved exactly as `restore train` saves weights."""
    torch.manual_seed(seed)
    spec = tiny_denoise_spec(channels)
    network = build_network(spec)
    save_weights(path, network.state_dict(), {"task": "denoise", "network": spec, "task_options": {}})
    return path

"""Tiny weights files for tests: real restore checkpoints, small enough to run instantly."""

from __future__ import annotations

from pathlib import Path

import torch

from restore.nets import build_network
from restore.weights import save_weights


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


def write_tiny_superres_weights(path: Path, scale: int = 4, seed: int = 0) -> Path:
    """A random (untrained) tiny x``scale`` super-resolution U-Net, saved as `restore train` does."""
    torch.manual_seed(seed)
    spec = {**tiny_denoise_spec(3), "extra_channels": 0, "upscale": scale}
    network = build_network(spec)
    save_weights(path, network.state_dict(), {"task": "superres", "network": spec, "task_options": {"scale": scale}})
    return path


def write_tiny_inpaint_weights(path: Path, seed: int = 0) -> Path:
    """A random (untrained) tiny inpainting U-Net (image + mask channel), saved as `restore train` does."""
    torch.manual_seed(seed)
    spec = tiny_denoise_spec(3)
    network = build_network(spec)
    save_weights(path, network.state_dict(), {"task": "inpaint", "network": spec, "task_options": {}})
    return path

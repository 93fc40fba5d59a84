"""Community checkpoints for tests: the two real files in ../shared, and randomly initialised
networks saved in the layouts their projects publish (KAIR's FFDNet and DRUNet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

MODELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "models"
REALESR = MODELS / "realesr-animevideov3.pth"
DNCNN = MODELS / "dncnn_gray_blind.pth"


def shared_model(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared is not laid out here)")
    return path


class RunsCodeWhenUnpickled:
    """Unpickling calls ``open(marker, "w")``: the file appears if the pickle is ever run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_code_running_pth(path: Path, marker: Path) -> Path:
    """A Real-ESRGAN-style ``params`` checkpoint whose pickle would create ``marker``."""
    torch.save({"params": {"body.0.weight": torch.zeros(1)}, "payload": RunsCodeWhenUnpickled(marker)}, path)
    return path


def kair_ffdnet_state_dict(channels: int, features: int = 16, layers: int = 12, seed: int = 0) -> dict:
    """Random weights in the layout of KAIR's ``ffdnet_gray.pth``/``ffdnet_color.pth``:
    ``model.{0,2,...}`` convolutions from ``4c + 1`` to ``4c`` channels (12 of them, as
    ``ffdnet_color.pth``; fewer would not even look like DnCNN to spandrel)."""
    generator = torch.Generator().manual_seed(seed)
    widths = [4 * channels + 1] + [features] * (layers - 1) + [4 * channels]
    state = {}
    for index in range(layers):
        fan_in = widths[index] * 9
        state[f"model.{2 * index}.weight"] = torch.randn(widths[index + 1], widths[index], 3, 3,
                                                         generator=generator) / fan_in**0.5
        state[f"model.{2 * index}.bias"] = torch.randn(widths[index + 1], generator=generator) * 0.01
    return state


def kair_ffdnet_forward(state: dict, image: torch.Tensor, sigma: float) -> torch.Tensor:
    """KAIR's ``FFDNet.forward(x, sigma)`` written out (models/network_ffdnet.py): replicate
    pad to even, pixel-unshuffle by view/permute, the noise level repeated as a channel."""
    height, width = image.shape[-2:]
    x = F.pad(image, (0, width % 2, 0, height % 2), mode="replicate")
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, h // 2, w // 2)
    x = torch.cat([x, torch.full((b, 1, h // 2, w // 2), sigma / 255)], dim=1)
    layers = sorted(int(key.split(".")[1]) for key in state if key.endswith(".weight"))
    for position, index in enumerate(layers):
        x = F.conv2d(x, state[f"model.{index}.weight"], state[f"model.{index}.bias"], padding=1)
        if position < len(layers) - 1:
            x = F.relu(x)
    return F.pixel_shuffle(x, 2)[..., :height, :width]


def drunet_network(channels: int, seed: int = 0) -> torch.nn.Module:
    """A small DRUNet (KAIR's network_unet.UNetRes, as spandrel vendors it): image plus one
    noise-level channel in."""
    from spandrel.architectures.DRUNet import DRUNet

    torch.manual_seed(seed)
    return DRUNet(in_nc=channels + 1, out_nc=channels, nc=[8, 16, 32, 64], nb=2).eval()


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` uint8/uint16 RGB -> ``(1, C, H, W)`` float in [0, 1]."""
    scale = 255.0 if pixels.dtype == np.uint8 else 65535.0
    return torch.from_numpy(pixels.astype(np.float32) / scale).permute(2, 0, 1)[None]


def to_levels(tensor: torch.Tensor, dtype: type = np.uint8) -> np.ndarray:
    """``(1, C, H, W)`` float -> ``(H, W, C)`` clamped and rounded to ``dtype``."""
    scale = 255.0 if dtype == np.uint8 else 65535.0
    return (tensor[0].permute(1, 2, 0).clamp(0, 1) * scale).round().numpy().astype(dtype)

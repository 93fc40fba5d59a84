"""KAIR's FFDNet (Zhang et al. 2018), which spandrel 0.4 does not know.

Its state dict has DnCNN's layout (``model.0`` ... ``model.2k``: 3x3 convolutions, ReLU
between them), so spandrel detects DnCNN and, as the first layer's input differs from the
last layer's output, builds an FDnCNN: a full-resolution network with one noise-map
channel, which runs without error and produces garbage. What tells FFDNet apart is the
channel arithmetic of its pixel-unshuffle by 2: the first convolution takes ``4c + 1``
channels (4 sub-images per colour channel plus the noise level) and the last gives
``4c`` (``ffdnet_gray.pth``: 5 -> 4, ``ffdnet_color.pth``: 13 -> 12), which no DnCNN or
FDnCNN has (they take ``c`` or ``c + 1`` and give ``c``).

The module takes restore's denoising input, the image followed by a constant noise-level
map (:func:`restore.tasks.denoise.network_input`), the way DRUNet and FDnCNN take it.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

_LAYER = re.compile(r"^model\.(\d+)\.weight$")


def ffdnet_channels(state_dict: dict[str, torch.Tensor]) -> int | None:
    """The image channels (1 or 3) of an FFDNet state dict, or None if it is not one."""
    layers = _conv_indices(state_dict)
    if not layers or layers != list(range(0, 2 * len(layers), 2)) or set(state_dict) != _keys(layers):
        return None
    first, last = state_dict[f"model.{layers[0]}.weight"], state_dict[f"model.{layers[-1]}.weight"]
    if first.ndim != 4 or last.ndim != 4:
        return None
    channels = last.shape[0] // 4
    if channels in (1, 3) and last.shape[0] == 4 * channels and first.shape[1] == 4 * channels + 1:
        return channels
    return None


def _conv_indices(state_dict: dict[str, torch.Tensor]) -> list[int]:
    return sorted(int(match.group(1)) for key in state_dict if (match := _LAYER.match(key)))


def _keys(layers: list[int]) -> set[str]:
    return {f"model.{index}.{kind}" for index in layers for kind in ("weight", "bias")}


class FFDNet(nn.Module):
    """FFDNet with KAIR's parameter names: pixel-unshuffle by 2, the noise level appended
    as a channel at half resolution, ``layers`` convolutions, pixel-shuffle back. Odd
    sizes are padded by replication and cropped back, as KAIR does."""

    size_multiple = 1  # any size: the padding to even happens inside

    def __init__(self, channels: int, features: int, layers: int) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        widths = [4 * channels + 1] + [features] * (layers - 1) + [4 * channels]
        for index in range(layers):
            modules.append(nn.Conv2d(widths[index], widths[index + 1], 3, padding=1))
            if index < layers - 1:
                modules.append(nn.ReLU(inplace=True))
        self.model = nn.Sequential(*modules)

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, torch.Tensor]) -> FFDNet:
        channels = ffdnet_channels(state_dict)
        if channels is None:
            raise ValueError("not an FFDNet state dict (KAIR layout)")
        layers = _conv_indices(state_dict)
        network = cls(channels, int(state_dict["model.0.weight"].shape[0]), len(layers))
        network.load_state_dict(state_dict)
        return network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, c + 1, H, W)``: the image and its noise-level map (sigma / 255)."""
        height, width = x.shape[-2:]
        x = F.pad(x, (0, width % 2, 0, height % 2), mode="replicate")
        image, level = x[:, :-1], x[:, -1:]
        level = F.avg_pool2d(level, 2)  # KAIR repeats one sigma per image: the same for a constant map
        out = self.model(torch.cat([F.pixel_unshuffle(image, 2), level], dim=1))
        return F.pixel_shuffle(out, 2)[..., :height, :width]

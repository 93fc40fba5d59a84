"""Small building blocks shared by every network, chosen by name so configs stay plain data."""

from __future__ import annotations

import functools

from torch import Tensor, nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``batch`` | ``instance`` | ``none``, with pix2pix's settings (instance norm has no
    affine parameters and no running statistics, so public checkpoints load unchanged)."""
    return norm_factory(kind)(channels)


def norm_factory(kind: str):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: use batch, instance or none")


def activation_layer(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    raise ValueError(f"unknown activation {kind!r}: use relu or leaky_relu")


class ResidualBlock(nn.Module):
    """conv-norm-act-conv-norm plus identity: the block of DRUNet and of EDSR (no norm)."""

    def __init__(self, channels: int, norm: str = "none", activation: str = "relu") -> None:
        super().__init__()
        bias = norm != "batch"
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            norm_layer(norm, channels),
            activation_layer(activation),
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)

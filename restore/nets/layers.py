"""Small building blocks shared by every network, chosen by name so configs stay plain data."""

from __future__ import annotations

import functools

import torch.nn.functional as F
from torch import Tensor, nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``batch`` | ``batch_per_image`` | ``instance`` | ``none``, with pix2pix's settings (instance norm has no
    affine parameters and no running statistics, so public checkpoints load unchanged)."""
    return norm_factory(kind)(channels)


# norms with a learnt shift of their own, after which a convolution bias is redundant
BATCH_NORMS = ("batch", "batch_per_image")


class PerImageBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that always normalises each image by its own statistics, in training
    and at test time alike.

    That is what pix2pix's batch norm does in practice: it trains with one image per
    batch and, by default, tests in training mode (the paper: "batch normalization using
    the statistics of the test batch"), so its public checkpoints were never meant for the
    running averages. Same parameters and buffers as :class:`~torch.nn.BatchNorm2d`, so
    the same state dicts load; unlike a train-mode ``BatchNorm2d`` the result of one image
    does not depend on the others in its batch (tiles, folders)."""

    def forward(self, x: Tensor) -> Tensor:
        # the running averages are kept up to date in training (so the state dict stays a
        # faithful batch-norm one) and never read; inference leaves them alone
        tracked = self.training and self.track_running_stats
        return F.instance_norm(
            x,
            self.running_mean if tracked else None,
            self.running_var if tracked else None,
            self.weight,
            self.bias,
            use_input_stats=True,
            momentum=self.momentum if self.momentum is not None else 0.1,
            eps=self.eps,
        )


def norm_factory(kind: str):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "batch_per_image":
        return functools.partial(PerImageBatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: use batch, batch_per_image, instance or none")


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
        bias = norm not in BATCH_NORMS
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            norm_layer(norm, channels),
            activation_layer(activation),
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class GatedConv2d(nn.Module):
    """DeepFill v2's gated convolution (Yu et al. 2019): one convolution makes features and
    a gate, the output is ``features * sigmoid(gate)``. The learnt soft gate lets a layer
    pass what comes from known pixels and hold back what is computed from a hole, which
    a plain convolution, treating the zeros of a hole as image, cannot."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return features * gate.sigmoid()


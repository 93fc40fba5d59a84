"""pix2pix's U-Net generator (``--netG unet_256`` / ``unet_128``), layer for layer.

Built, as in pytorch-CycleGAN-and-pix2pix, from one recursive skip block, so the
state-dict keys are theirs (``model.model.0.weight``, ``model.model.1.model.1.weight``,
...) and their public checkpoints load with ``strict=True``. Every level halves the size
with a 4x4 stride-2 convolution and doubles it back with a 4x4 transposed one; the
channel count doubles for the first three levels and stays at ``8 * base_channels`` below.

This is the faithful reproduction for pretrained pix2pix weights; restore's own
:class:`~restore.nets.unet.UNetGenerator` is the one to train restoration models with.
For the value range (the network ends in ``Tanh``) see :mod:`restore.nets.resnet`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from restore.nets.layers import norm_factory
from restore.nets.resnet import check_value_range, pix2pix_uses_bias, run_in_tanh_range

# the outermost level plus the three below it are fixed; the rest sit at 8x the width
FIXED_LEVELS = 4


@dataclass(frozen=True)
class Pix2PixUnetConfig:
    """Every setting that determines the layout; the defaults are ``unet_256`` as pix2pix
    trains it (batch norm, dropout on)."""

    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64  # pix2pix's ngf
    num_downs: int = 8  # 8 = unet_256, 7 = unet_128; the innermost level is 1x1 at that size
    norm: str = "batch"  # batch | batch_per_image (pix2pix's test-time behaviour) | instance | none
    dropout: bool = True  # Dropout(0.5) in the num_downs - 5 levels above the innermost
    value_range: str = "tanh"  # tanh: [-1, 1] in and out, as pix2pix; unit: [0, 1]

    LIMITS: ClassVar[dict[str, int]] = {"in_channels": 64, "out_channels": 64, "base_channels": 4096,
                                        "num_downs": 12}  # see UNetConfig.LIMITS


class UnetSkipBlock(nn.Module):
    """One level: down, the ``submodule`` (the levels below), up; every level but the
    outermost returns its input concatenated with the result.

    ``self.model`` holds, in pix2pix's order,
    outermost ``[downconv, submodule, ReLU, upconv, Tanh]``,
    innermost ``[LeakyReLU, downconv, ReLU, upconv, upnorm]``,
    otherwise ``[LeakyReLU, downconv, downnorm, submodule, ReLU, upconv, upnorm(, Dropout)]``."""

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        norm: str,
        *,
        input_channels: int | None = None,
        submodule: UnetSkipBlock | None = None,
        outermost: bool = False,
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        innermost = submodule is None
        make_norm = norm_factory(norm)
        bias = pix2pix_uses_bias(norm)
        down_in = outer_channels if input_channels is None else input_channels
        up_in = inner_channels if innermost else inner_channels * 2  # the level below concatenates
        downconv = nn.Conv2d(down_in, inner_channels, 4, stride=2, padding=1, bias=bias)
        if outermost:
            upconv = nn.ConvTranspose2d(up_in, outer_channels, 4, stride=2, padding=1)
            layers = [downconv, submodule, nn.ReLU(), upconv, nn.Tanh()]
        else:
            upconv = nn.ConvTranspose2d(up_in, outer_channels, 4, stride=2, padding=1, bias=bias)
            up = [nn.ReLU(), upconv, make_norm(outer_channels)]
            if innermost:  # no norm on the 1x1 code: batch norm over one value per image is degenerate
                layers = [nn.LeakyReLU(0.2), downconv, *up]
            else:
                layers = [nn.LeakyReLU(0.2), downconv, make_norm(inner_channels), submodule, *up]
                if dropout:
                    layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class Pix2PixUnetGenerator(nn.Module):
    """Input ``(B, in_channels, H, W)``, output ``(B, out_channels, H, W)``; H and W must
    be multiples of :attr:`size_multiple` (256 for ``unet_256``)."""

    def __init__(self, config: Pix2PixUnetConfig) -> None:
        super().__init__()
        if config.num_downs <= FIXED_LEVELS:
            raise ValueError(f"pix2pix_unet: num_downs must be at least {FIXED_LEVELS + 1}, not {config.num_downs}")
        check_value_range(config.value_range)
        self.config = config
        c = config
        deepest = c.base_channels * 8
        block = UnetSkipBlock(deepest, deepest, c.norm)
        for _ in range(c.num_downs - FIXED_LEVELS - 1):
            block = UnetSkipBlock(deepest, deepest, c.norm, submodule=block, dropout=c.dropout)
        for level in reversed(range(1, FIXED_LEVELS)):  # widths 4x->8x, 2x->4x, 1x->2x
            block = UnetSkipBlock(c.base_channels * 2 ** (level - 1), c.base_channels * 2**level, c.norm, submodule=block)
        self.model = UnetSkipBlock(
            c.out_channels, c.base_channels, c.norm, input_channels=c.in_channels, submodule=block, outermost=True
        )

    @property
    def size_multiple(self) -> int:
        return 2**self.config.num_downs

    def forward(self, x: Tensor) -> Tensor:
        return run_in_tanh_range(self.model, x, self.config.value_range)

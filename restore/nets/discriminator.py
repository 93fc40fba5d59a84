"""PatchGAN discriminators: pix2pix's 70x70 one and pix2pixHD's multi-scale stack.

Both return :data:`restore.losses.DiscriminatorOutput`: for each scale judged, the
feature maps after every LeakyReLU (for the feature-matching loss) followed by the patch
logits, one logit per overlapping receptive field (70x70 pixels for ``n_layers=3``).

:class:`PatchDiscriminator` keeps pix2pix's ``NLayerDiscriminator`` layout
(``model.0.weight``, ``model.2.weight``, ``model.3.running_mean``, ...), so its public
``latest_net_D.pth`` files load unchanged. One deliberate difference: with ``norm="none"``
the middle convolutions keep their bias (pix2pix drops it there as a side effect of a type
check; without a norm layer after it, a convolution needs its bias).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from restore.nets.layers import BATCH_NORMS, norm_factory

# pix2pix's channel growth stops at 8x the base width
MAX_WIDTH_MULTIPLIER = 8


@dataclass(frozen=True)
class PatchConfig:
    """pix2pix's ``--netD basic`` (``n_layers=3``) or ``--netD n_layers``.

    A conditional discriminator (pix2pix) sees input and output side by side: set
    ``in_channels`` to their channels together (6 for RGB to RGB)."""

    in_channels: int = 3
    base_channels: int = 64  # pix2pix's ndf
    n_layers: int = 3  # stride-2 convolutions after the first; 3 gives 70x70 patches
    norm: str = "batch"  # batch | instance | none; pix2pix's default is batch
    spectral_norm: bool = False  # constrain every convolution to Lipschitz 1 (SNGAN)


@dataclass(frozen=True)
class MultiScaleConfig:
    """pix2pixHD's discriminator: ``num_scales`` PatchGANs, each on the image average-pooled
    once more than the last, so the coarse ones judge global structure."""

    in_channels: int = 3
    base_channels: int = 64
    n_layers: int = 3
    norm: str = "instance"  # pix2pixHD's default
    spectral_norm: bool = False
    num_scales: int = 2  # pix2pixHD uses 2 at 1024x512, 3 at 2048x1024


class PatchDiscriminator(nn.Module):
    """Input ``(B, in_channels, H, W)``; returns ``[[feature, ..., logits]]`` with logits
    ``(B, 1, H', W')``, 30x30 for a 256x256 input with ``n_layers=3``."""

    def __init__(self, config: PatchConfig) -> None:
        super().__init__()
        if config.n_layers < 1:
            raise ValueError(f"patch: n_layers must be >= 1, not {config.n_layers}")
        self.config = config
        make_norm = norm_factory(config.norm)
        bias = config.norm not in BATCH_NORMS  # batch norm's shift makes a conv bias redundant
        widths = [config.base_channels * min(2**n, MAX_WIDTH_MULTIPLIER) for n in range(config.n_layers + 1)]

        def conv(in_channels: int, out_channels: int, stride: int, with_bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=1, bias=with_bias)
            return spectral_norm(layer) if config.spectral_norm else layer

        layers: list[nn.Module] = [conv(config.in_channels, widths[0], 2), nn.LeakyReLU(0.2, inplace=True)]
        for n in range(1, config.n_layers + 1):
            stride = 2 if n < config.n_layers else 1  # the last two convolutions keep the size
            layers += [conv(widths[n - 1], widths[n], stride, bias), make_norm(widths[n]), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(conv(widths[-1], 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        outputs = []
        for layer in self.model:
            x = layer(x)
            # safe to keep despite the in-place LeakyReLUs: the layer after each is a
            # convolution, which writes a new tensor
            if isinstance(layer, nn.LeakyReLU):
                outputs.append(x)
        outputs.append(x)
        return [outputs]


class MultiScaleDiscriminator(nn.Module):
    """Input ``(B, in_channels, H, W)``; returns one ``[feature, ..., logits]`` list per
    scale, full resolution first. Each scale is a :class:`PatchDiscriminator` of its own."""

    def __init__(self, config: MultiScaleConfig) -> None:
        super().__init__()
        if config.num_scales < 1:
            raise ValueError(f"multiscale_patch: num_scales must be >= 1, not {config.num_scales}")
        self.config = config
        patch = PatchConfig(
            in_channels=config.in_channels,
            base_channels=config.base_channels,
            n_layers=config.n_layers,
            norm=config.norm,
            spectral_norm=config.spectral_norm,
        )
        self.scales = nn.ModuleList(PatchDiscriminator(patch) for _ in range(config.num_scales))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        outputs: list[list[Tensor]] = []
        for index, discriminator in enumerate(self.scales):
            if index > 0:
                # pix2pixHD's downsampling; border pixels average only real neighbours
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs += discriminator(x)
        return outputs

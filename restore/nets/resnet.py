"""CycleGAN's ResNet generator (Johnson et al.'s style-transfer network), layer for layer.

The module list, the names and the order of the layers are those of
pytorch-CycleGAN-and-pix2pix's ``ResnetGenerator`` (``--netG resnet_9blocks`` /
``resnet_6blocks``), so its public checkpoints (``horse2zebra`` ``latest_net_G.pth``,
...) load with ``strict=True`` and the state-dict keys read ``model.1.weight``,
``model.10.conv_block.1.weight``, ... Changing the layout here breaks those files.

Value range: pix2pix trains on images in [-1, 1] and ends in ``Tanh``. With the default
``value_range="tanh"`` the network is exactly that, and the caller converts restore's
[0, 1] tensors (``x * 2 - 1`` in, ``(y + 1) / 2`` out). ``value_range="unit"`` does that
conversion inside ``forward`` (it has no weights, so the same checkpoints load), which lets
the trainer and the inference loop, which speak [0, 1], use the network unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from restore.nets.layers import norm_factory

VALUE_RANGES = ("tanh", "unit")
PADDINGS = ("reflect", "replicate", "zero")


def check_value_range(value_range: str) -> None:
    if value_range not in VALUE_RANGES:
        raise ValueError(f"unknown value_range {value_range!r}: use tanh ([-1, 1]) or unit ([0, 1])")


def run_in_tanh_range(model: nn.Module, x: Tensor, value_range: str) -> Tensor:
    """Apply a network trained on [-1, 1] images to ``x`` given (and returned) in
    ``value_range``: ``tanh`` passes through, ``unit`` maps [0, 1] there and back."""
    if value_range == "tanh":
        return model(x)
    return (model(x * 2 - 1) + 1) / 2


def pix2pix_uses_bias(norm: str) -> bool:
    """pix2pix gives convolutions a bias only with instance norm: batch norm's own shift
    makes one redundant, and with ``none`` its type check also leaves it out. Following it
    to the letter is what makes every pix2pix checkpoint load."""
    return norm == "instance"


@dataclass(frozen=True)
class ResnetConfig:
    """Every setting that determines the layout; the defaults are ``resnet_9blocks`` as
    CycleGAN trains it (``--norm instance``, no dropout)."""

    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64  # pix2pix's ngf
    n_blocks: int = 9  # 9 for 256x256 training crops, 6 for 128x128 (CycleGAN's choice)
    norm: str = "instance"  # batch | instance | none
    dropout: bool = False  # Dropout(0.5) inside each residual block
    padding: str = "reflect"  # reflect | replicate | zero, inside the residual blocks
    n_downsampling: int = 2  # stride-2 convolutions; pix2pix always uses 2
    value_range: str = "tanh"  # tanh: [-1, 1] in and out, as pix2pix; unit: [0, 1]

    LIMITS: ClassVar[dict[str, int]] = {"in_channels": 64, "out_channels": 64, "base_channels": 4096,
                                        "n_blocks": 128, "n_downsampling": 8}  # see UNetConfig.LIMITS


def _padded(padding: str, amount: int) -> tuple[list[nn.Module], int]:
    """Explicit padding layers for ``padding``, or none plus the conv's own zero padding."""
    if padding == "reflect":
        return [nn.ReflectionPad2d(amount)], 0
    if padding == "replicate":
        return [nn.ReplicationPad2d(amount)], 0
    if padding == "zero":
        return [], amount
    raise ValueError(f"unknown padding {padding!r}: use {', '.join(PADDINGS)}")


class ResnetBlock(nn.Module):
    """pad-conv3x3-norm-ReLU(-dropout)-pad-conv3x3-norm plus identity. The attribute is
    called ``conv_block`` because that name is in the public checkpoints' keys."""

    def __init__(self, channels: int, config: ResnetConfig) -> None:
        super().__init__()
        norm = norm_factory(config.norm)
        bias = pix2pix_uses_bias(config.norm)
        layers: list[nn.Module] = []
        for second in (False, True):
            pad_layers, conv_padding = _padded(config.padding, 1)
            layers += [*pad_layers, nn.Conv2d(channels, channels, 3, padding=conv_padding, bias=bias), norm(channels)]
            if not second:
                layers.append(nn.ReLU(inplace=True))
                if config.dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 stem, ``n_downsampling`` stride-2 convolutions, ``n_blocks`` residual blocks,
    as many transposed convolutions back up, 7x7 head and ``Tanh``.

    Input ``(B, in_channels, H, W)``, output ``(B, out_channels, H, W)``; H and W must be
    multiples of :attr:`size_multiple` for the output to have the input's size."""

    def __init__(self, config: ResnetConfig) -> None:
        super().__init__()
        if config.n_blocks < 0 or config.n_downsampling < 0:
            raise ValueError("resnet: n_blocks and n_downsampling must be >= 0")
        check_value_range(config.value_range)
        self.config = config
        c = config
        norm = norm_factory(c.norm)
        bias = pix2pix_uses_bias(c.norm)
        width = c.base_channels

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(c.in_channels, width, 7, bias=bias),
            norm(width),
            nn.ReLU(inplace=True),
        ]
        for level in range(c.n_downsampling):
            channels = width * 2**level
            layers += [
                nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                norm(channels * 2),
                nn.ReLU(inplace=True),
            ]
        layers += [ResnetBlock(width * 2**c.n_downsampling, c) for _ in range(c.n_blocks)]
        for level in reversed(range(c.n_downsampling)):
            channels = width * 2 ** (level + 1)
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                norm(channels // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, c.out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    @property
    def size_multiple(self) -> int:
        return 2**self.config.n_downsampling

    def forward(self, x: Tensor) -> Tensor:
        return run_in_tanh_range(self.model, x, self.config.value_range)

"""U-Net generator shared by the restoration tasks (denoise, superres, inpaint, medical).

It keeps pix2pix's idea (an encoder-decoder with skip connections between mirrored
levels, 4x4 stride-2 convolutions to go down and transposed 4x4 convolutions to go up)
and adds what restoration networks since DnCNN/DRUNet showed to matter:

- ``blocks_per_level`` residual blocks at every scale (0 gives the bare pix2pix
  down/up ladder), so there is capacity at full resolution where the fine detail is;
- extra input channels (noise-level map, mask) simply widen the first convolution;
- ``gated=True`` makes the first convolution and the encoder's downsampling ones gated
  convolutions (DeepFill v2), so inpainting's encoder learns what to take from a hole;
- ``residual=True`` predicts a correction added to the input (``out = input + net(input)``),
  which is what makes denoisers train fast;
- ``upscale`` 2/3/4 appends a pixel-shuffle head for super-resolution; the residual is
  then added to an upsampling of the input: bicubic, or with ``upsample="fourier"``
  zero-padded k-space (sinc interpolation), the natural base for MR images whose low
  resolution is a truncated k-space.

The whole layout is a plain :class:`UNetConfig`, stored inside every checkpoint, so the
network is always rebuilt from the file and never from CLI defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from restore.nets.layers import GatedConv2d, ResidualBlock, activation_layer, norm_layer


@dataclass(frozen=True)
class UNetConfig:
    """Every setting that determines the U-Net's weights layout and behaviour."""

    in_channels: int = 3
    out_channels: int = 3
    extra_channels: int = 0  # conditioning inputs appended after the image (noise map, mask)
    base_channels: int = 64
    depth: int = 4  # number of 2x downsamplings; inputs must be multiples of 2**depth
    max_channels: int = 512
    blocks_per_level: int = 2
    norm: str = "none"  # batch | instance | none
    activation: str = "relu"  # relu | leaky_relu
    dropout: float = 0.0  # in the decoder's deepest levels, as pix2pix does
    residual: bool = True
    upscale: int = 1  # 1, 2, 3 or 4: pixel-shuffle super-resolution head
    upsample: str = "bicubic"  # what the residual is added to when upscaling: bicubic | fourier
    gated: bool = False  # gated head and downsampling convolutions (inpainting)

    def channels_at(self, level: int) -> int:
        return min(self.base_channels * 2**level, self.max_channels)


class UNetGenerator(nn.Module):
    """Encoder-decoder with additive skips. Input ``(B, in+extra, H, W)``, output
    ``(B, out, H*upscale, W*upscale)``; H and W must be multiples of :attr:`size_multiple`."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        if config.upscale not in (1, 2, 3, 4):
            raise ValueError(f"upscale must be 1, 2, 3 or 4, not {config.upscale}")
        if config.upsample not in ("bicubic", "fourier"):
            raise ValueError(f"upsample must be bicubic or fourier, not {config.upsample!r}")
        self.config = config
        c = config
        width = [c.channels_at(level) for level in range(c.depth + 1)]

        conv = GatedConv2d if c.gated else nn.Conv2d
        self.head = conv(c.in_channels + c.extra_channels, width[0], 3, padding=1)
        self.encoder = nn.ModuleList()
        self.down = nn.ModuleList()
        for level in range(c.depth):
            self.encoder.append(self._blocks(width[level]))
            self.down.append(conv(width[level], width[level + 1], 4, stride=2, padding=1))
        self.bottleneck = self._blocks(width[c.depth])
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(c.depth)):
            dropout = c.dropout if level >= c.depth - 3 else 0.0
            self.up.append(
                nn.Sequential(
                    nn.ConvTranspose2d(width[level + 1], width[level], 4, stride=2, padding=1),
                    nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
                )
            )
            self.decoder.append(self._blocks(width[level]))
        self.tail = self._tail(width[0])

    def _blocks(self, channels: int) -> nn.Sequential:
        c = self.config
        if c.blocks_per_level == 0:
            return nn.Sequential(norm_layer(c.norm, channels), activation_layer(c.activation))
        return nn.Sequential(
            *[ResidualBlock(channels, c.norm, c.activation) for _ in range(c.blocks_per_level)]
        )

    def _tail(self, channels: int) -> nn.Sequential:
        c = self.config
        if c.upscale == 1:
            return nn.Sequential(nn.Conv2d(channels, c.out_channels, 3, padding=1))
        stages: list[nn.Module] = []
        factors = [2, 2] if c.upscale == 4 else [c.upscale]
        for factor in factors:
            stages += [
                nn.Conv2d(channels, channels * factor * factor, 3, padding=1),
                nn.PixelShuffle(factor),
                activation_layer(c.activation),
            ]
        stages.append(nn.Conv2d(channels, c.out_channels, 3, padding=1))
        return nn.Sequential(*stages)

    @property
    def size_multiple(self) -> int:
        return 2**self.config.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        features = self.head(x)
        skips = []
        for blocks, down in zip(self.encoder, self.down):
            features = blocks(features)
            skips.append(features)
            features = down(features)
        features = self.bottleneck(features)
        for up, blocks, skip in zip(self.up, self.decoder, reversed(skips)):
            features = blocks(up(features) + skip)
        out = self.tail(features)
        if not c.residual:
            return out
        image = x[:, : c.out_channels]
        if c.upscale > 1 and c.upsample == "fourier":
            image = fourier_upsample(image, c.upscale)
        elif c.upscale > 1:
            image = F.interpolate(image, scale_factor=c.upscale, mode="bicubic", align_corners=False)
        return image + out


def fourier_upsample(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Upsample ``(..., h, w)`` by zero-padding its centred spectrum (sinc interpolation),
    magnitude of the result: what a scanner's zero-filled reconstruction of a smaller
    k-space gives (restore.tasks.medical_degradations.zero_filled, in torch). Computed in
    float32 whatever the autocast (FFTs have no bf16 kernels)."""
    height, width = image.shape[-2:]
    spectrum = torch.fft.fftshift(torch.fft.fft2(image.float()), dim=(-2, -1))
    padded = spectrum.new_zeros(*image.shape[:-2], height * scale, width * scale)
    top, left = height * scale // 2 - height // 2, width * scale // 2 - width // 2
    padded[..., top : top + height, left : left + width] = spectrum
    return torch.fft.ifft2(torch.fft.ifftshift(padded, dim=(-2, -1))).abs() * scale**2


def fold_to_grey(state_dict: dict[str, torch.Tensor], config: UNetConfig) -> tuple[dict[str, torch.Tensor], UNetConfig]:
    """A 1-channel network that computes exactly what the RGB network ``config`` computes on
    a grey image replicated to RGB, with its three outputs averaged.

    The replication folds into the first convolution (the RGB input weights are summed) and
    the averaging into the last (output weights and bias averaged); nothing in between sees
    the image channels. Used to ship a grey model from a colour model trained to also
    handle grey inputs, without a second training run."""
    if config.in_channels != 3 or config.out_channels != 3 or config.upscale != 1 or config.gated:
        raise ValueError("fold_to_grey needs an RGB-in, RGB-out network without an upscale head or gates")
    folded = dict(state_dict)
    head = state_dict["head.weight"]
    folded["head.weight"] = torch.cat([head[:, :3].sum(dim=1, keepdim=True), head[:, 3:]], dim=1)
    folded["tail.0.weight"] = state_dict["tail.0.weight"].mean(dim=0, keepdim=True)
    folded["tail.0.bias"] = state_dict["tail.0.bias"].mean(dim=0, keepdim=True)
    return folded, dataclasses.replace(config, in_channels=1, out_channels=1)

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
  then added to an upsampling of the input: bicubic, or with ``residual_upsample="fourier"``
  zero-padded k-space (sinc interpolation), the natural base for MR images whose low
  resolution is a truncated k-space;
- ``decoder_upsample="resize"`` replaces the decoder's transposed convolutions by nearest 2x
  upsampling + 3x3 convolution (Odena et al. 2016, "Deconvolution and checkerboard
  artifacts"): a transposed 4x4 stride-2 convolution gives its two output phases
  different kernels and paints a regular grid wherever the decoder invents content
  (inpainting's large holes). A resize-convolution is a transposed one whose phases are
  tied, so :meth:`UNetGenerator.adapt_state_dict` can start it from a transposed-conv
  checkpoint (the nearest tied kernel, least squares).

The whole layout is a plain :class:`UNetConfig`, stored inside every checkpoint, so the
network is always rebuilt from the file and never from CLI defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restore.metrics.imresize import cubic
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
    residual_upsample: str = "bicubic"  # what the residual is added to when upscaling: bicubic | fourier
    gated: bool = False  # gated head and downsampling convolutions (inpainting)
    decoder_upsample: str = "transposed"  # the decoder's 2x steps: transposed (pix2pix) | resize (no checkerboard)

    # the names these settings have in files written before they were renamed (weights
    # headers, recipes); restore.nets.parse_network_spec reads them as the new ones
    RENAMED: ClassVar[dict[str, str]] = {"upsample": "residual_upsample", "upsampling": "decoder_upsample"}
    # upper bounds far above any useful network, so a file's header cannot make restore
    # build a network for minutes or allocate without end before its tensors are checked
    LIMITS: ClassVar[dict[str, int]] = {"in_channels": 64, "out_channels": 64, "extra_channels": 64,
                                        "base_channels": 4096, "depth": 12, "max_channels": 8192,
                                        "blocks_per_level": 32, "upscale": 4}

    def channels_at(self, level: int) -> int:
        return min(self.base_channels * 2**level, self.max_channels)


class UNetGenerator(nn.Module):
    """Encoder-decoder with additive skips. Input ``(B, in+extra, H, W)``, output
    ``(B, out, H*upscale, W*upscale)``; H and W must be multiples of :attr:`size_multiple`."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        if config.upscale not in (1, 2, 3, 4):
            raise ValueError(f"upscale must be 1, 2, 3 or 4, not {config.upscale}")
        if config.residual_upsample not in RESIDUAL_UPSAMPLES:
            raise ValueError(f"residual_upsample must be {' or '.join(RESIDUAL_UPSAMPLES)}, "
                             f"not {config.residual_upsample!r}")
        if config.decoder_upsample not in DECODER_UPSAMPLES:
            raise ValueError(f"decoder_upsample must be {' or '.join(DECODER_UPSAMPLES)}, "
                             f"not {config.decoder_upsample!r}")
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
                    self._upsampler(width[level + 1], width[level]),
                    nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
                )
            )
            self.decoder.append(self._blocks(width[level]))
        self.tail = self._tail(width[0])

    def _upsampler(self, in_channels: int, out_channels: int) -> nn.Module:
        if self.config.decoder_upsample == "transposed":
            return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        return ResizeConv2d(in_channels, out_channels)

    def adapt_state_dict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state_dict`` of a U-Net with transposed-convolution upsampling, made to fit this
        resize-convolution one (training starts from it: ``init_weights``). Each 4x4
        transposed kernel becomes the 3x3 kernel whose resize-convolution is nearest to it in least squares: exact when the transposed
        kernel's two output phases already agree, and otherwise what is dropped is
        precisely the part that drew the checkerboard.

        A head with more extra input channels than this one's (a noise-map denoiser given
        to a blind one) loses the extra channels' kernels: the same network fed a zero map."""
        adapted = state_dict  # a state dict that fits comes back as it is
        head = state_dict.get("head.weight")
        inputs = self.config.in_channels + self.config.extra_channels
        if head is not None and head.ndim == 4 and head.shape[1] > inputs:
            adapted = {**state_dict, "head.weight": head[:, :inputs]}
        if self.config.decoder_upsample != "resize":
            return adapted
        adapted = dict(adapted)
        for index in range(len(self.up)):
            kernel = state_dict.get(f"up.{index}.0.weight")
            if kernel is not None and kernel.shape[-2:] == (4, 4):
                adapted[f"up.{index}.0.weight"] = resize_kernel_from_transposed(kernel)
        return adapted

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
        if c.upscale > 1 and c.residual_upsample == "fourier":
            image = fourier_upsample(image, c.upscale)
        elif c.upscale > 1:
            image = bicubic_upsample(image, c.upscale)
        return image + out


RESIDUAL_UPSAMPLES = ("bicubic", "fourier")
DECODER_UPSAMPLES = ("transposed", "resize")

# Per axis, the taps (k = 0..3) of a 4x4 stride-2 padding-1 transposed convolution that a
# nearest-2x + 3x3 convolution with taps (w[-1], w[0], w[+1]) equals: output phase 0 takes
# input j-1 with k=3 (= w[-1]) and input j with k=1 (= w[0] + w[+1]); phase 1 takes input
# j with k=2 (= w[-1] + w[0]) and input j+1 with k=0 (= w[+1]).
_RESIZE_TO_TRANSPOSED = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class ResizeConv2d(nn.Module):
    """Nearest 2x upsampling followed by a 3x3 convolution (``weight``: ``(out, in, 3, 3)``),
    computed as the transposed 4x4 stride-2 convolution it equals (its kernel has tied
    phases, :data:`_RESIZE_TO_TRANSPOSED`): the same result with the transposed
    convolution's multiply-adds, 4/9 of those of convolving the upsampled map."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        reference = nn.Conv2d(in_channels, out_channels, 3, padding=1)  # PyTorch's default init
        self.weight = nn.Parameter(reference.weight.detach().clone())
        self.bias = nn.Parameter(reference.bias.detach().clone())
        self.register_buffer("taps", _RESIZE_TO_TRANSPOSED.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.taps.to(self.weight.dtype)
        kernel = torch.einsum("ky,oiyx,lx->iokl", taps, self.weight, taps)
        return F.conv_transpose2d(x, kernel.to(x.dtype), self.bias.to(x.dtype), stride=2, padding=1)


def resize_kernel_from_transposed(kernel: torch.Tensor) -> torch.Tensor:
    """``(in, out, 4, 4)`` ConvTranspose2d weight -> the ``(out, in, 3, 3)`` Conv2d weight
    that, after nearest 2x upsampling, is nearest to it (least squares over the 16 taps)."""
    fit = torch.linalg.pinv(_RESIZE_TO_TRANSPOSED)
    return (fit @ kernel.float() @ fit.T).transpose(0, 1).contiguous().to(kernel.dtype)


def bicubic_upsample(image: torch.Tensor, scale: int) -> torch.Tensor:
    """``F.interpolate``'s bicubic upsampling of ``(B, C, h, w)`` by ``scale`` (2, 3 or 4;
    ``align_corners=False``, borders replicated). While the network is exported to ONNX it is
    written as the fixed depthwise convolution and pixel shuffle it equals (to float
    rounding): OpenVINO's Resize took 10 ms of superres-x4's 45 ms graph (bf16, a 128x128
    input), the convolution under 1 ms (``bench/backend_profile.py --layers``). The
    convolution is grouped per channel: folding the channels into the batch instead exports
    Reshapes that OpenVINO's int8 pipeline gets wrong. torch keeps ``F.interpolate``, which
    stays in float32 under bf16 autocast, where a convolution would not."""
    if not torch.onnx.is_in_onnx_export():
        return F.interpolate(image, scale_factor=scale, mode="bicubic", align_corners=False)
    channels = int(image.shape[1])  # a constant of the graph (the network's), unlike height and width
    kernel = bicubic_phase_kernels(scale).to(image.dtype).repeat(channels, 1, 1, 1)
    padded = F.pad(image, (2, 2, 2, 2), mode="replicate")
    return F.pixel_shuffle(F.conv2d(padded, kernel, groups=channels), scale)


def bicubic_phase_kernels(scale: int) -> torch.Tensor:
    """``(scale**2, 1, 5, 5)``: for each output phase ``(a, b)`` of a ``scale``-times bicubic
    upsampling (Keys' kernel with a = -0.75, as PyTorch and OpenCV use), the weights it gives
    the 5x5 input neighbourhood centred on the output's source pixel; channel ``a * scale + b``
    is what :func:`F.pixel_shuffle` puts at offset ``(a, b)``."""
    taps = np.zeros((scale, 5))
    for phase in range(scale):
        source = (phase + 0.5) / scale - 0.5  # relative to the input pixel the phase belongs to
        floor = math.floor(source)
        # the four input pixels floor-1 .. floor+2, at offsets -2 .. 2
        taps[phase, floor + 1 : floor + 5] = cubic(source - floor - np.arange(-1, 3), a=-0.75)
    return torch.from_numpy(np.einsum("ay,bx->abyx", taps, taps).reshape(scale * scale, 1, 5, 5)).float()


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

"""Camera-like noise: what a phone or DSLR photo's grain looks like after the camera's pipeline.

Gaussian noise of one level added to sRGB values is not what a camera makes. The sensor
counts photons in linear light, so its noise is shot noise (variance proportional to the
signal) plus read noise (a constant floor); the raw mosaic is demosaiced, which spreads
each pixel's noise over its neighbours and across channels; the result is gamma-encoded
(which amplifies the noise in the shadows) and often JPEG-compressed, which smears it into
blotches. :func:`camera_noise` synthesises that chain, after Brooks et al., "Unprocessing
Images for Learned Raw Denoising" (CVPR 2019) and Guo et al.'s CBDNet (CVPR 2019):

    sRGB -> linear light -> [Bayer mosaic] -> + shot and read noise -> [bilinear demosaic]
         -> sRGB -> [JPEG at quality 70-95]

The shot and read levels are drawn per image as Brooks et al. draw them (log-uniform shot
level, read level log-linearly tied to it, with scatter), which spans clean base-ISO DSLR
frames to high-ISO phone shots. White balance and colour matrices are left out: they change
the noise's colour mix, not its kind, and JPEG and demosaicing already correlate channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from restore.tasks.degradations import chance, jpeg_roundtrip, uniform

# bilinear demosaicing: the missing samples of a channel are the mean of their neighbours
_GREEN_KERNEL = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4
_RED_BLUE_KERNEL = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4


@dataclass(frozen=True)
class CameraNoiseSettings:
    """The draws' ranges. ``shot``: the shot-noise level range (variance per unit of linear
    signal), log-uniform, Brooks et al.'s 1e-4 to 1.2e-2 by default; the read-noise
    variance follows as ``exp(2.18 log(shot) + 1.2 + N(0, 0.26))``. ``mosaic_prob``: the
    chance of a Bayer mosaic and bilinear demosaic; ``jpeg_prob`` and ``jpeg_quality``: the
    chance and the (inclusive) quality range of the final JPEG."""

    shot: tuple[float, float] = (1e-4, 1.2e-2)
    mosaic_prob: float = 0.5
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] = (70, 95)


def srgb_to_linear(image: torch.Tensor) -> torch.Tensor:
    """The sRGB transfer function inverted (IEC 61966-2-1): [0, 1] values to linear light."""
    image = image.clamp(0, 1)
    return torch.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(image: torch.Tensor) -> torch.Tensor:
    """Linear light in [0, 1] (clipped, as a camera clips) to sRGB values."""
    image = image.clamp(0, 1)
    return torch.where(image <= 0.0031308, image * 12.92, 1.055 * image.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def bayer_masks(height: int, width: int, phase: int) -> torch.Tensor:
    """``(3, H, W)`` 0/1 masks of an RGGB mosaic; ``phase`` 0-3 shifts it by one pixel down
    and/or right (GRBG, GBRG, BGGR), so a crop's corner is no fixed colour."""
    rows, cols = torch.arange(height)[:, None] + phase // 2, torch.arange(width)[None, :] + phase % 2
    red = (rows % 2 == 0) & (cols % 2 == 0)
    blue = (rows % 2 == 1) & (cols % 2 == 1)
    return torch.stack([red, ~(red | blue), blue]).float()


def demosaic_bilinear(mosaic: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` from a ``(H, W)`` mosaic sampled through ``masks``: each channel keeps
    its own samples and fills the others with the mean of the nearest ones (edges
    reflected, replicated on images under 2 pixels)."""
    sparse = (mosaic[None] * masks)[None]
    mode = "reflect" if min(mosaic.shape) > 1 else "replicate"
    padded = F.pad(sparse, (1, 1, 1, 1), mode=mode)
    kernels = torch.stack([_RED_BLUE_KERNEL, _GREEN_KERNEL, _RED_BLUE_KERNEL])[:, None].to(mosaic.dtype)
    return F.conv2d(padded, kernels, groups=3)[0]


def noise_levels(generator: torch.Generator, settings: CameraNoiseSettings) -> tuple[float, float]:
    """``(shot, read)`` variances of one image, drawn as Brooks et al. draw them."""
    log_shot = uniform(generator, math.log(settings.shot[0]), math.log(settings.shot[1]))
    scatter = float(torch.randn((), generator=generator, dtype=torch.float64)) * 0.26
    return math.exp(log_shot), math.exp(2.18 * log_shot + 1.2 + scatter)


def camera_noise(
    image: torch.Tensor, generator: torch.Generator, settings: CameraNoiseSettings = CameraNoiseSettings()
) -> torch.Tensor:
    """``(C, H, W)`` sRGB [0, 1] with camera-like noise (module docstring). Grey images (one
    channel) skip the mosaic. Every draw is made whether or not it is used, so one seed
    gives the same levels whatever the branches."""
    shot, read = noise_levels(generator, settings)
    mosaic = chance(generator, settings.mosaic_prob) and image.shape[0] == 3
    phase = int(torch.randint(4, (1,), generator=generator))
    jpeg = chance(generator, settings.jpeg_prob)
    quality = int(torch.randint(settings.jpeg_quality[0], settings.jpeg_quality[1] + 1, (1,), generator=generator))
    linear = srgb_to_linear(image)
    if mosaic:
        masks = bayer_masks(*image.shape[1:], phase).to(image.dtype)
        signal = (linear * masks).sum(dim=0)
        noisy = signal + torch.randn(signal.shape, generator=generator, dtype=image.dtype) * torch.sqrt(
            shot * signal + read)
        linear = demosaic_bilinear(noisy, masks)
    else:
        linear = linear + torch.randn(linear.shape, generator=generator, dtype=image.dtype) * torch.sqrt(
            shot * linear + read)
    noisy = linear_to_srgb(linear)
    return jpeg_roundtrip(noisy, quality) if jpeg else noisy

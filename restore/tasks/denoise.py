"""Denoising: additive noise with a known (or estimated) level, FFDNet/DRUNet style.

The network sees the noisy image plus a noise-level map (per-pixel sigma in [0, 1]
units) as an extra channel. Training draws sigma uniformly per image, so one model
serves sigma 0-50 and the user can turn the strength up or down at inference.

With ``grey_fraction`` > 0 a share of the crops is turned grey (BT.601 luma, replicated
to RGB, with the same noise in every channel). That is exactly what a grey image looks
like when :class:`restore.model.Restorer` hands it to a colour model, so one set of
weights serves both, instead of the colour model meeting channel-correlated noise it
never saw in training.

Noise model ``camera`` (:mod:`restore.tasks.camera_noise`) is a camera's noise rather than
additive noise of one level: a blind network (``blind``) trained on it is ``denoise-real``,
which ``model = "real"`` picks. ``camera_shot`` widens its shot-noise range (down to nearly
clean photos, which the blind net must learn to leave alone).

With ``saturation_fraction`` > 0 a share of the crops gets its chroma scaled by up to
``saturation_max`` (clipped to [0, 1]): the Berkeley and T91 photos are muted, and a net that
never saw saturated colour flattens it (McMaster's scans are the test of that).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from restore.engine.tiling import TileReader
from restore.io.convert import luma
from restore.tasks.base import Task, TaskOptions
from restore.tasks.camera_noise import CameraNoiseSettings, camera_noise
from restore.tasks.degradations import chance, jpeg_roundtrip, uniform

NOISE_MODELS = ("gaussian", "poisson_gaussian", "jpeg_gaussian", "camera")
DENOISE_MODELS = ("gaussian", "real")  # --model: the noise-map models, or the blind camera-noise one
ESTIMATE_PIXELS = 16_000_000  # noise estimation reads bigger images in bands of this size


def network_input(noisy: torch.Tensor, sigma_map: torch.Tensor) -> torch.Tensor:
    """Concatenate the noisy image ``(..., C, H, W)`` with its sigma map ``(..., 1, H, W)``."""
    return torch.cat([noisy, sigma_map], dim=-3)


def estimate_sigma(image: torch.Tensor) -> float:
    """Noise level of a ``(1, C, H, W)`` [0, 1] image on the 0-255 scale (wavelet MAD
    estimator of Donoho & Johnstone, via scikit-image), averaged over channels.

    scikit-image takes the median of the non-zero detail coefficients only, so a flat
    channel (a solid colour, a blank scan) gives NaN: it has no noise, so it counts as 0."""
    from skimage.restoration import estimate_sigma as skimage_estimate_sigma

    array = image[0].permute(1, 2, 0).double().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the empty median's, handled below
        # each channel is passed on as 2-D; on images at most 4 wide scikit-image guesses
        # that the last axis might be colour channels and says so
        warnings.filterwarnings("ignore", "image is size", UserWarning)
        sigmas = np.asarray(skimage_estimate_sigma(array, channel_axis=-1, average_sigmas=False), dtype=np.float64)
    return 255.0 * float(np.nan_to_num(sigmas, nan=0.0).mean())


def estimate_sigma_in_bands(read: TileReader, height: int, width: int) -> float:
    """:func:`estimate_sigma` of the whole image, or for one of more than
    ``ESTIMATE_PIXELS`` pixels the mean over horizontal bands of about that size (the
    estimator works in float64: a 100-megapixel image would need 2.4 GB at once)."""
    band = max(16, ESTIMATE_PIXELS // width)
    starts = range(0, height, band)
    sigmas = [estimate_sigma(read(top, min(top + band, height), 0, width)) for top in starts]
    rows = [min(top + band, height) - top for top in starts]
    return float(np.average(sigmas, weights=rows))


@dataclass(frozen=True)
class DenoiseOptions(TaskOptions):
    """``sigma``: the noise level on the 0-255 scale (relative to the full range, also for
    16-bit images), or ``"auto"`` to estimate it per image. A number of any kind (a numpy
    scalar) is kept as a Python float, as report.json records it. ``strength``: the share
    of the change kept, 0 (the input) to 1 (the network's output), so texture and grain can
    be left in as a retoucher wants (the same blend as ``restore medical --strength``).
    ``model`` picks the shipped weights (:data:`DENOISE_MODELS`)."""

    sigma: float | str = "auto"
    strength: float = 1.0
    model: str = "gaussian"

    def __post_init__(self) -> None:
        if isinstance(self.sigma, numbers.Real):
            object.__setattr__(self, "sigma", float(self.sigma))
        if not isinstance(self.strength, numbers.Real) or not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be a number from 0 to 1, not {self.strength!r}")
        object.__setattr__(self, "strength", float(self.strength))


class DenoiseTask(Task):
    name = "denoise"
    options_type = DenoiseOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        """``options["blind"]``: the network takes the noisy image alone, without a noise-level
        map (DnCNN and other community restoration models, :mod:`restore.zoo`)."""
        super().__init__(options)
        self.blind = bool((options or {}).get("blind", False))
        self.model = (options or {}).get("model", "gaussian")
        if self.model not in DENOISE_MODELS:  # refused now, not at the first image
            raise ValueError(f"denoise: unknown model {self.model!r}; available: {', '.join(DENOISE_MODELS)}")

    def default_weights(self, channels: int) -> list[str]:
        if self.model == "real":  # trained on grey crops too (grey_fraction)
            return ["denoise-real"]
        # a grey image given to the colour model is replicated to RGB and averaged back
        return ["denoise-gray", "denoise-color"] if channels == 1 else ["denoise-color"]

    def image_options(
        self, read: TileReader, height: int, width: int, options: DenoiseOptions
    ) -> tuple[DenoiseOptions, dict[str, Any]]:
        """The noise level of the image: ``options.sigma``, or estimated (``"auto"``). A
        blind network needs none (and ignores a given one, with a warning)."""
        estimated = isinstance(options.sigma, str) and options.sigma == "auto"
        if self.blind:
            ignored = {} if estimated else {"warning": "--sigma has no effect: the model is a blind denoiser"}
            return options, {"sigma": None, **ignored}
        level = estimate_sigma_in_bands(read, height, width) if estimated else float(options.sigma)
        if estimated and level > 255:
            raise ValueError(f"the estimated noise level {level:.4g} is above 255 (on the 0-255 scale): float "
                             "images must hold values in [0, 1]; rescale it, or give the level with --sigma")
        if not 0 <= level <= 255:
            raise ValueError(f"sigma must be between 0 and 255, not {level}")
        return replace(options, sigma=level), {"sigma": round(level, 3), "sigma_estimated": estimated}

    def inference_input(self, image: torch.Tensor, options: DenoiseOptions) -> torch.Tensor:
        if self.blind:
            return image
        sigma_map = torch.full((image.shape[0], 1, *image.shape[2:]), options.sigma / 255.0)
        return network_input(image, sigma_map)

    def postprocess(self, output: np.ndarray, image: np.ndarray, options: DenoiseOptions) -> np.ndarray:
        """``image + strength x (output - image)``, rounded to the output's integer type."""
        if options.strength == 1.0:
            return output
        blended = image.astype(np.float64) + options.strength * (output.astype(np.float64) - image)
        if output.dtype.kind in "ui":
            limits = np.iinfo(output.dtype)
            return np.clip(np.rint(blended), limits.min, limits.max).astype(output.dtype)
        return blended.astype(output.dtype)

    def default_config(self) -> dict[str, Any]:
        return {
            "task_options": {"sigma_min": 0.0, "sigma_max": 50.0, "noise_models": ["gaussian"]},
            "generator": {
                "arch": "unet",
                "in_channels": 3,
                "out_channels": 3,
                "extra_channels": 1,
                "base_channels": 32,
                "depth": 4,
                "max_channels": 128,
                "blocks_per_level": 1,
                "residual": True,
            },
        }

    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        models = options.get("noise_models", ["gaussian"])
        unknown = set(models) - set(NOISE_MODELS)
        if unknown:
            raise ValueError(f"unknown noise model(s) {sorted(unknown)}; known: {NOISE_MODELS}")
        model = models[int(torch.randint(len(models), (1,), generator=generator))]
        low, high = options.get("sigma_min", 0.0) / 255, options.get("sigma_max", 50.0) / 255
        sigma = low + (high - low) * float(torch.rand((), generator=generator))
        grey_fraction = options.get("grey_fraction", 0.0)
        grey = grey_fraction > 0 and float(torch.rand((), generator=generator)) < grey_fraction
        if grey:
            clean = to_grey_rgb(clean)
        elif options.get("saturation_fraction", 0.0) > 0 and chance(generator, options["saturation_fraction"]):
            clean = saturated(clean, uniform(generator, 1.0, options.get("saturation_max", 2.0)))
        if model == "camera":
            settings = CameraNoiseSettings(shot=tuple(options.get("camera_shot", CameraNoiseSettings.shot)))
            # a grey photo's grain is the same in every channel: made on the luma, replicated
            noisy = camera_noise(clean[:1] if grey else clean, generator, settings).expand_as(clean)
            if self.blind:
                return noisy, clean
            return network_input(noisy, torch.full((1, *clean.shape[1:]), float((noisy - clean).std()))), clean
        base = clean
        if model == "jpeg_gaussian":
            quality = int(torch.randint(30, 96, (1,), generator=generator))
            base = jpeg_roundtrip(clean, quality)
        noise = torch.randn((1, *clean.shape[1:]) if grey else clean.shape, generator=generator).expand_as(clean)
        sigma_map = torch.full((1, *clean.shape[1:]), sigma)
        if model == "poisson_gaussian":
            # shot noise grows with intensity: std^2 = a * x + sigma^2, a up to sigma_max^2
            gain = high**2 * float(torch.rand((), generator=generator))
            std = torch.sqrt(gain * clean.clamp(min=0) + sigma**2)
            noisy, sigma_map = clean + noise * std, std.mean(dim=0, keepdim=True)
        else:
            noisy = base + noise * sigma
        return (noisy if self.blind else network_input(noisy, sigma_map)), clean


def saturated(image: torch.Tensor, factor: float) -> torch.Tensor:
    """A ``(3, H, W)`` image with its chroma (the difference from its luma) scaled by
    ``factor``, clipped to [0, 1]: strong colours, some of them clipped as in a saturated scan."""
    grey = luma(image)
    return (grey + factor * (image - grey)).clamp(0, 1)


def to_grey_rgb(image: torch.Tensor) -> torch.Tensor:
    """A ``(C, H, W)`` image as BT.601 luma replicated to ``C`` channels (grey stays grey)."""
    if image.shape[0] == 1:
        return image
    return luma(image).expand_as(image).contiguous()

"""Image degradation primitives and Real-ESRGAN's second-order degradation model.

Real photos are not bicubic downscalings: they are blurred by optics and motion, resized by
cameras and websites with whatever resampler, noisy (sensor shot and read noise) and JPEG
compressed, often more than once. Real-ESRGAN (Wang et al., 2021) synthesises that by
applying blur -> resize -> noise -> JPEG twice, then a final resize to the LR size with an
optional sinc (ringing) filter, every parameter drawn at random. A model trained on such
pairs restores real photos; one trained on bicubic pairs only sharpens clean ones.

Every primitive works on a ``(C, H, W)`` float tensor in [0, 1] and draws its randomness
from the ``torch.Generator`` it is given and nothing else, so a training pair is a pure
function of the sample's generator (see :mod:`restore.engine.data`). Other tasks
(inpainting, medical) reuse the primitives for their own degradations.

:data:`REAL_ESRGAN_FIRST`, :data:`REAL_ESRGAN_SECOND` and ``final_sinc_prob = 0.8`` are the
published defaults of ``options/train_realesrgan_x4plus.yml`` (Real-ESRGAN repository).
Differences from the original, all deliberate: the degradation runs per sample on the CPU
(the original runs per batch on the GPU), JPEG is OpenCV's codec rather than a
differentiable JPEG, and the ground truth is not unsharp-masked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from restore.engine.config import merge_into
from restore.io.convert import luma

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")
KERNEL_SIZES = tuple(range(7, 22, 2))  # odd sizes 7..21, as Real-ESRGAN draws them


# -- random draws ------------------------------------------------------------------------


def uniform(generator: torch.Generator, low: float, high: float, dtype: torch.dtype = torch.float64) -> float:
    """A number in ``[low, high)``. A float32 draw takes other bits from the generator than a
    float64 one, so ``dtype`` is part of what a seed means: a caller keeps the one its
    recipes were trained with."""
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=dtype))


def chance(generator: torch.Generator, probability: float) -> bool:
    """True with ``probability``; always draws, so later draws do not depend on it."""
    return float(torch.rand((), generator=generator, dtype=torch.float64)) < probability


def choose(generator: torch.Generator, options: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
    """One of ``options``, uniformly or with the (unnormalised) ``weights``."""
    if weights is None:
        return options[int(torch.randint(len(options), (1,), generator=generator))]
    if len(weights) != len(options):
        raise ValueError(f"{len(options)} options but {len(weights)} probabilities")
    probabilities = torch.tensor(weights, dtype=torch.float64)
    return options[int(torch.multinomial(probabilities, 1, generator=generator))]


# -- blur kernels ------------------------------------------------------------------------


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """``x^T S^-1 x`` on a ``size`` x ``size`` grid centred on 0, for the covariance ``S``
    with standard deviations ``sigma_x``, ``sigma_y`` along axes rotated by ``theta``."""
    if size % 2 == 0:
        raise ValueError(f"kernel size must be odd, not {size}")
    cos, sin = math.cos(theta), math.sin(theta)
    rotation = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    covariance = rotation @ torch.diag(torch.tensor([sigma_x**2, sigma_y**2], dtype=torch.float64)) @ rotation.T
    axis = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    grid = torch.stack([xx, yy], dim=-1)  # (size, size, 2) as (x, y)
    return torch.einsum("...i,ij,...j->...", grid, torch.linalg.inv(covariance), grid)


def gaussian_kernel(
    size: int,
    sigma_x: float,
    sigma_y: float | None = None,
    theta: float = 0.0,
    beta: float = 1.0,
    shape: str = "gaussian",
) -> torch.Tensor:
    """A normalised ``(size, size)`` float32 blur kernel.

    ``shape``: ``gaussian`` (``exp(-q / 2)``), ``generalized`` (``exp(-(q / 2)^beta)`` up to
    the constant: heavier (beta < 1) or flatter (beta > 1) tails) or ``plateau``
    (``1 / (1 + q^beta)``: a flat top with slow fall-off), where ``q`` is the quadratic
    form of the (rotated, anisotropic when ``sigma_y`` differs) covariance."""
    quadratic = _quadratic_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    if shape == "gaussian":
        kernel = torch.exp(-0.5 * quadratic)
    elif shape == "generalized":
        kernel = torch.exp(-0.5 * quadratic.pow(beta))
    elif shape == "plateau":
        kernel = 1.0 / (quadratic.pow(beta) + 1.0)
    else:
        raise ValueError(f"unknown kernel shape {shape!r}: gaussian, generalized or plateau")
    return (kernel / kernel.sum()).float()


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    """The ideal circular low-pass filter with cutoff frequency ``cutoff`` (radians per
    pixel, up to pi), truncated to ``size`` x ``size``: it rings like sharpened or
    over-compressed images do. ``cutoff * J1(cutoff * r) / (2 pi r)``, normalised."""
    if size % 2 == 0:
        raise ValueError(f"kernel size must be odd, not {size}")
    axis = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    radius = torch.sqrt(xx**2 + yy**2)
    safe = torch.where(radius == 0, torch.ones_like(radius), radius)
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    kernel = torch.where(radius == 0, torch.full_like(radius, cutoff**2 / (4 * math.pi)), kernel)
    return (kernel / kernel.sum()).float()


@dataclass(frozen=True)
class BlurSettings:
    """How a random blur kernel is drawn (Real-ESRGAN's ``kernel_list`` ... ``betap_range``)."""

    kernel_list: tuple[str, ...] = KERNEL_TYPES
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_generalized: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1  # otherwise one of kernel_list


def _beta(generator: torch.Generator, low: float, high: float) -> float:
    """Half the draws below 1 and half above, as Real-ESRGAN draws its shape exponents, so
    both regimes are equally common whatever the range's asymmetry."""
    if low < 1 < high:
        return uniform(generator, low, 1.0) if chance(generator, 0.5) else uniform(generator, 1.0, high)
    return uniform(generator, low, high)


def random_blur_kernel(generator: torch.Generator, settings: BlurSettings) -> torch.Tensor:
    """A random kernel: size from 7..21 (odd), then sinc or one of ``kernel_list``."""
    size = choose(generator, KERNEL_SIZES)
    if chance(generator, settings.sinc_prob):
        # small kernels cannot hold a low cutoff's wide ringing (Real-ESRGAN's rule)
        low = math.pi / 3 if size < 13 else math.pi / 5
        return sinc_kernel(size, uniform(generator, low, math.pi))
    kind = choose(generator, settings.kernel_list, settings.kernel_prob)
    if kind not in KERNEL_TYPES:
        raise ValueError(f"unknown blur kernel {kind!r}; known: {', '.join(KERNEL_TYPES)}")
    sigma_x = uniform(generator, *settings.sigma)
    if kind.endswith("aniso"):
        sigma_y, theta = uniform(generator, *settings.sigma), uniform(generator, -math.pi, math.pi)
    else:
        sigma_y, theta = sigma_x, 0.0
    shape, beta = "gaussian", 1.0
    if kind.startswith("generalized"):
        shape, beta = "generalized", _beta(generator, *settings.beta_generalized)
    elif kind.startswith("plateau"):
        shape, beta = "plateau", _beta(generator, *settings.beta_plateau)
    return gaussian_kernel(size, sigma_x, sigma_y, theta, beta, shape)


def blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel of ``(C, H, W)`` with ``kernel``, edges reflected (replicated
    where the image is smaller than the kernel's reach)."""
    radius = kernel.shape[-1] // 2
    mode = "reflect" if min(image.shape[-2:]) > radius else "replicate"
    padded = F.pad(image[None], (radius,) * 4, mode=mode)
    weight = kernel.to(image.dtype).expand(image.shape[0], 1, *kernel.shape)
    return F.conv2d(padded, weight, groups=image.shape[0])[0]


# -- resize, noise, JPEG -----------------------------------------------------------------


def resize(image: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
    """``(C, H, W)`` resized with PyTorch's ``mode`` (area, bilinear, bicubic), without
    antialiasing: camera and web resizers alias too, which is what the model must undo."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; known: {', '.join(RESIZE_MODES)}")
    align = {"align_corners": False} if mode != "area" else {}
    return F.interpolate(image[None], size=(max(1, height), max(1, width)), mode=mode, **align)[0]


def add_gaussian_noise(image: torch.Tensor, sigma: float, grey: bool, generator: torch.Generator) -> torch.Tensor:
    """``image + N(0, sigma / 255)``, clipped; ``grey`` noise is the same in every channel
    (luma noise), otherwise independent per channel (chroma noise)."""
    shape = (1, *image.shape[1:]) if grey else image.shape
    noise = torch.randn(shape, generator=generator, dtype=image.dtype) * (sigma / 255.0)
    return (image + noise).clamp(0, 1)


def add_poisson_noise(image: torch.Tensor, scale: float, grey: bool, generator: torch.Generator) -> torch.Tensor:
    """Shot noise, as Real-ESRGAN models it: the 8-bit image's ``n`` distinct levels are
    taken as photon counts ``2^ceil(log2 n)``, Poisson-sampled, and the difference is
    scaled by ``scale`` (larger = noisier). ``grey`` computes it on the BT.601 luma and
    adds it to every channel."""
    source = luma(image) if grey and image.shape[0] == 3 else image
    quantised = (source * 255).round().clamp(0, 255) / 255
    levels = 2 ** math.ceil(math.log2(int(torch.unique(quantised).numel())))
    noise = torch.poisson(quantised * levels, generator=generator) / levels - quantised
    return (image + noise * scale).clamp(0, 1)


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode a ``(C, H, W)`` [0, 1] tensor (1 or 3 channels) as JPEG at ``quality`` with
    OpenCV and decode it again."""
    array = (image.clamp(0, 1).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    bgr = np.ascontiguousarray(array[:, :, ::-1])  # OpenCV's JPEG colour transform expects BGR
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).reshape(array.shape)[:, :, ::-1]
    return torch.from_numpy(decoded.transpose(2, 0, 1).astype(np.float32) / 255).to(image.dtype)


# -- Real-ESRGAN's second-order model ----------------------------------------------------


@dataclass(frozen=True)
class DegradationStage:
    """One blur -> resize -> noise -> JPEG round (Real-ESRGAN's first or second process)."""

    blur: BlurSettings = BlurSettings()
    blur_prob: float = 1.0
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5  # otherwise Poisson noise
    noise_range: tuple[float, float] = (1.0, 30.0)  # Gaussian sigma on the 0-255 scale
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)


REAL_ESRGAN_FIRST = DegradationStage()
REAL_ESRGAN_SECOND = DegradationStage(
    blur=BlurSettings(sigma=(0.2, 1.5)),
    blur_prob=0.8,
    resize_prob=(0.3, 0.4, 0.3),
    resize_range=(0.3, 1.2),
    noise_range=(1.0, 25.0),
    poisson_scale_range=(0.05, 2.5),
)


@dataclass(frozen=True)
class SecondOrderSettings:
    """The whole pipeline: two stages, then resize to the LR size with a final sinc filter
    (probability ``final_sinc_prob``) before or after the last JPEG."""

    first: DegradationStage = REAL_ESRGAN_FIRST
    second: DegradationStage = REAL_ESRGAN_SECOND
    final_sinc_prob: float = 0.8


def _random_resize_factor(generator: torch.Generator, stage: DegradationStage) -> float:
    direction = choose(generator, ("up", "down", "keep"), stage.resize_prob)
    if direction == "up":
        return uniform(generator, 1.0, stage.resize_range[1])
    if direction == "down":
        return uniform(generator, stage.resize_range[0], 1.0)
    return 1.0


def _random_noise(image: torch.Tensor, generator: torch.Generator, stage: DegradationStage) -> torch.Tensor:
    gaussian = chance(generator, stage.gaussian_noise_prob)
    strength = uniform(generator, *(stage.noise_range if gaussian else stage.poisson_scale_range))
    grey = chance(generator, stage.gray_noise_prob)
    if gaussian:
        return add_gaussian_noise(image, strength, grey, generator)
    return add_poisson_noise(image, strength, grey, generator)


def _random_jpeg(image: torch.Tensor, generator: torch.Generator, stage: DegradationStage) -> torch.Tensor:
    return jpeg_roundtrip(image, round(uniform(generator, *stage.jpeg_range)))


def _final_sinc(generator: torch.Generator, probability: float) -> torch.Tensor | None:
    if not chance(generator, probability):
        return None
    return sinc_kernel(choose(generator, KERNEL_SIZES), uniform(generator, math.pi / 3, math.pi))


def second_order_degradation(
    image: torch.Tensor, scale: int, generator: torch.Generator, settings: SecondOrderSettings = SecondOrderSettings()
) -> torch.Tensor:
    """Real-ESRGAN's degradation of a clean ``(C, H, W)`` image to ``(C, H // scale, W // scale)``,
    rounded to 8 bits. ``scale = 1`` gives a same-size degraded image (for restoration
    tasks that do not upscale)."""
    height, width = image.shape[-2:]
    low_height, low_width = height // scale, width // scale
    if low_height < 1 or low_width < 1:
        raise ValueError(f"a {height}x{width} image is smaller than the scale {scale}")
    out = image
    # first process: relative to the input size
    first = settings.first
    if chance(generator, first.blur_prob):
        out = blur(out, random_blur_kernel(generator, first.blur))
    factor = _random_resize_factor(generator, first)
    out = resize(out, int(height * factor), int(width * factor), choose(generator, RESIZE_MODES))
    out = _random_jpeg(_random_noise(out, generator, first), generator, first)
    # second process: relative to the LR size
    second = settings.second
    if chance(generator, second.blur_prob):
        out = blur(out, random_blur_kernel(generator, second.blur))
    factor = _random_resize_factor(generator, second)
    out = resize(out, int(low_height * factor), int(low_width * factor), choose(generator, RESIZE_MODES))
    out = _random_noise(out, generator, second)
    # resize back (+ sinc) and JPEG, in either order: other orders make twisted lines
    sinc = _final_sinc(generator, settings.final_sinc_prob)
    resize_first = chance(generator, 0.5)
    mode = choose(generator, RESIZE_MODES)
    if not resize_first:
        out = _random_jpeg(out, generator, second)
    out = resize(out, low_height, low_width, mode)
    if sinc is not None:
        out = blur(out, sinc)
    if resize_first:
        out = _random_jpeg(out.clamp(0, 1), generator, second)
    return (out.clamp(0, 1) * 255).round() / 255


def second_order_settings(options: dict[str, Any]) -> SecondOrderSettings:
    """Settings from a recipe table (``[task_options.real]``): ``final_sinc_prob`` and
    ``first``/``second`` tables of :class:`DegradationStage` fields, each with an optional
    ``blur`` table of :class:`BlurSettings` fields; anything left out keeps Real-ESRGAN's
    default. Unknown keys are errors, so a misspelt one cannot silently do nothing."""
    return merge_into(SecondOrderSettings(), options, "real.")

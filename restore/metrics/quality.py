"""PSNR and SSIM exactly as the restoration literature computes them.

Published tables differ by tenths of a dB, so "PSNR" must mean the same thing as in the
papers we compare with. These follow BasicSR's ``calculate_psnr`` / ``calculate_ssim``
(which reproduce MATLAB's):

- the data range comes from the dtype (uint8 255, uint16 65535, float 1.0) unless given,
  so a uint8 result is never measured as if it were in [0, 1];
- ``crop_border`` removes that many pixels on every side first (super-resolution crops
  the scale factor, because bicubic borders are not comparable);
- ``y_channel`` measures the BT.601 luma of RGB inputs, as MATLAB's ``rgb2ycbcr``:
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (R, G, B in [0, 1], Y on the 0-255 scale).
  Like BasicSR, Y is not rounded to integers; grey inputs are measured as they are;
- SSIM is Wang et al. (2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
  K2 = 0.03, statistics over "valid" windows only (no padding), averaged over pixels and
  channels. Unlike Wang's ``ssim.m`` there is no automatic downsampling of big images,
  as in BasicSR and every denoising/SR paper built on it.

Images are numpy ``(H, W)`` / ``(H, W, C)`` arrays or torch ``(C, H, W)`` /
``(B, C, H, W)`` tensors, RGB channel order. A batch scores the mean of its per-image
values (papers average per image, not the pooled MSE). Everything is computed in
float64 on the tensor's device.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from restore.io.convert import dtype_scale

ImageLike = np.ndarray | torch.Tensor

# BT.601 luma on the 0-255 scale from RGB in [0, 1] (MATLAB rgb2ycbcr, BasicSR rgb2ycbcr)
Y_OFFSET = 16.0
Y_WEIGHTS = (65.481, 128.553, 24.966)

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(
    prediction: ImageLike,
    target: ImageLike,
    data_range: float | None = None,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    prediction_unit, target_unit = _prepare(prediction, target, data_range, crop_border, y_channel)
    mse = ((prediction_unit - target_unit) ** 2).mean(dim=(1, 2, 3))
    scores = [math.inf if value == 0 else -10.0 * math.log10(value) for value in mse.tolist()]
    return sum(scores) / len(scores)


def ssim(
    prediction: ImageLike,
    target: ImageLike,
    data_range: float | None = None,
    *,
    crop_border: int = 0,
    y_channel: bool = False,
) -> float:
    """Structural similarity (Wang et al. 2004), mean over channels and batch."""
    prediction_unit, target_unit = _prepare(prediction, target, data_range, crop_border, y_channel)
    height, width = prediction_unit.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (after any border crop), "
            f"got {height}x{width}"
        )
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # the data range is 1 after _prepare
    mu_x, mu_y = _gaussian_valid(prediction_unit), _gaussian_valid(target_unit)
    var_x = _gaussian_valid(prediction_unit**2) - mu_x**2
    var_y = _gaussian_valid(target_unit**2) - mu_y**2
    cov_xy = _gaussian_valid(prediction_unit * target_unit) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3)).mean().item()


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1, H, W)`` BT.601 luma Y/255 (so in [16/255, 235/255])."""
    weights = torch.tensor(Y_WEIGHTS, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (Y_OFFSET + (image * weights).sum(dim=1, keepdim=True)) / 255.0


def gaussian_window_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalised 1-D Gaussian taps; the 2-D SSIM window is its outer product (as in
    ``cv2.getGaussianKernel(11, 1.5)`` and MATLAB's ``fspecial('gaussian', 11, 1.5)``)."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return taps / taps.sum()


def _gaussian_valid(image: torch.Tensor) -> torch.Tensor:
    """Per-channel Gaussian filtering over valid positions only (MATLAB ``filter2(..., 'valid')``).

    The window is separable, so it is two 1-D passes; each is a dot product over sliding
    windows, which runs on BLAS and is several times faster than a float64 ``conv2d`` on CPU."""
    taps = gaussian_window_1d().to(image.device)
    along_rows = image.unfold(-2, taps.numel(), 1) @ taps
    return along_rows.unfold(-1, taps.numel(), 1) @ taps


def _prepare(
    prediction: ImageLike, target: ImageLike, data_range: float | None, crop_border: int, y_channel: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both images as float64 ``(B, C, H, W)`` in [0, 1] units, cropped and (optionally) as Y."""
    prediction_batch, prediction_range = _as_batch(prediction)
    target_batch, target_range = _as_batch(target)
    if data_range is None:
        if prediction_range != target_range:
            raise ValueError(
                f"prediction is {_dtype_name(prediction)} (range {prediction_range:g}) but target is "
                f"{_dtype_name(target)} (range {target_range:g}): convert one of them or pass data_range"
            )
        data_range = prediction_range
    if prediction_batch.shape != target_batch.shape:
        raise ValueError(
            f"prediction shape {_layout(prediction)} does not match target shape {_layout(target)}"
        )
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, not {crop_border}")
    if crop_border:
        height, width = prediction_batch.shape[-2:]
        if 2 * crop_border >= min(height, width):
            raise ValueError(f"crop_border {crop_border} leaves nothing of a {height}x{width} image")
        prediction_batch = prediction_batch[..., crop_border:-crop_border, crop_border:-crop_border]
        target_batch = target_batch[..., crop_border:-crop_border, crop_border:-crop_border]
    prediction_batch = prediction_batch.to(target_batch.device) / data_range
    target_batch = target_batch / data_range
    if y_channel:
        channels = prediction_batch.shape[1]
        if channels == 3:
            prediction_batch, target_batch = rgb_to_y(prediction_batch), rgb_to_y(target_batch)
        elif channels != 1:
            raise ValueError(f"y_channel needs RGB (3 channels) or grey (1) images, not {channels} channels")
    return prediction_batch, target_batch


def _as_batch(image: ImageLike) -> tuple[torch.Tensor, float]:
    """A float64 ``(B, C, H, W)`` tensor and the value that means "full scale" for its dtype."""
    if isinstance(image, np.ndarray):
        full_scale = dtype_scale(image.dtype)
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3:
            raise ValueError(f"expected an (H, W) or (H, W, C) array, got shape {image.shape}")
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).double()[None], full_scale
    if isinstance(image, torch.Tensor):
        if image.dtype == torch.uint8:
            full_scale = 255.0
        elif image.is_floating_point():
            full_scale = 1.0
        else:
            raise TypeError(f"unsupported tensor dtype {image.dtype}: use uint8 or a float type")
        if image.ndim == 2:
            image = image[None]
        if image.ndim == 3:
            image = image[None]
        if image.ndim != 4:
            raise ValueError(f"expected a (C, H, W) or (B, C, H, W) tensor, got shape {tuple(image.shape)}")
        return image.double(), full_scale
    raise TypeError(f"expected a numpy array or torch tensor, not {type(image).__name__}")


def _dtype_name(image: ImageLike) -> str:
    return str(image.dtype).replace("torch.", "")


def _layout(image: ImageLike) -> str:
    kind = "array" if isinstance(image, np.ndarray) else "tensor"
    return f"{tuple(image.shape)} {kind}"

"""Physically motivated degradations of CT and MR slices, for training and evaluation.

Every function is pure: its randomness comes only from the ``torch.Generator`` it is
given, so a training sample is a function of ``(seed, index)`` (see restore.engine.data).
Images are 2-D float arrays.

- :func:`ct_low_dose`: noise simulated **in the projection domain** (not an image-domain
  approximation): the slice's attenuation is forward projected (scikit-image ``radon``),
  photon counts are drawn from a Poisson law at the chosen dose, and the noise they add
  to the line integrals is reconstructed by filtered back projection (``iradon``, ramp
  filter) and added to the slice. That gives CT noise its real texture: correlated,
  streaky, stronger behind dense structures. Reconstructing only the *difference*
  between noisy and clean sinograms keeps the FBP's own discretisation error out of the
  target. Training crops are small, so the rest of the body a ray crosses is folded
  into ``photons``: the counts reaching the crop.
- :func:`rician`: MR magnitude noise, ``|x + n_re + i n_im|`` with Gaussian ``n``.
- :func:`kspace_downsample`: MR low resolution the way a scanner makes it, by acquiring
  only the centre of k-space: truncation keeps the Gibbs ringing real scans show.
  :func:`zero_filled` is its classic baseline inverse (zero-padded k-space, sinc
  interpolation).
- :func:`slice_thickness_blur`: the partial-volume blur of a thick slice, a Gaussian
  slice profile of the given FWHM along one image axis (what a reformatted view of a
  thick-slice acquisition shows).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

WATER_ATTENUATION_PER_MM = 0.0193  # linear attenuation of water at ~70 keV (1/mm)
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def hu_to_attenuation(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) from Hounsfield units (HU = 1000 (mu - mu_w) / mu_w)."""
    return np.maximum(WATER_ATTENUATION_PER_MM * (1.0 + hu / 1000.0), 0.0)


def ct_low_dose(hu: np.ndarray, photons: float, pixel_mm: float, generator: torch.Generator) -> np.ndarray:
    """A low-dose version of a CT slice in HU: Poisson noise at ``photons`` counts per ray,
    reconstructed by filtered back projection. ``pixel_mm``: the slice's pixel size."""
    from skimage.transform import iradon, radon

    height, width = hu.shape
    side = max(height, width)
    padded = np.pad(hu_to_attenuation(hu), ((0, side - height), (0, side - width)))
    angles = np.linspace(0.0, 180.0, side, endpoint=False)
    line_integrals = radon(padded, theta=angles, circle=False) * pixel_mm
    expected = photons * np.exp(-line_integrals)
    counts = torch.poisson(torch.from_numpy(expected), generator=generator).numpy()
    noisy_integrals = -np.log(np.maximum(counts, 1.0) / photons)
    noise = iradon(noisy_integrals - line_integrals, theta=angles, output_size=side, filter_name="ramp", circle=False)
    noise_hu = 1000.0 * noise[:height, :width] / (pixel_mm * WATER_ATTENUATION_PER_MM)
    return hu + noise_hu


def rician(image: np.ndarray, sigma: float, generator: torch.Generator) -> np.ndarray:
    """Magnitude of ``image`` plus complex Gaussian noise of standard deviation ``sigma``."""
    real, imaginary = torch.randn((2, *image.shape), generator=generator, dtype=torch.float64).numpy() * sigma
    return np.sqrt((image + real) ** 2 + imaginary**2)


def kspace_downsample(image: np.ndarray, scale: int) -> np.ndarray:
    """The ``(H / scale, W / scale)`` magnitude image a scanner acquiring only the central
    k-space of ``image`` reconstructs; intensities keep their level."""
    height, width = image.shape
    if height % scale or width % scale:
        raise ValueError(f"a {height}x{width} slice is not a multiple of the scale {scale}")
    low_height, low_width = height // scale, width // scale
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    top, left = height // 2 - low_height // 2, width // 2 - low_width // 2
    centre = spectrum[top : top + low_height, left : left + low_width]
    return np.abs(np.fft.ifft2(np.fft.ifftshift(centre))) / scale**2


def zero_filled(image: np.ndarray, scale: int) -> np.ndarray:
    """Upsample by zero-padding k-space (sinc interpolation): the baseline for
    :func:`kspace_downsample`, which it inverts up to the lost high frequencies."""
    low_height, low_width = image.shape
    height, width = low_height * scale, low_width * scale
    spectrum = np.zeros((height, width), dtype=np.complex128)
    top, left = height // 2 - low_height // 2, width // 2 - low_width // 2
    spectrum[top : top + low_height, left : left + low_width] = np.fft.fftshift(np.fft.fft2(image))
    return np.abs(np.fft.ifft2(np.fft.ifftshift(spectrum))) * scale**2


def slice_thickness_blur(image: np.ndarray, fwhm: float, axis: int) -> np.ndarray:
    """Blur along ``axis`` with a Gaussian slice profile of ``fwhm`` pixels."""
    if fwhm <= 0:
        return image
    return gaussian_filter1d(image, fwhm / FWHM_PER_SIGMA, axis=axis, mode="reflect")

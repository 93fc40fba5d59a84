"""How much texture a region holds: the Sobel gradient of the luma.

PSNR rewards a smooth fill of a large hole (the mean of what could be there), so the
inpainting bench also asks whether a fill is as textured as what surrounds it, and the
real-world super-resolution bench whether the output is sharper than bicubic. Both measure
the mean Sobel gradient magnitude of the BT.601 luma, in 8-bit levels per pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

from restore.io.convert import LUMA_WEIGHTS

RING_WIDTH = 16  # pixels of known surroundings a hole's texture is compared with


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Per-pixel Sobel gradient magnitude of an 8-bit ``(H, W, 3)`` RGB or ``(H, W)`` grey
    image's luma, in levels per pixel (the 3x3 Sobel kernels divided by their weight, 8)."""
    luma = image.astype(np.float64) @ np.array(LUMA_WEIGHTS) if image.ndim == 3 else image.astype(np.float64)
    dx = cv2.Sobel(luma, cv2.CV_64F, 1, 0, ksize=3) / 8
    dy = cv2.Sobel(luma, cv2.CV_64F, 0, 1, ksize=3) / 8
    return np.hypot(dx, dy)


def texture_ratio(image: np.ndarray, hole: np.ndarray, ring: int = RING_WIDTH) -> float:
    """Mean gradient inside ``hole`` over the mean in a ``ring``-pixel band of known pixels
    around it: 1.0 is as textured as the surroundings, near 0 a smooth smear. Pixels whose
    3x3 Sobel window straddles the hole's edge count on neither side, so the seam between
    fill and known pixels is not mistaken for texture. NaN where either side is empty
    (holes thinner than 3 pixels) or the ring is flat (under 1 level per pixel: nothing to
    continue)."""
    kernel = np.ones((3, 3), np.uint8)
    hole_u8 = hole.astype(np.uint8)
    inside = cv2.erode(hole_u8, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    near = cv2.dilate(hole_u8, np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)).astype(bool)
    band = near & ~cv2.dilate(hole_u8, kernel).astype(bool)
    if not inside.any() or not band.any():
        return float("nan")
    gradient = gradient_magnitude(image)
    surroundings = float(gradient[band].mean())
    return float(gradient[inside].mean()) / surroundings if surroundings >= 1.0 else float("nan")

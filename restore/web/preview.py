"""An 8-bit PNG rendering of any image restore reads (16-bit, TIFF, float), for the page's
before/after view: browsers show few of those formats. Downloads are the real files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from restore.io.convert import dtype_scale
from restore.io.image import read_image


def display_png(path: Path, max_pixels: int) -> bytes:
    """The image at ``path`` as 8-bit PNG bytes (grey, RGB or RGBA as it is)."""
    image = read_image(path, max_pixels)
    pixels = image.pixels if image.alpha is None else np.concatenate([image.pixels, image.alpha[:, :, None]], axis=2)
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels.astype(np.float32) * (255 / dtype_scale(pixels.dtype))), 0, 255).astype(np.uint8)
    order = {1: None, 3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}[pixels.shape[2]]
    encoded = cv2.imencode(".png", pixels if order is None else cv2.cvtColor(pixels, order))[1]
    return encoded.tobytes()

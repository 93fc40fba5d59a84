"""Reading and writing image files (8/16-bit, float, grey, colour, alpha)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class ImageReadError(Exception):
    """An input that cannot be used, with a reason a user can act on."""


@dataclass
class Image:
    """Pixels as read from a file: ``pixels`` is ``(H, W, C)`` with C = 1 (grey) or 3 (RGB),
    in the file's dtype; ``alpha`` is ``(H, W)`` in the same dtype, or None."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]


def read_image(path: str | Path) -> Image:
    """Read an image file, keeping bit depth, grey/colour and alpha; RGB channel order."""
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ImageReadError(f"{path}: file is empty")
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageReadError(f"{path}: not a readable image (corrupt, truncated or unknown format)")
    return _split_channels(decoded)


def _split_channels(decoded: np.ndarray) -> Image:
    if decoded.ndim == 2:
        return Image(decoded[:, :, None])
    channels = decoded.shape[2]
    if channels == 1:
        return Image(decoded)
    if channels == 2:
        return Image(decoded[:, :, :1].copy(), decoded[:, :, 1].copy())
    if channels == 3:
        return Image(np.ascontiguousarray(decoded[:, :, ::-1]))
    if channels == 4:
        return Image(np.ascontiguousarray(decoded[:, :, 2::-1]), decoded[:, :, 3].copy())
    raise ImageReadError(f"unsupported channel count {channels}")

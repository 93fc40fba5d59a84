"""Display pictures of a run's inputs and outputs: 8-bit, small, input and output at one
size so that a before/after slider lines them up.

A picture is ``(H, W, C)`` uint8 with C = 1 (grey), 3 (RGB) or 4 (RGBA): 16-bit and float
images are scaled to 8 bits over their type's full range (as a viewer shows them), grey
stays grey and alpha is kept (the page puts a checkerboard behind it). Scans show their
middle slice, input and output in one intensity window taken from the input.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from restore.io.convert import dtype_scale
from restore.io.image import Image, read_image
from restore.io.limits import MAX_PIXELS, MAX_VOXELS

PREVIEW_SIDE = 640  # longest side of the slider's pictures: small files, sharp enough to judge
THUMB_SIDE = 96  # longest side of a row's thumbnail
JPEG_QUALITY = 82
SCAN_PERCENTILES = (0.5, 99.5)  # the window of a scan's picture, from its input's middle slice


def image_picture(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The picture of an image file (read as the batch reads it: EXIF orientation applied)."""
    return displayable(read_image(path, max_pixels))


def displayable(image: Image) -> np.ndarray:
    """``image`` as 8-bit pixels, alpha appended as a fourth channel (grey + alpha becomes RGBA)."""
    pixels = _to_uint8(image.pixels)
    if image.alpha is None:
        return pixels
    colour = pixels if pixels.shape[2] == 3 else np.repeat(pixels, 3, axis=2)
    return np.concatenate([colour, _to_uint8(image.alpha[..., None])], axis=2)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    scaled = array.astype(np.float32) * (255.0 / dtype_scale(array.dtype))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def scan_pictures(source: Path, output: Path, max_voxels: int = MAX_VOXELS) -> tuple[np.ndarray, np.ndarray]:
    """The middle slices of a scan and of its output (DICOM file or series folder, NIfTI,
    16-bit slice, .npy), both in the input's window of physical values (CT: HU)."""
    from restore.io.medical import read_volume

    before = _middle_slice(read_volume(source, max_voxels=max_voxels))
    after = _middle_slice(read_volume(output, max_voxels=max_voxels))
    low, high = np.percentile(before, SCAN_PERCENTILES)
    high = high if high > low else low + 1.0
    return _windowed(before, low, high), _windowed(after, low, high)


def _middle_slice(volume) -> np.ndarray:
    """The slice half-way along the acquisition's slice axis, of the first volume of a 4-D scan."""
    physical = volume.physical()
    plane = np.take(physical, physical.shape[volume.slice_axis] // 2, axis=volume.slice_axis)
    while plane.ndim > 2:  # volumes (time points, echoes) on the last axis
        plane = plane[..., 0]
    return plane


def _windowed(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    scaled = (plane - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)[..., None]


def fitted(picture: np.ndarray, side: int) -> np.ndarray:
    """``picture`` shrunk (area averaging) so that its longest side is at most ``side``."""
    height, width = picture.shape[:2]
    factor = side / max(height, width)
    if factor >= 1:
        return picture
    return resized(picture, max(1, round(height * factor)), max(1, round(width * factor)))


def resized(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """``picture`` at ``height`` x ``width``: area averaging down, bicubic up (a superres
    input scaled up to its output's size, as a viewer would show it)."""
    if picture.shape[:2] == (height, width):
        return picture
    shrinking = height * width < picture.shape[0] * picture.shape[1]
    result = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return result.reshape(height, width, picture.shape[2])


def picture_suffix(picture: np.ndarray) -> str:
    """PNG where there is alpha (JPEG has none), JPEG otherwise (a tenth of the size)."""
    return ".png" if picture.shape[2] == 4 else ".jpg"


def encoded(picture: np.ndarray, suffix: str | None = None) -> bytes:
    """The bytes of ``picture`` as ``suffix`` (``.png`` or ``.jpg``), by default the format
    :func:`picture_suffix` names."""
    suffix = suffix or picture_suffix(picture)
    if picture.shape[2] == 1:
        bgr = picture[..., 0]
    else:
        bgr = cv2.cvtColor(picture, cv2.COLOR_RGBA2BGRA if picture.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    parameters = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 6]
    ok, data = cv2.imencode(suffix, bgr, parameters)
    if not ok:
        raise ValueError(f"cannot encode a {picture.shape} preview as {suffix}")
    return data.tobytes()

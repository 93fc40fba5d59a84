"""Inpainting masks the way users have them, found per image in a fixed order:

1. ``--masks DIR``: a file with the image's relative path and stem under DIR (any image
   extension), e.g. ``in/a/b.jpg`` -> ``DIR/a/b.png``;
2. a sidecar next to the image: ``<stem>_mask.png``, else every ``<stem>_mask*.png``
   (LaMa's convention; several are united into one mask);
3. the image's alpha channel: transparent (alpha <= 127 on the 0-255 scale) = hole; only
   when some pixel is transparent, so an opaque RGBA image is not a mask;
4. ``--mask-color R,G,B``: pixels within ``--mask-tolerance`` of that colour in every
   channel (0-255 scale; grey images compare their value with each of R, G and B); only
   when some pixel has that colour.

Mask files are binarised like LaMa's (any channel ``> 127`` on the 0-255 scale, after
multiplying by the file's own alpha, so white strokes on a transparent layer work), may be
dilated by ``dilate`` pixels (LaMa users need this to cover the fringes around objects)
and must have the image's size. A hole mask is an ``(H, W)`` bool array, True = hole.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from restore.io.convert import dtype_scale
from restore.io.files import READABLE_SUFFIXES, display_path
from restore.io.image import Image, ImageReadError, read_image
from restore.io.limits import MAX_PIXELS
from restore.io.storage import ObjectPath

SIDECAR_TAG = "_mask"
SIDECAR_SUFFIX = ".png"
THRESHOLD = 127  # on the 0-255 scale: a pixel above it is a hole


class MaskError(ValueError):
    """A mask that exists but cannot be used (unreadable, wrong size, ambiguous)."""


@dataclass(frozen=True)
class MaskOptions:
    """Where to look for masks beyond the image's own folder, and how to post-process them."""

    masks_dir: Path | ObjectPath | None = None  # a folder, or a prefix in object storage
    mask_color: tuple[int, int, int] | None = None
    mask_tolerance: int = 0
    dilate: int = 0
    max_pixels: int = MAX_PIXELS


@dataclass
class FoundMask:
    hole: np.ndarray  # (H, W) bool, True = pixel to fill
    source: str  # where it came from, for report.json
    from_alpha: bool = False


def binarise(pixels: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """Hole = any channel above 127 on the 0-255 scale (times the mask file's own alpha)."""
    values = pixels.astype(np.float32) / dtype_scale(pixels.dtype)
    if values.ndim == 3:
        values = values.max(axis=2)
    if alpha is not None:
        values = values * (alpha.astype(np.float32) / dtype_scale(alpha.dtype))
    return values * 255 > THRESHOLD


def read_mask(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A mask file as an ``(H, W)`` bool hole array."""
    image = read_image(path, max_pixels)
    return binarise(image.pixels, image.alpha)


def alpha_hole(alpha: np.ndarray) -> np.ndarray:
    """Transparent pixels (alpha at most 127 on the 0-255 scale) are holes."""
    return alpha.astype(np.float32) / dtype_scale(alpha.dtype) * 255 <= THRESHOLD


def colour_hole(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int) -> np.ndarray:
    """Pixels within ``tolerance`` of ``colour`` in every channel, on the 0-255 scale."""
    values = pixels.astype(np.float32) * (255 / dtype_scale(pixels.dtype))
    if values.ndim == 2:
        values = values[:, :, None]
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return (np.abs(values - np.asarray(colour, np.float32)) <= tolerance).all(axis=2)


def dilate(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the holes by ``pixels`` in every direction (a disc, so corners stay round).
    A disc wider than the image's height + width reaches every pixel from any hole, so the
    radius is capped there: a huge ``pixels`` costs no more than that."""
    if pixels <= 0:
        return hole
    pixels = min(pixels, hole.shape[0] + hole.shape[1])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(hole.astype(np.uint8), kernel).astype(bool)


def sidecar_candidates(image_path: Path) -> list[Path]:
    """``<stem>_mask.png`` if it exists, else every ``<stem>_mask*.png``, in name order."""
    exact = image_path.with_name(image_path.stem + SIDECAR_TAG + SIDECAR_SUFFIX)
    if exact.is_file():
        return [exact]
    pattern = glob.escape(image_path.stem + SIDECAR_TAG) + "*" + SIDECAR_SUFFIX
    return sorted(path for path in image_path.parent.glob(pattern) if path.is_file() and path != image_path)


def is_sidecar(path: Path) -> bool:
    """True for ``<stem>_mask*.png`` when an image ``<stem>.<ext>`` lies beside it: such a
    file is a mask, never an input (a lone ``holiday_masks.png`` is an ordinary image).

    Checks the few possible image names instead of listing the folder, so planning a
    folder of N files costs O(N), not O(N^2)."""
    if path.suffix.lower() != SIDECAR_SUFFIX:
        return False
    name = path.name
    start = name.find(SIDECAR_TAG)
    while start > 0:
        stem = name[:start]
        for suffix in READABLE_SUFFIXES:
            if any((path.parent / (stem + ext)).is_file() for ext in (suffix, suffix.upper())):
                return True
        start = name.find(SIDECAR_TAG, start + 1)
    return False


def masks_dir_candidates(masks_dir: Path, relative: Path) -> list[Path]:
    """Files under ``masks_dir`` with ``relative``'s sub-folder and stem, any image extension."""
    folder = masks_dir / relative.parent
    return sorted(
        path
        for path in folder.glob(glob.escape(relative.stem) + ".*")
        if path.is_file() and path.suffix.lower() in READABLE_SUFFIXES
    )


def find_mask(image: Image, source: Path | None, relative: Path | None, options: MaskOptions) -> FoundMask | None:
    """The hole mask of ``image`` from the first source that has one (module doc), checked
    against the image size and dilated; None when no source has a mask."""
    found = _first_mask(image, source, relative, options)
    if found is None:
        return None
    if found.hole.shape != (image.height, image.width):
        mask_height, mask_width = found.hole.shape
        raise MaskError(
            f"{_shown(source)}: mask {found.source} is {mask_width}x{mask_height} "
            f"but the image is {image.width}x{image.height}"
        )
    found.hole = dilate(found.hole, options.dilate)
    return found


def searched(source: Path | None, options: MaskOptions) -> str:
    """The places :func:`find_mask` looked, for the 'no mask' message."""
    places = []
    if options.masks_dir is not None:
        places.append(f"--masks {display_path(options.masks_dir)}")
    if source is not None:
        places.append(f"{source.stem}{SIDECAR_TAG}*{SIDECAR_SUFFIX}")
    places.append("alpha")
    if options.mask_color is not None:
        places.append(f"colour {','.join(map(str, options.mask_color))}")
    return ", ".join(places)


def _first_mask(image: Image, source: Path | None, relative: Path | None, options: MaskOptions) -> FoundMask | None:
    if options.masks_dir is not None and relative is not None:
        candidates = masks_dir_candidates(options.masks_dir, relative)
        if len(candidates) > 1:
            names = ", ".join(display_path(path) for path in candidates)
            raise MaskError(f"{_shown(source)}: several masks match in --masks: {names}; keep one")
        if candidates:
            return FoundMask(_read(candidates[0], options, source), display_path(candidates[0]))
    if source is not None:
        sidecars = sidecar_candidates(source)
        if sidecars:
            holes = [_read(path, options, source) for path in sidecars]
            shapes = {hole.shape for hole in holes}
            if len(shapes) > 1:
                raise MaskError(f"{_shown(source)}: the sidecar masks {_names(sidecars)} have different sizes")
            return FoundMask(np.logical_or.reduce(holes), _names(sidecars))
    if image.alpha is not None:
        hole = alpha_hole(image.alpha)
        if hole.any():
            return FoundMask(hole, "alpha", from_alpha=True)
    if options.mask_color is not None:
        colour = ",".join(map(str, options.mask_color))
        hole = colour_hole(image.pixels, options.mask_color, options.mask_tolerance)
        if hole.any():
            return FoundMask(hole, f"colour {colour} +-{options.mask_tolerance}")
    return None


def _read(path: Path, options: MaskOptions, source: Path | None) -> np.ndarray:
    try:
        return read_mask(path, options.max_pixels)
    except (ImageReadError, OSError, ValueError) as error:
        raise MaskError(f"{_shown(source)}: cannot use mask {display_path(path)}: {error}") from error


def _names(paths: list[Path]) -> str:
    return " + ".join(display_path(path) for path in paths)


def _shown(source: Path | None) -> str:
    return display_path(source) if source is not None else "image"

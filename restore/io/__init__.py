"""Image files in and out, and the array <-> tensor convention.

Exports are imported lazily: OpenCV, tifffile and torch take a noticeable time to load,
and modules that only need ``restore.io.atomic`` should not pay for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from restore._lazy import lazy_exports

if TYPE_CHECKING:
    from restore.io.atomic import atomic_write
    from restore.io.convert import array_to_tensor, tensor_to_array
    from restore.io.image import Image, ImageReadError, read_image, resize_alpha, write_image

__all__ = [
    "Image",
    "ImageReadError",
    "array_to_tensor",
    "atomic_write",
    "read_image",
    "resize_alpha",
    "tensor_to_array",
    "write_image",
]

_LAZY = {
    "Image": "restore.io.image",
    "ImageReadError": "restore.io.image",
    "read_image": "restore.io.image",
    "write_image": "restore.io.image",
    "resize_alpha": "restore.io.image",
    "array_to_tensor": "restore.io.convert",
    "tensor_to_array": "restore.io.convert",
    "atomic_write": "restore.io.atomic",
}


__getattr__ = lazy_exports(__name__, _LAZY)

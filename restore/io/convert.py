"""The one place where pixel arrays become tensors and back.

Convention for the whole code base: tensors are float32 in [0, 1], shaped
``(B, C, H, W)``, channels in RGB order; arrays are ``(H, W, C)`` in their file's dtype
(uint8, uint16 or float32). Integer types map their full range onto [0, 1]; float
arrays are taken as already being in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

_NEUTRAL_BAND_PIXELS = 2**20  # pixels per band of is_neutral_grey's check
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # BT.601 luma from R, G, B: how grey is made from colour throughout


def dtype_scale(dtype: np.dtype) -> float:
    """The value that maps to 1.0 for an array of this dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return float(np.iinfo(dtype).max)
    if dtype.kind == "f":
        return 1.0
    raise TypeError(f"unsupported pixel dtype {dtype}: use uint8, uint16 or float")


def is_neutral_grey(pixels: np.ndarray) -> bool:
    """Whether ``(H, W, 3)`` pixels are a grey picture stored as RGB: every pixel's channels
    within one level of each other (a level of the array's own depth; float counts as
    16-bit). Scanned prints and converted photos are stored so, and a JPEG of one decodes
    with such one-level differences. Checked a band of rows at a time, so a huge image
    needs no full-size temporary and a colour one is usually told in its first band."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        return False
    tolerance = 1.0 if pixels.dtype.kind == "u" else 1 / 65535
    rows = max(1, _NEUTRAL_BAND_PIXELS // max(1, pixels.shape[1]))
    for top in range(0, pixels.shape[0], rows):
        band = pixels[top : top + rows]
        band = band.astype(np.int32) if band.dtype.kind == "u" else band
        if not (band.max(axis=2) - band.min(axis=2) <= tolerance).all():
            return False
    return True


def luma(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``(1, H, W)`` of an RGB ``(3, H, W)`` tensor, in the tensor's dtype."""
    weights = torch.tensor(LUMA_WEIGHTS, dtype=image.dtype).view(3, 1, 1)
    return (image * weights).sum(dim=0, keepdim=True)


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` array of any supported dtype -> ``(1, C, H, W)`` float32."""
    if array.ndim == 2:
        array = array[:, :, None]
    scaled = array.astype(np.float32) / dtype_scale(array.dtype)
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1))).unsqueeze(0)


def tensor_to_array(tensor: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` tensor -> ``(H, W, C)`` array of ``dtype``.

    Integer outputs are clipped to [0, 1] and rounded (not truncated), so an identity
    model round-trips every integer pixel exactly."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    array = tensor.detach().float().cpu().numpy().transpose(1, 2, 0)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return array.astype(dtype)
    scale = dtype_scale(dtype)
    return np.clip(np.rint(array * scale), 0, scale).astype(dtype)

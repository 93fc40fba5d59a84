"""The one place where pixel arrays become tensors and back.

Convention for the whole code base: tensors are float32 in [0, 1], shaped
``(B, C, H, W)``, channels in RGB order; arrays are ``(H, W, C)`` in their file's dtype
(uint8, uint16 or float32). Integer types map their full range onto [0, 1]; float
arrays are taken as already being in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch


def dtype_scale(dtype: np.dtype) -> float:
    """The value that maps to 1.0 for an array of this dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return float(np.iinfo(dtype).max)
    if dtype.kind == "f":
        return 1.0
    raise TypeError(f"unsupported pixel dtype {dtype}: use uint8, uint16 or float")


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

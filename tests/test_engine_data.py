"""The one A|B splitter, on the two layouts it is given: ``(C, H, W)`` tensors and ``(H, W, C)`` arrays."""

from __future__ import annotations

import numpy as np
import torch

from restore.engine.data import ab_halves


def test_ab_halves_splits_tensors_and_arrays_alike_and_drops_an_odd_column() -> None:
    pixels = np.arange(4 * 7 * 3, dtype=np.uint8).reshape(4, 7, 3)  # odd width: the last column is neither
    a, b = ab_halves(pixels, width_axis=1)
    assert np.array_equal(a, pixels[:, :3]) and np.array_equal(b, pixels[:, 3:6])
    a_tensor, b_tensor = ab_halves(torch.from_numpy(pixels).permute(2, 0, 1))
    assert torch.equal(a_tensor, torch.from_numpy(a).permute(2, 0, 1))
    assert torch.equal(b_tensor, torch.from_numpy(b).permute(2, 0, 1))
    grey_a, grey_b = ab_halves(pixels[..., 0], width_axis=1)
    assert np.array_equal(grey_a, a[..., 0]) and np.array_equal(grey_b, b[..., 0])

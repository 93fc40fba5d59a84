"""Volumes through 2-D networks: slice by slice along one axis, optionally 2.5-D.

A 2.5-D network sees each slice with ``context`` neighbours on either side as extra
channels, in the order ``[centre, -1, +1, -2, +2, ...]``: the centre first, because the
residual U-Net adds its output to its first input channels. At the ends of the volume
the nearest slice is repeated. Training (``restore.tasks.medical``) builds its stacks
with the same :func:`context_indices`, so a network meets at inference what it learnt on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from restore.engine.progress import Progress


def context_indices(index: int, count: int, context: int) -> list[int]:
    """Slice ``index`` and its ``context`` neighbours each side, clamped to ``[0, count)``."""
    order = [index]
    for distance in range(1, context + 1):
        order += [max(index - distance, 0), min(index + distance, count - 1)]
    return order


def slice_stack(volume: np.ndarray, index: int, context: int) -> np.ndarray:
    """``(2 * context + 1, H, W)``: slice ``index`` of a ``(D, H, W)`` array with its neighbours."""
    return volume[context_indices(index, volume.shape[0], context)]


def process_slices(
    volume: np.ndarray, run: Callable[[np.ndarray], np.ndarray], axis: int, context: int = 0,
    progress: Progress | None = None,
) -> np.ndarray:
    """Apply ``run`` to every slice of a 3-D ``volume`` along ``axis``.

    ``run`` maps a ``(2 * context + 1, H, W)`` stack to the ``(H', W')`` result for its
    centre slice (``H' = H * scale`` for super-resolution); the results are stacked back
    along ``axis``. Higher-dimensional arrays (4-D NIfTI: volumes along the last axis) are
    processed one 3-D volume at a time. ``progress`` is told the slices done (of all the
    volumes) after each one."""
    if volume.ndim > 3:
        count = volume.shape[-1]
        parts = [
            process_slices(volume[..., t], run, axis, context, None if progress is None else
                           lambda done, total, unit, t=t: progress(t * total + done, count * total, unit))
            for t in range(count)
        ]
        return np.stack(parts, axis=-1)
    if volume.ndim != 3 or not 0 <= axis < 3:
        raise ValueError(f"expected a 3-D volume and an axis 0-2, got shape {volume.shape} and axis {axis}")
    slices = np.moveaxis(volume, axis, 0)
    results = []
    for index in range(slices.shape[0]):
        results.append(run(slice_stack(slices, index, context)))
        if progress is not None:
            progress(index + 1, slices.shape[0], "slice")
    return np.moveaxis(np.stack(results), 0, axis)

"""Side-by-side image grids for docs/images: what the benches' ``--grid`` options write."""

from __future__ import annotations

import numpy as np

GAP = 4  # white pixels between cells


def side_by_side(rows: list[list[np.ndarray]], gap: int = GAP) -> np.ndarray:
    """uint8 ``(H, W, 3)`` cells laid out row by row with white gaps; cells smaller than
    the largest in their row, and rows narrower than the widest, are padded white."""
    lines = []
    for cells in rows:
        height = max(cell.shape[0] for cell in cells)
        padded = [np.pad(cell, ((0, height - cell.shape[0]), (0, 0), (0, 0)), constant_values=255) for cell in cells]
        spaced = [part for cell in padded for part in (cell, np.full((height, gap, 3), 255, np.uint8))][:-1]
        lines.append(np.hstack(spaced))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    spaced = [part for line in lines for part in (line, np.full((gap, width, 3), 255, np.uint8))][:-1]
    return np.vstack(spaced)

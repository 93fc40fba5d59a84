"""How strongly an inpainting model paints a regular grid into large holes.

A decoder that upsamples with transposed convolutions gives each output phase its own
kernel, and where it invents content (the middle of a large hole) the phases disagree: a
faint grid with a period of 2, 4, 8 ... pixels. This fills a 128x128 hole in flat grey
256x256 images (the right fill is the grey itself) and prints, per period p, the spread
of the hole's mean over the p x p pixel phases, in 8-bit levels: 0 means no grid of that
period. Pixel noise without a period shows in every column alike.

    python bench/inpaint_grid.py                                   # the shipped inpaint
    python bench/inpaint_grid.py --weights inpaint --weights runs/inpaint/best.safetensors
    git show 5393efc:weights/inpaint.safetensors > /tmp/stage2.safetensors   # the previous release
"""

from __future__ import annotations

import argparse

import numpy as np

from restore.model import Restorer, load

PERIODS = (2, 4, 8, 16)
LEVELS = (60, 128, 200)
SIDE, HOLE, MARGIN = 256, 128, 16  # image side, hole side, hole border left out of the measure


def phase_spread(block: np.ndarray, period: int) -> float:
    """Standard deviation of the block's mean over the ``period x period`` pixel phases."""
    means = [block[row::period, column::period].mean() for row in range(period) for column in range(period)]
    return float(np.std(means))


def grid_strength(model: Restorer, level: int) -> list[float]:
    """Per period, the phase spread inside a filled hole of a flat image at ``level``."""
    image = np.full((SIDE, SIDE, 3), level, np.uint8)
    hole = np.zeros((SIDE, SIDE), bool)
    start = (SIDE - HOLE) // 2
    hole[start : start + HOLE, start : start + HOLE] = True
    filled = model(image, mask=hole).astype(np.float64).mean(axis=2)
    inner = filled[start + MARGIN : start + HOLE - MARGIN, start + MARGIN : start + HOLE - MARGIN]
    return [phase_spread(inner, period) for period in PERIODS]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", action="append", default=None,
                        help="a shipped name or weights file (repeatable; default: inpaint)")
    args = parser.parse_args(argv)
    print("phase spread in 8-bit levels inside a 128x128 hole of flat grey (0 = no grid)")
    print(f"{'weights':40s} {'grey':>4s} " + " ".join(f"{f'p={period}':>7s}" for period in PERIODS))
    for weights in args.weights or ["inpaint"]:
        model = load(weights, device="cpu")
        for level in LEVELS:
            cells = " ".join(f"{value:7.3f}" for value in grid_strength(model, level))
            print(f"{weights:40s} {level:4d} {cells}")


if __name__ == "__main__":
    main()

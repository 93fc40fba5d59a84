"""Training holes for inpainting, LaMa-style: thin, medium and thick irregular brush
strokes and boxes, declared in the recipe rather than coded per experiment.

``task_options.masks`` maps a kind name to its settings; each mask is one kind, chosen
with probability proportional to ``weight``. Sizes are fractions of the crop side, so the
same recipe works for 64- and 512-pixel crops:

- strokes (``strokes``, ``vertices``, ``width``, ``length``, ``turn``): ``strokes``
  polylines, each from a random start through ``vertices`` segments of ``length``,
  turning by up to ``turn`` radians at each vertex, drawn ``width`` thick with round
  joints (DeepFill v2's free-form masks, which LaMa's irregular masks follow);
- boxes (``boxes``, ``size``): ``boxes`` axis-aligned rectangles with sides in ``size``.

Ranges ``[low, high]`` are sampled uniformly. A mask whose hole fraction falls outside
``[hole_min, hole_max]`` is drawn again (up to :data:`ATTEMPTS` times), then replaced by
one box of a uniformly drawn area in that range, so every mask obeys the limits. All
randomness comes from the ``torch.Generator`` given, so a mask is a pure function of it.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import cv2
import numpy as np
import torch

from restore.tasks.degradations import uniform

# The masks' numbers are float32 draws: float64 ones would give every seed other masks.
uniform_float32 = partial(uniform, dtype=torch.float32)

ATTEMPTS = 10
DEFAULT_HOLE_RANGE = (0.01, 0.60)
DEFAULT_MASK_KINDS: dict[str, dict[str, Any]] = {
    "thin": {"weight": 1.0, "strokes": [2, 8], "vertices": [4, 12], "width": [0.01, 0.04],
             "length": [0.05, 0.30], "turn": 1.5},
    "medium": {"weight": 1.0, "strokes": [1, 6], "vertices": [3, 10], "width": [0.04, 0.12],
               "length": [0.08, 0.35], "turn": 1.5},
    "thick": {"weight": 1.0, "strokes": [1, 5], "vertices": [2, 8], "width": [0.12, 0.30],
              "length": [0.10, 0.40], "turn": 1.5},
    "box": {"weight": 0.5, "boxes": [1, 4], "size": [0.15, 0.70]},
}
STROKE_KEYS = {"weight", "strokes", "vertices", "width", "length", "turn"}
BOX_KEYS = {"weight", "boxes", "size"}


def randint(generator: torch.Generator, low: int, high: int) -> int:
    """An integer in ``[low, high]``, both included."""
    return int(torch.randint(int(low), int(high) + 1, (1,), generator=generator))


def generate_mask(height: int, width: int, options: dict[str, Any], generator: torch.Generator) -> np.ndarray:
    """An ``(height, width)`` bool hole mask (True = hole), see the module doc."""
    kinds = options.get("masks", DEFAULT_MASK_KINDS)
    hole_min = float(options.get("hole_min", DEFAULT_HOLE_RANGE[0]))
    hole_max = float(options.get("hole_max", DEFAULT_HOLE_RANGE[1]))
    check_mask_options(kinds, hole_min, hole_max)
    names = sorted(kinds)
    weights = torch.tensor([float(kinds[name].get("weight", 1.0)) for name in names])
    for _ in range(ATTEMPTS):
        kind = kinds[names[int(torch.multinomial(weights, 1, generator=generator))]]
        draw = draw_boxes if "boxes" in kind else draw_strokes
        hole = draw(height, width, kind, generator)
        if hole_min <= hole.mean() <= hole_max:
            return hole
    return fallback_box(height, width, hole_min, hole_max, generator)


def check_mask_options(kinds: dict[str, dict[str, Any]], hole_min: float, hole_max: float) -> None:
    """Refuse a recipe with a typo before training starts drawing from it."""
    if not 0 <= hole_min <= hole_max <= 1:
        raise ValueError(f"inpaint: need 0 <= hole_min <= hole_max <= 1, not {hole_min}, {hole_max}")
    if not kinds or sum(float(kind.get("weight", 1.0)) for kind in kinds.values()) <= 0:
        raise ValueError("inpaint: task_options.masks needs at least one kind with a positive weight")
    for name, kind in kinds.items():
        allowed = BOX_KEYS if "boxes" in kind else STROKE_KEYS
        unknown = set(kind) - allowed
        if unknown:
            raise ValueError(
                f"inpaint: mask kind {name!r} has unknown setting(s) {sorted(unknown)}; known: {sorted(allowed)}"
            )


def draw_strokes(height: int, width: int, kind: dict[str, Any], generator: torch.Generator) -> np.ndarray:
    """Free-form brush strokes: polylines with round joints."""
    canvas = np.zeros((height, width), np.uint8)
    side = max(height, width)
    turn = float(kind.get("turn", 1.5))
    for _ in range(randint(generator, *kind.get("strokes", [1, 4]))):
        thickness = max(1, round(uniform_float32(generator, *kind.get("width", [0.02, 0.08])) * side))
        x, y = uniform_float32(generator, 0, width), uniform_float32(generator, 0, height)
        angle = uniform_float32(generator, 0, 2 * math.pi)
        for _ in range(randint(generator, *kind.get("vertices", [2, 8]))):
            length = uniform_float32(generator, *kind.get("length", [0.05, 0.3])) * side
            angle += uniform_float32(generator, -turn, turn)
            next_x = min(max(x + length * math.cos(angle), 0), width - 1)
            next_y = min(max(y + length * math.sin(angle), 0), height - 1)
            start, end = (round(x), round(y)), (round(next_x), round(next_y))
            cv2.line(canvas, start, end, 1, thickness)
            cv2.circle(canvas, end, thickness // 2, 1, -1)
            x, y = next_x, next_y
    return canvas.astype(bool)


def draw_boxes(height: int, width: int, kind: dict[str, Any], generator: torch.Generator) -> np.ndarray:
    """Axis-aligned rectangles, sides a fraction ``size`` of the image's."""
    hole = np.zeros((height, width), bool)
    low, high = kind.get("size", [0.1, 0.5])
    for _ in range(randint(generator, *kind.get("boxes", [1, 3]))):
        box_height = max(1, round(uniform_float32(generator, low, high) * height))
        box_width = max(1, round(uniform_float32(generator, low, high) * width))
        top, left = randint(generator, 0, height - box_height), randint(generator, 0, width - box_width)
        hole[top : top + box_height, left : left + box_width] = True
    return hole


def fallback_box(height: int, width: int, hole_min: float, hole_max: float, generator: torch.Generator) -> np.ndarray:
    """One box whose area fraction is drawn uniformly in ``[hole_min, hole_max]``; it is
    the target area rounded to whole pixels, so it stays in range up to that rounding."""
    area = uniform_float32(generator, hole_min, hole_max) * height * width
    aspect = math.exp(uniform_float32(generator, -0.5, 0.5))
    box_height = min(height, max(1, round(math.sqrt(area * aspect))))
    box_width = min(width, max(1, round(area / box_height)))
    top, left = randint(generator, 0, height - box_height), randint(generator, 0, width - box_width)
    hole = np.zeros((height, width), bool)
    hole[top : top + box_height, left : left + box_width] = True
    return hole

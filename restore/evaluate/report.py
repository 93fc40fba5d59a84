"""Small helpers shared by the result tables (numbers that strict JSON can hold)."""

from __future__ import annotations

import math


def json_number(value: float) -> float | str:
    """``value`` itself, or ``"inf"``/``"-inf"``/``"nan"``, which strict JSON cannot hold as
    numbers (an infinite PSNR means identical images; NaN, a mean over no images)."""
    return value if math.isfinite(value) else str(value)


def mean_or_nan(values: list[float]) -> float:
    """The mean, or NaN for no values (a table with no matched images still renders)."""
    return sum(values) / len(values) if values else math.nan

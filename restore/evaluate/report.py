"""Small helpers shared by the result tables: timing a method, numbers that strict JSON
can hold, and writing a table as JSON or CSV atomically (a table is never left half-written)."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from restore.io.atomic import atomic_write

def timed(method: Callable[..., Any], *arguments: Any) -> tuple[Any, float]:
    """``method(*arguments)`` and the seconds it took on the wall clock (as a user waits)."""
    start = time.perf_counter()
    output = method(*arguments)
    return output, time.perf_counter() - start


def latest_scores(scores: Mapping[str, Sequence[float]]) -> str:
    """Each method's latest score, ``name 31.25, ...``: the numbers of a progress line."""
    return ", ".join(f"{method} {values[-1]:.2f}" for method, values in scores.items())


def json_number(value: float) -> float | str:
    """``value`` itself, or ``"inf"``/``"-inf"``/``"nan"``, which strict JSON cannot hold as
    numbers (an infinite PSNR means identical images; NaN, a mean over no images)."""
    return value if math.isfinite(value) else str(value)


def mean_or_nan(values: list[float]) -> float:
    """The mean, or NaN for no values (a table with no matched images still renders)."""
    return sum(values) / len(values) if values else math.nan


def write_json_file(path: str | Path, data: dict[str, Any]) -> None:
    """Strict JSON (no NaN/inf literals: use :func:`json_number`), indented, atomically."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda temp: temp.write_text(text))


def write_csv_file(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A header line and one line per row, atomically."""

    def write(temp: Path) -> None:
        with open(temp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)

    atomic_write(path, write)

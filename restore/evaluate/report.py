"""Small helpers shared by the result tables: numbers that strict JSON can hold, and
writing a table as JSON or CSV atomically (a table is never left half-written)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from restore.io.atomic import atomic_write

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

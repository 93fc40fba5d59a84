"""A plot of a metric per image, one line per method: where a table of hundreds of numbers
hides which images a method fails on, the plot shows them at a glance.

matplotlib (the ``[report]`` extra) is imported here only; the figure is drawn without
pyplot (no global state, no display needed) and written as PNG atomically."""

from __future__ import annotations

import math
from pathlib import Path

from restore.io.atomic import atomic_write

NAMED_TICKS = 40  # up to this many images the x axis names them; beyond, it numbers them


class MissingMatplotlib(ImportError):
    """The plot needs matplotlib: the page says how to get it and shows the tables alone."""


def plot_per_image(path: Path, metric: str, series: dict[str, dict[str, float]]) -> None:
    """Write a PNG of ``series`` (method -> image -> value) over the images in name order
    (an infinite PSNR, identical images, is left out of the line)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingMatplotlib("no plot: matplotlib is not installed (pip install 'restore[report]')") from error
    images = sorted({image for values in series.values() for image in values})
    position = {image: index for index, image in enumerate(images)}
    figure = Figure(figsize=(min(16.0, max(6.0, 0.25 * len(images))), 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, values in series.items():
        points = sorted((position[image], value) for image, value in values.items() if math.isfinite(value))
        axes.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3, linewidth=1, label=name)
    axes.set_ylabel(metric.upper())
    axes.grid(True, alpha=0.3)
    if len(images) <= NAMED_TICKS:
        axes.set_xticks(range(len(images)), images, rotation=60, ha="right", fontsize=7)
    else:
        axes.set_xlabel("image (name order)")
    if len(series) > 1:
        axes.legend(fontsize=7, loc="best")
    atomic_write(path, lambda temp: figure.savefig(temp, format="png"))

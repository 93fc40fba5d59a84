"""How a run's losses moved: the mean of each TensorBoard ``loss/*`` scalar over equal
windows of the run, one column per window. For GAN runs, where no single number says
"converged", this is the evidence that training behaved (reconstruction/cycle terms
falling, discriminator losses neither collapsing to 0 nor exploding).

    python bench/loss_trend.py runs/facades-cyclegan-smoke
    python bench/loss_trend.py runs/facades-cyclegan-smoke --windows 5 --prefix loss/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def read_scalars(run: Path, prefix: str) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` for every scalar under ``run/tensorboard`` whose tag
    starts with ``prefix``; a resumed run's repeated steps keep their last value."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    series = {}
    for tag in accumulator.Tags()["scalars"]:
        if tag.startswith(prefix):
            by_step = {event.step: event.value for event in accumulator.Scalars(tag)}
            series[tag] = sorted(by_step.items())
    return series


def window_means(points: list[tuple[int, float]], windows: int) -> list[float]:
    """Mean value in each of ``windows`` equal slices of the logged points."""
    values = np.array([value for _, value in points])
    return [float(chunk.mean()) for chunk in np.array_split(values, windows) if len(chunk)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder (holds tensorboard/)")
    parser.add_argument("--windows", type=int, default=4, help="equal slices of the run")
    parser.add_argument("--prefix", default="loss/", help="which scalars")
    args = parser.parse_args(argv)

    series = read_scalars(args.run, args.prefix)
    if not series:
        raise SystemExit(f"error: no {args.prefix}* scalars under {args.run / 'tensorboard'}")
    last_step = max(points[-1][0] for points in series.values())
    print(f"{args.run}: {last_step} steps, mean per {args.windows} equal windows")
    for tag, points in series.items():
        print(f"{tag:<16} " + " ".join(f"{value:9.4f}" for value in window_means(points, args.windows)))


if __name__ == "__main__":
    main()

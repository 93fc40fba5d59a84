"""Folder throughput: `restore` end to end against the model's own limit and the naive loop.

    python bench/throughput.py                                   # 200 images of 512x512
    python bench/throughput.py --images 24 --size 256 --json throughput.json
    python bench/throughput.py --images 12 --size 256 --backends torch,onnxruntime,openvino

On a folder of generated images (smooth shapes plus noise, PNG), for each shipped default
model (denoise; superres x4 when this installation ships it), in one run:

- limit: forward passes only, on tensors decoded beforehand (same tile, batch size and
  precision as restore);
- naive: the loop of Real-ESRGAN's inference script: read one image, run it, write it, next,
  in fp32 as that script runs on a CPU;
- naive-same: the same loop at restore's precision, to separate what the precision gives
  from what the pipeline gives;
- restore: ``restore.process_folder`` with its defaults (precision ``auto``: bf16 for these
  8-bit images where the CPU has it; decoding/encoding in worker threads, atomic writes,
  report.json).

Prints images/s and the ratios restore/limit, restore/naive and restore/naive-same, and
writes them as JSON. ``--backends``: a row per backend (docs/backends.md), each path running
the network on that backend, so restore/limit compares restore end to end with the backend's
own model-only limit.
Every path uses the same tile size: ``--tile auto`` is resolved once, from the free memory
when the bench starts, because an "auto" tile picked later (with less memory free) would
time a different tiling. The paths run in ``--rounds`` rounds, each in a rotated order, and
each path's median rate is reported, so a change in the machine's load during the run
(another process, a training job) weighs on every path alike; the absolute numbers still
move with the load, the ratios much less. CPU figures only: pass --device cuda on a GPU
machine and they are reported separately, never mixed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

import restore
from restore.api import default_weights
from restore.engine.backends import BACKENDS, installed
from restore.io.convert import array_to_tensor, tensor_to_array
from restore.io.image import Image, read_image, write_image
from restore.weights import WeightsError

SIGMA = 25.0  # fixed for every path, so no one pays for noise estimation


def make_images(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    """``count`` RGB PNGs of ``size`` x ``size``: random ellipses on a gradient, plus noise,
    so PNG encoding costs what it costs on photos rather than on flat colour."""
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        ramp = np.linspace(0, 255, size, dtype=np.float32)
        image = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp[::-1], ramp) / 2, np.full((size, size), 128.0)], -1)
        for _ in range(6):
            centre = tuple(int(v) for v in rng.integers(0, size, 2))
            axes = tuple(int(v) for v in rng.integers(size // 16, size // 3, 2))
            colour = tuple(float(v) for v in rng.integers(0, 256, 3))
            cv2.ellipse(image, centre, axes, float(rng.integers(0, 180)), 0, 360, colour, -1)
        image += rng.normal(0, SIGMA, image.shape)
        path = folder / f"{index:04d}.png"
        cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8))
        paths.append(path)
    return paths


def images_per_second(run: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def median_rates(paths: dict[str, Callable[[int], None]], count: int, rounds: int) -> dict[str, float]:
    """Each path's median images/s over ``rounds`` rounds; round ``r`` starts with path ``r``
    (mod the number of paths), so no path always runs first or right after another.
    A path is called with the round number (to write to a fresh folder)."""
    names = list(paths)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            rates[name].append(images_per_second(functools.partial(paths[name], round_index), count))
    return {name: float(np.median(values)) for name, values in rates.items()}


def measure(task: str, weights: str, paths: list[Path], options: dict, settings: dict, work: Path,
            rounds: int) -> dict[str, float]:
    model = restore.load(weights, **settings)
    # "auto" resolved once: every path tiles alike
    settings = settings | {"tile": model.tile, "batch_size": model.batch_size}
    anchor = restore.load(weights, **settings | {"precision": "fp32"})
    tensors = [array_to_tensor(read_image(path).pixels) for path in paths]
    for warm in (model, anchor):  # kernel selection and allocations stay out of the timings
        warm.run(tensors[0], eight_bit=True, **options)

    def limit(_round: int) -> None:
        for tensor in tensors:
            model.run(tensor, eight_bit=True, **options)  # the generated images are 8-bit

    def naive(network: restore.Restorer, name: str) -> Callable[[int], None]:
        def loop(round_index: int) -> None:
            out = work / f"{task}-{name}-{round_index}"
            out.mkdir(parents=True)
            for path in paths:
                image = read_image(path)
                result, _ = network.run(array_to_tensor(image.pixels), eight_bit=True, **options)
                write_image(out / path.name, Image(tensor_to_array(result, image.pixels.dtype), None, image.format))

        return loop

    def ours(round_index: int) -> None:
        report = restore.process_folder(task, paths[0].parent, work / f"{task}-restore-{round_index}",
                                        weights=weights, quiet=True, **options, **settings)
        if report.exit_code:
            raise SystemExit(f"restore failed on some images: {report.summary()}")

    rates = median_rates({"limit": limit, "naive": naive(anchor, "naive"), "naive-same": naive(model, "naive-same"),
                          "restore": ours}, len(paths), rounds)
    ratios = {f"restore/{path}": rates["restore"] / rates[path] for path in ("limit", "naive", "naive-same")}
    return rates | ratios | {"tile": model.tile, "batch_size": model.batch_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200, help="how many generated images")
    parser.add_argument("--size", type=int, default=512, help="their side in pixels")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--precision", default="auto", help="restore's: auto (its default), fp32, bf16 (fp16 on GPUs)")
    parser.add_argument("--tile", default="auto", help="tile size for every path (0 = whole image, auto)")
    parser.add_argument("--batch-size", default="auto",
                        help="tiles per forward pass: N, or auto (restore's default: 1 on the CPU, 4 on a GPU)")
    parser.add_argument("--tasks", default="denoise,superres", help="which default models: denoise, superres (x4)")
    parser.add_argument("--backends", default="torch",
                        help="comma-separated: torch, onnxruntime, openvino (a row per task and backend)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every path, each in a rotated order (median)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    tile = args.tile if args.tile == "auto" else int(args.tile)
    batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    settings = {"device": args.device, "precision": args.precision, "tile": tile, "batch_size": batch_size}
    known = {"denoise": {"sigma": SIGMA}, "superres": {"scale": 4}}
    tasks = [name.strip() for name in args.tasks.split(",") if name.strip()]
    if unknown := set(tasks) - set(known):
        parser.error(f"unknown task(s) {', '.join(sorted(unknown))}; choose from {', '.join(known)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    runs = {task: known[task] for task in tasks}
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}; choose from {', '.join(BACKENDS)}")
    if missing := [name for name in backends if not installed(name)]:
        print(f"skipped (package not installed): {', '.join(missing)}", file=sys.stderr)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="restore-throughput-") as temp:
        work = Path(temp)
        (work / "in").mkdir()
        paths = make_images(work / "in", args.images, args.size)
        for task, options in runs.items():
            try:
                weights = default_weights(task, 3)
            except WeightsError as error:
                print(f"{task}: skipped ({error})", file=sys.stderr)
                continue
            task_options = {key: value for key, value in options.items() if key != "scale"}
            for backend in (name for name in backends if installed(name)):
                row = f"{task}/{backend}" if backends != ["torch"] else task
                results[row] = {"weights": weights, "backend": backend,
                                **measure(task, weights, paths, task_options, settings | {"backend": backend},
                                          work / backend, args.rounds)}

    print(f"{args.images} images of {args.size}x{args.size}, device {args.device}, {args.precision}, tile {args.tile}, "
          f"batch {args.batch_size}, median of {args.rounds} rounds, {os.cpu_count()} cores, torch using {torch.get_num_threads()} threads")
    paths_shown = ("limit", "naive", "naive-same", "restore")
    ratios = ("restore/limit", "restore/naive", "restore/naive-same")
    print(f"{'task':<22}{'tile':>6}" + "".join(f"{name + ' img/s':>17}" for name in paths_shown)
          + "".join(f"{r:>20}" for r in ratios))
    for task, row in results.items():
        print(f"{task:<22}{row['tile']:>6}" + "".join(f"{row[name]:>17.3f}" for name in paths_shown)
              + "".join(f"{row[r]:>20.2f}" for r in ratios))
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)}, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

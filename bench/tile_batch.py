"""Tiles per forward pass: which ``--batch-size`` is fastest here? Same image, same run.

    python bench/tile_batch.py                          # denoise 1536x1536, superres x4 of 768x768
    python bench/tile_batch.py --batch-sizes 1,2,4,8 --rounds 5

For each shipped default model, one random image big enough for many tiles at the default
tile size is restored with each batch size in turn, over ``--rounds`` rounds in rotated
order (median seconds), and each time is given relative to batch size 1. Batch size ``auto``
(restore's default) picks 1 on the CPU and 4 on a GPU from what this measures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import restore
from restore.api import default_weights

RUNS = {"denoise": ({"sigma": 25.0}, 1536), "superres": ({}, 768)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="denoise,superres", help="which default models: denoise, superres (x4)")
    parser.add_argument("--batch-sizes", default="1,2,4", help="comma-separated tiles per forward pass")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each in a rotated order (median)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--precision", default="auto", help="restore's: auto, fp32, bf16 (fp16 on GPUs)")
    args = parser.parse_args(argv)
    sizes = [int(value) for value in args.batch_sizes.split(",")]

    print(f"device {args.device}, precision {args.precision}, median of {args.rounds} rounds, "
          f"torch using {torch.get_num_threads()} threads")
    print(f"{'task':<10}{'image':>11}{'tile':>6}" + "".join(f"{f'batch {size} s':>12}" for size in sizes)
          + "".join(f"{f'{size} vs 1':>9}" for size in sizes[1:]))
    for task in (name.strip() for name in args.tasks.split(",") if name.strip()):
        options, side = RUNS[task]
        image = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
        weights = default_weights(task, 3, {"scale": 4} if task == "superres" else None)
        tile = restore.load(weights, device=args.device, precision=args.precision).tile  # resolved once, for all
        models = [restore.load(weights, device=args.device, precision=args.precision, batch_size=size, tile=tile)
                  for size in sizes]
        for model in models:
            model.restore_array(image[:128, :128], **options)  # warm-up
        times: list[list[float]] = [[] for _ in sizes]
        for round_index in range(args.rounds):
            for index in np.roll(np.arange(len(sizes)), -round_index):
                start = time.perf_counter()
                models[index].restore_array(image, **options)
                times[index].append(time.perf_counter() - start)
        medians = [float(np.median(values)) for values in times]
        print(f"{task:<10}{f'{side}x{side}':>11}{tile:>6}" + "".join(f"{value:>12.2f}" for value in medians)
              + "".join(f"{value / medians[0]:>9.2f}" for value in medians[1:]), flush=True)


if __name__ == "__main__":
    main()

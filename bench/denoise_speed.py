"""Seconds per megapixel of our denoiser against BM3D, on the CPU, in the same run.

    python bench/denoise_speed.py --weights runs/denoise-color/best.safetensors
    python bench/denoise_speed.py --set BSD68 --images 2 --sigma 50

Both methods see the same noisy images (the benchmark protocol), one after the other, so
the ratio is meaningful even on a busy machine; the absolute numbers are not.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from denoise_quality import DEFAULT_DATA  # bench/ is on sys.path when run as a script
from restore.evaluate.denoise import BASELINES, evaluate_denoise, model_method
from restore.weights import WeightsError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="CBSD68", help="set folder under --data")
    parser.add_argument("--images", type=int, default=4, help="how many images to time")
    parser.add_argument("--sigma", type=float, default=25.0, help="noise level on the 0-255 scale")
    parser.add_argument("--weights", default="denoise-color", help="our model: weights name or .safetensors path")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the sets")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="our model's arithmetic")
    args = parser.parse_args(argv)

    try:
        ours = model_method(args.weights, precision=args.precision)
    except WeightsError as error:
        raise SystemExit(f"error: {error}") from None
    folder = args.data / args.set
    if not folder.is_dir():
        raise SystemExit(f"error: {folder}: set not found (pass --data to point at the eval sets)")
    # the first forward pass picks kernels and allocates; keep it out of the timing
    ours(np.zeros((64, 64, 3), np.float32), args.sigma)
    table = evaluate_denoise(folder, {"ours": ours, "bm3d": BASELINES["bm3d"]}, [args.sigma], max_images=args.images)

    megapixels = table.megapixels["ours"]
    print(
        f"{args.set}: {len(table.images)} images, {megapixels:.2f} MP, sigma {args.sigma:g}, ours in {args.precision}, CPU "
        f"({os.cpu_count()} cores, torch using {torch.get_num_threads()} threads)"
    )
    for method in table.methods:
        print(
            f"{method:>5}: {table.seconds_per_megapixel(method):8.3f} s/MP   "
            f"PSNR {table.mean_psnr(method, args.sigma):.2f} dB"
        )
    speedup = table.seconds_per_megapixel("bm3d") / table.seconds_per_megapixel("ours")
    if speedup >= 1:
        print(f"ours is {speedup:.1f}x faster than BM3D")
    else:
        print(f"ours is {1 / speedup:.1f}x slower than BM3D")


if __name__ == "__main__":
    main()

"""Camera-like noise on held-out clean photos: the blind `denoise-real` against
`denoise-color --sigma auto`, BM3D told the estimated sigma, and the noisy input.

    python bench/real_noise.py                                      # Kodak24 + McMaster, shipped weights
    python bench/real_noise.py --real runs/denoise-real/best.safetensors --max-images 6
    python bench/real_noise.py --record                             # maintainers: into the manifest
    python bench/real_noise.py --grid docs/images/denoise-real-grid.jpg   # RNI6/RNI15 real photos

Each clean photo (an evaluation set: never trained or tuned on) gets the noise that
`denoise-real` is trained on, :func:`restore.tasks.camera_noise.camera_noise` (shot and read
noise in linear light, Bayer mosaic and bilinear demosaic, JPEG q70-95, each drawn per
image), from a generator seeded with the image's index in its set, then saved as 8-bit
as a camera would. Every method sees that uint8 image; PSNR is over all channels, no
border crop. ``sigma auto`` is :func:`restore.tasks.denoise.estimate_sigma`, what
``restore denoise --sigma auto`` uses; BM3D (CBM3D) is given that estimate, as a user
without a noise model would give it. ``--grid`` puts real noisy photos (no ground truth)
side by side: noisy | denoise-color sigma auto | denoise-real.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from restore.evaluate.denoise import bm3d_denoise, to_uint8
from restore.evaluate.pairs import index_images
from restore.io.image import Image, write_image
from restore.metrics import psnr
from restore.model import load
from restore.tasks.camera_noise import camera_noise
from restore.tasks.denoise import estimate_sigma
from restore.weights import WeightsError, record_metrics
from grids import side_by_side  # bench/ is on sys.path when run as a script
from superres_real import centre_crop, rgb_uint8

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "denoise"
DEFAULT_SETS = ("Kodak24", "McMaster")
GRID_SETS = ("RNI6", "RNI15")
METHODS = ("noisy", "sigma_auto", "bm3d", "real")


def noisy_photo(clean: np.ndarray, seed: int) -> np.ndarray:
    """``clean`` (uint8 RGB) with camera noise from a generator seeded with ``seed``, as uint8."""
    image = torch.from_numpy(clean.transpose(2, 0, 1).astype(np.float32) / 255)
    noisy = camera_noise(image, torch.Generator().manual_seed(seed))
    return to_uint8(noisy.numpy().transpose(1, 2, 0))


def auto_sigma(noisy: np.ndarray) -> float:
    """The level ``--sigma auto`` estimates for a uint8 image (0-255 scale)."""
    return estimate_sigma(torch.from_numpy(noisy.transpose(2, 0, 1).astype(np.float32) / 255)[None])


def run_set(folder: Path, colour, real, max_images: int | None) -> dict:
    """Per-image PSNR of every method on one set, and the means."""
    paths = sorted(index_images(folder, "").values())[:max_images]
    rows = []
    for index, path in enumerate(paths):
        clean = rgb_uint8(path)
        noisy = noisy_photo(clean, index)
        sigma = auto_sigma(noisy)
        outputs = {
            "noisy": noisy,
            "sigma_auto": colour(noisy, sigma=sigma),
            "bm3d": to_uint8(bm3d_denoise(noisy.astype(np.float32) / 255, sigma)),
            "real": real(noisy),
        }
        row = {"image": path.name, "sigma_estimated": sigma} | {
            name: psnr(output, clean, data_range=255) for name, output in outputs.items()}
        print(f"  {path.name}: sigma auto {sigma:.2f}, " + ", ".join(f"{name} {row[name]:.2f}" for name in METHODS),
              file=sys.stderr, flush=True)
        rows.append(row)
    return {"images": len(rows), **{name: float(np.mean([row[name] for row in rows])) for name in METHODS},
            "mean_sigma_estimated": float(np.mean([row["sigma_estimated"] for row in rows]))}


def write_grid(path: Path, colour, real, side: int) -> None:
    """noisy | sigma auto | real, one row per RNI6/RNI15 photo (a centre crop of ``side``)."""
    rows = []
    for name in GRID_SETS:
        for photo in sorted(index_images(EVAL / name, "").values()):
            crop = np.ascontiguousarray(centre_crop(rgb_uint8(photo), side))
            rows.append([crop, colour(crop, sigma="auto"), real(crop)])
    write_image(path, Image(side_by_side(rows)), quality=90)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help="comma-separated clean sets under --data")
    parser.add_argument("--data", type=Path, default=EVAL, help="folder holding the clean sets")
    parser.add_argument("--max-images", type=int, default=None, help="first N images of each set (quick runs)")
    parser.add_argument("--colour", default="denoise-color", help="the noise-map model run with sigma auto")
    parser.add_argument("--real", default="denoise-real", help="the blind camera-noise model: name or file")
    parser.add_argument("--grid", type=Path, default=None, help="also write the RNI6/RNI15 grid here")
    parser.add_argument("--grid-side", type=int, default=128, help="side of each grid crop, pixels")
    parser.add_argument("--record", action="store_true", help="store the means under --real in weights/manifest.toml")
    args = parser.parse_args(argv)
    try:
        colour, real = load(args.colour, task="denoise"), load(args.real, task="denoise")
    except WeightsError as error:
        raise SystemExit(f"error: {error}") from None
    if not real.task.blind:
        raise SystemExit(f"error: {args.real}: not a blind denoiser (its weights take a noise-level map)")
    if args.grid is not None:
        write_grid(args.grid, colour, real, args.grid_side)
    results = {}
    for name in [item for item in args.sets.split(",") if item]:
        print(f"{name}:", file=sys.stderr)
        results[name if args.max_images is None else f"{name}[:{args.max_images}]"] = run_set(
            args.data / name, colour, real, args.max_images)
    print(f"{'set':<16}" + "".join(f"{name:>12}" for name in METHODS) + f"{'real-auto':>11}{'real-bm3d':>11}")
    for name, means in results.items():
        print(f"{name:<16}" + "".join(f"{means[method]:>12.2f}" for method in METHODS)
              + f"{means['real'] - means['sigma_auto']:>+11.2f}{means['real'] - means['bm3d']:>+11.2f}")
    if args.record:
        command = "python bench/real_noise.py " + " ".join(sys.argv[1:] if argv is None else argv)
        record_metrics(args.real, {"camera_noise": results}, command)


if __name__ == "__main__":
    main()

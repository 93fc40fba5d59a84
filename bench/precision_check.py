"""How far bf16 moves a shipped model's 8-bit outputs from fp32, and what it does to PSNR.

    python bench/precision_check.py --weights denoise-color,superres-x4 --count 3
    python bench/precision_check.py --record      # every 8-bit shipped model, into the manifest

Each model runs twice on the same inputs, ``--precision fp32`` and ``bf16`` (whole images,
CPU), on centre crops of real photos (default: the first ``--count`` Kodak24 images):
denoise with Gaussian noise of sigma 25 added (the benchmark's seeded noise), superres on
the crop shrunk by the scale (area), inpaint with a fixed rectangular hole (18 % of the
image), style on the photo itself. Per model it reports the largest difference between
the two 8-bit outputs in levels, the share of samples more than 3 levels apart, the PSNR of
the bf16 output against the fp32 one, and (where there is a reference: the clean crop)
the PSNR change bf16 makes. ``--record`` writes these as the manifest's ``bf16_vs_fp32``
metrics: only weights with that record run in bf16 under ``--precision auto``.
Medical models are left out: scans are never run in bf16 by ``auto``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import restore
from restore.evaluate.denoise import add_noise, to_uint8
from restore.io.image import read_image
from restore.metrics import psnr
from restore.weights import BF16_CHECK, load_manifest, record_metrics

DEFAULT_IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "denoise" / "Kodak24"
EIGHT_BIT_TASKS = ("denoise", "superres", "inpaint", "style")
SIGMA = 25
LEVELS = 3  # "more than 3 levels apart": beyond what rounding and dithering could explain


def centre_crop(pixels: np.ndarray, size: int, multiple: int) -> np.ndarray:
    size = min(size, pixels.shape[0], pixels.shape[1]) // multiple * multiple
    top, left = (pixels.shape[0] - size) // 2, (pixels.shape[1] - size) // 2
    return pixels[top : top + size, left : left + size]


def task_input(task: str, clean: np.ndarray, scale: int, index: int) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
    """(the model's input, its options, the reference to score against or None)."""
    if task == "denoise":
        return to_uint8(add_noise(clean, SIGMA, seed=index)), {"sigma": SIGMA}, clean
    if task == "superres":
        small = cv2.resize(clean, (clean.shape[1] // scale, clean.shape[0] // scale), interpolation=cv2.INTER_AREA)
        return small.reshape(*small.shape[:2], clean.shape[2]), {}, clean
    if task == "inpaint":
        hole = np.zeros(clean.shape[:2], dtype=bool)
        height, width = hole.shape
        hole[height * 3 // 10 : height * 7 // 10, width * 3 // 10 : width * 3 // 4] = True
        return clean, {"mask": hole}, clean
    return clean, {}, None


def check(name: str, images: list[Path], crop: int) -> dict[str, Any]:
    entry = load_manifest()[name]
    fp32, bf16 = (restore.load(name, device="cpu", precision=p, tile=0) for p in ("fp32", "bf16"))
    differences, over, agreement, deltas = [], [], [], []
    for index, path in enumerate(images):
        pixels = read_image(path).pixels
        if entry.channels == 1 and pixels.shape[2] == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[:, :, None]
        clean = centre_crop(pixels, crop, 4 * fp32.scale)
        image, options, reference = task_input(entry.task, clean, fp32.scale, index)
        out32, out16 = fp32(image, **options), bf16(image, **options)
        difference = np.abs(out32.astype(np.int16) - out16.astype(np.int16))
        differences.append(int(difference.max()))
        over.append(float((difference > LEVELS).mean()))
        agreement.append(psnr(out16, out32) if difference.any() else float("inf"))
        if reference is not None:
            deltas.append(psnr(out16, reference) - psnr(out32, reference))
        print(f"{name} {path.name}: max {differences[-1]} levels, {100 * over[-1]:.3f} % over {LEVELS}",
              file=sys.stderr)
    result = {
        "images": len(images),
        "crop": crop,
        "max_level_difference": max(differences),
        f"percent_over_{LEVELS}_levels": round(100 * float(np.mean(over)), 4),
        "min_psnr_bf16_vs_fp32": round(min(agreement), 2) if np.isfinite(min(agreement)) else "identical",
    }
    if deltas:
        result["psnr_delta_db"] = round(float(np.mean(deltas)), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="", help="Comma-separated shipped names; default: every 8-bit model.")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="Folder of 8-bit photos.")
    parser.add_argument("--count", type=int, default=3, help="First N images of the folder.")
    parser.add_argument("--crop", type=int, default=192, help="Centre crop side in pixels.")
    parser.add_argument("--record", action="store_true", help="Write the results into weights/manifest.toml.")
    args = parser.parse_args()
    if not args.images.is_dir():
        sys.exit(f"{args.images}: no such folder (give --images DIR of 8-bit photos)")
    manifest = load_manifest()
    names = [n for n in args.weights.split(",") if n] or [n for n, e in manifest.items() if e.task in EIGHT_BIT_TASKS]
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))[: args.count]
    for name in names:
        result = check(name, images, args.crop)
        print(f"{name}: {result}")
        if args.record:
            images_flag = "" if args.images == DEFAULT_IMAGES else f" --images {args.images}"
            command = (f"python bench/precision_check.py --weights {name}{images_flag} "
                       f"--count {args.count} --crop {args.crop} --record")
            record_metrics(name, {BF16_CHECK: result}, command)


if __name__ == "__main__":
    main()

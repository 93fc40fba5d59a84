"""restore's band-by-band PNG writer against OpenCV's encoder, on the same images in one run.

    python bench/png_write.py                                  # the clean samples, upscaled x4
    python bench/png_write.py --images ../shared/data/eval/denoise/Kodak24 --scale 1

For each image (8-bit RGB, resized by ``--scale`` with bicubic, as a super-resolution
output would be): the file size and encoding time of ``restore.io.write_image`` and of
``cv2.imencode`` + a file write (what restore did before). Prints per-encoder totals and the
ratios restore/OpenCV; times are medians over ``--rounds`` alternating rounds. Memory is
bench/memory.py's job (a whole ``restore`` run on a huge image).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from restore.io import Image, write_image

SAMPLES = Path(__file__).resolve().parents[1] / "datasets" / "samples" / "clean"

def encode_restore(rgb: np.ndarray, path: Path) -> None:
    write_image(path, Image(rgb))


def encode_opencv(rgb: np.ndarray, path: Path) -> None:
    path.write_bytes(cv2.imencode(".png", rgb[:, :, ::-1])[1])


ENCODERS = {"restore": encode_restore, "opencv": encode_opencv}


def load(path: Path, scale: float) -> np.ndarray:
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise SystemExit(f"{path}: not an image OpenCV reads")
    if scale != 1:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=SAMPLES, help="folder of 8-bit images")
    parser.add_argument("--scale", type=float, default=4.0, help="bicubic resize factor before encoding")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per image (median time)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
    if not paths:
        raise SystemExit(f"{args.images}: no images")
    totals = {name: {"bytes": 0, "seconds": 0.0} for name in ENCODERS}
    pixels = 0
    with tempfile.TemporaryDirectory(prefix="restore-png-") as temp:
        for path in paths:
            rgb = load(path, args.scale)
            pixels += rgb.shape[0] * rgb.shape[1]
            times: dict[str, list[float]] = {name: [] for name in ENCODERS}
            for round_index in range(args.rounds):
                order = list(ENCODERS) if round_index % 2 == 0 else list(ENCODERS)[::-1]
                for name in order:
                    target = Path(temp) / f"{name}.png"
                    start = time.perf_counter()
                    ENCODERS[name](rgb, target)
                    times[name].append(time.perf_counter() - start)
            for name in ENCODERS:
                target = Path(temp) / f"{name}.png"
                totals[name]["bytes"] += target.stat().st_size
                totals[name]["seconds"] += float(np.median(times[name]))
            print(f"{path.name}: {rgb.shape[1]}x{rgb.shape[0]}", file=sys.stderr)

    print(f"{len(paths)} images, {pixels / 1e6:.1f} megapixels in all (x{args.scale:g})")
    print(f"{'encoder':<10}{'MB':>10}{'s':>8}")
    for name, row in totals.items():
        print(f"{name:<10}{row['bytes'] / 1e6:>10.2f}{row['seconds']:>8.2f}")
    ours, theirs = totals["restore"], totals["opencv"]
    ratios = {"size": ours["bytes"] / theirs["bytes"], "time": ours["seconds"] / theirs["seconds"]}
    print("restore/opencv: " + ", ".join(f"{key} {value:.2f}" for key, value in ratios.items()))
    if args.json:
        args.json.write_text(json.dumps({"totals": totals, "ratios": ratios, "scale": args.scale}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Real photos x4 (no ground truth): bicubic against our PSNR model and our `real` model on
RealSRSet, as a side-by-side grid and a sharpness figure.

    python bench/superres_real.py                                   # shipped superres-x4 and superres-x4-real
    python bench/superres_real.py --real runs/superres-x4-real/last.safetensors --grid docs/images/realsrset-x4.jpg
    python bench/superres_real.py --grid docs/images/realsrset-x4.jpg --record    # maintainers: into the manifest

Real low-quality photos (old scans, JPEG, phone noise) have no high-resolution original, so
nothing here is a fidelity score. The grid (``--grid``) puts, for the first ``--rows``
images, the same centre crop of the x4 result side by side: bicubic | PSNR model | real
model. The printed figure is each method's mean gradient magnitude (Sobel, on the BT.601
luma of the whole x4 output, in 8-bit levels per pixel), over every image, and its ratio to
bicubic's: above 1 = more edge contrast than bicubic. It measures sharpness, not
correctness (amplified JPEG blocks count as edges too), which is why the grid is there.
``--record`` stores the three means under the shipped ``--real`` weights in the manifest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from grids import side_by_side  # bench/ is on sys.path when run as a script
from restore.evaluate.pairs import index_images
from restore.evaluate.superres import SuperResMethod, bicubic_upscale, model_method
from restore.io.image import Image, read_image, write_image
from restore.metrics.texture import gradient_magnitude
from restore.weights import WeightsError, load_manifest, record_metrics

SCALE = 4
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "sr" / "RealSRSet"


def rgb_uint8(path: Path) -> np.ndarray:
    pixels = read_image(path).pixels
    if pixels.dtype != np.uint8:
        raise SystemExit(f"error: {path}: expected an 8-bit photo, not {pixels.dtype}")
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[:, :, :3]


def mean_gradient(image: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of the BT.601 luma, in 8-bit levels per pixel."""
    return float(np.mean(gradient_magnitude(image)))


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    side = min(side, *image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    return image[top : top + side, left : left + side]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="real photos (default: RealSRSet)")
    parser.add_argument("--psnr", default="superres-x4", help="the PSNR model: weights name or file")
    parser.add_argument("--real", default="superres-x4-real", help="the real-photo model: weights name or file")
    parser.add_argument("--grid", type=Path, default=None, help="write the bicubic | PSNR | real grid here")
    parser.add_argument("--rows", type=int, default=4, help="images in --grid (the first ones, by name)")
    parser.add_argument("--crop", type=int, default=256, help="side of each grid cell, in output pixels")
    parser.add_argument("--record", action="store_true",
                        help="store the means in weights/manifest.toml under the shipped --real name (maintainers)")
    args = parser.parse_args(argv)
    if args.record and args.real not in load_manifest():
        raise SystemExit(f"error: --record needs shipped --real weights; {args.real!r} is not in the manifest")

    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data}: not found (pass --data)")
    paths = sorted(index_images(args.data, "").values())
    if not paths:
        raise SystemExit(f"error: {args.data}: no images")
    try:
        methods: dict[str, SuperResMethod] = {
            "bicubic": bicubic_upscale,
            "psnr": model_method(args.psnr, SCALE),
            "real": model_method(args.real, SCALE),
        }
    except WeightsError as error:
        raise SystemExit(f"error: {error}") from None

    gradients: dict[str, list[float]] = {name: [] for name in methods}
    cells: list[list[np.ndarray]] = []
    for number, path in enumerate(paths):
        low = rgb_uint8(path)
        outputs = {name: method(low, SCALE) for name, method in methods.items()}
        for name, output in outputs.items():
            gradients[name].append(mean_gradient(output))
        if number < args.rows:
            cells.append([centre_crop(outputs[name], args.crop) for name in methods])
        print(f"{path.name}: " + ", ".join(f"{name} {values[-1]:.2f}" for name, values in gradients.items()),
              file=sys.stderr)

    print(f"{args.data.name}: {len(paths)} photos x{SCALE}, mean luma gradient magnitude (8-bit levels/pixel)")
    base = float(np.mean(gradients["bicubic"]))
    for name, values in gradients.items():
        weights = {"psnr": args.psnr, "real": args.real}.get(name, "")
        print(f"{name:<8} {np.mean(values):7.3f}  x{np.mean(values) / base:.2f} of bicubic  {weights}")
    if args.grid is not None:
        write_image(args.grid, Image(side_by_side(cells)))
        print(f"grid: {args.grid} (columns: bicubic, {args.psnr}, {args.real}; centre {args.crop}-pixel crops)")
    if args.record:
        means = {name: float(np.mean(values)) for name, values in gradients.items()}
        metrics = {args.data.name: {"images": len(paths), "scale": SCALE, "mean_gradient": means["real"],
                                    "bicubic_mean_gradient": means["bicubic"], "psnr_model_mean_gradient": means["psnr"],
                                    "psnr_model": args.psnr}}
        record_metrics(args.real, metrics, "python bench/superres_real.py " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()

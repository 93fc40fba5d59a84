"""Paired translation (pix2pix) on held-out A|B images: are our outputs closer to the real
target than the inputs were? Also writes the README's result grid.

    python bench/style_quality.py                                   # shipped style-facades-label2photo
    python bench/style_quality.py --weights runs/facades/best.safetensors --max-images 20
    python bench/style_quality.py --grid docs/images/facades-label2photo.jpg --record

For every held-out pair the translation direction recorded in the weights picks the input
half and the target half. Per method (``input``: the untranslated input, the floor;
``ours``): mean L1 and PSNR/SSIM against the target on [0, 1] RGB, and the colour-histogram
distance of the whole output set to the whole target set (restore/evaluate/style.py). A
label map has no single right photo, so PSNR is low for any model; L1 and the histogram
distance say whether outputs moved from label colours towards photographs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import restore
from restore.engine.data import ab_halves, list_images
from restore.evaluate.style import colour_counts, histogram_distance
from restore.io.convert import array_to_tensor
from restore.io.image import Image, read_image, write_image
from restore.metrics import psnr, ssim
from restore.weights import record_metrics

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train" / "facades" / "test"


def halves(path: Path, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """``(input, target)`` uint8 halves of one A|B image for ``direction``."""
    a_side, b_side = ab_halves(read_image(path).pixels, width_axis=1)
    return (a_side, b_side) if direction == "AtoB" else (b_side, a_side)


def pooled_colour_counts(images: list[np.ndarray]) -> np.ndarray:
    """``(3, 256)`` per-channel level counts pooled over uint8 RGB images."""
    return sum(colour_counts(array_to_tensor(image)) for image in images)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="style-facades-label2photo", help="weights name or file")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of held-out A|B images")
    parser.add_argument("--max-images", type=int, default=None, help="first N images (path order)")
    parser.add_argument("--grid", type=Path, default=None, help="write input | ours | target rows of the first images")
    parser.add_argument("--grid-rows", type=int, default=4, help="rows in --grid")
    parser.add_argument("--record", action="store_true",
                        help="store the means in weights/manifest.toml under the shipped --weights name")
    args = parser.parse_args(argv)

    model = restore.load(args.weights, device="cpu")
    direction = model.metadata.get("direction", "AtoB")
    paths = list_images(args.data)[: args.max_images]
    if not paths:
        raise SystemExit(f"error: no images in {args.data}")
    scores: dict[str, dict[str, list[float]]] = {m: {"l1": [], "psnr": [], "ssim": []} for m in ("input", "ours")}
    outputs: dict[str, list[np.ndarray]] = {"input": [], "ours": [], "target": []}
    started = time.perf_counter()
    for path in paths:
        source, target = halves(path, direction)
        translated = model(source)
        for method, image in (("input", source), ("ours", translated)):
            scores[method]["l1"].append(float(np.abs(image / 255.0 - target / 255.0).mean()))
            scores[method]["psnr"].append(psnr(image, target))
            scores[method]["ssim"].append(ssim(image, target))
        for key, image in (("input", source), ("ours", translated), ("target", target)):
            outputs[key].append(image)
    seconds = time.perf_counter() - started
    target_counts = pooled_colour_counts(outputs["target"])
    means = {method: {name: float(np.mean(values)) for name, values in table.items()} for method, table in scores.items()}
    for method, values in means.items():
        values["histogram_w1"] = float(histogram_distance(pooled_colour_counts(outputs[method]), target_counts).mean())
    print(f"{len(paths)} held-out pairs from {args.data}, direction {direction}, {args.weights}")
    print(f"{'method':<8} {'L1':>7} {'PSNR':>7} {'SSIM':>7} {'hist W1':>8}")
    for method, values in means.items():
        print(f"{method:<8} {values['l1']:7.4f} {values['psnr']:7.2f} {values['ssim']:7.4f} {values['histogram_w1']:8.4f}")
    print(f"{seconds / len(paths):.2f} s per image (CPU, includes reading)")
    if args.grid is not None:
        rows = [np.concatenate([outputs[key][i] for key in ("input", "ours", "target")], axis=1)
                for i in range(min(args.grid_rows, len(paths)))]
        write_image(args.grid, Image(np.concatenate(rows, axis=0)))
        print(f"grid: {args.grid} (columns: input, ours, target)")
    if args.record:
        command = "python bench/style_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
        entry = {"images": len(paths), "direction": direction}
        entry |= means["ours"]
        entry |= {f"input_{name}": value for name, value in means["input"].items()}
        record_metrics(args.weights, {f"{args.data.parent.name}/{args.data.name}": entry}, command)


if __name__ == "__main__":
    main()

"""Inpainting quality per hole-area bin: our model against OpenCV Telea, OpenCV
Navier-Stokes and scikit-image biharmonic on Kodak24 with NVIDIA's irregular masks
(protocol: restore/evaluate/inpaint.py).

    python bench/inpaint_quality.py --weights runs/inpaint/best.safetensors
    python bench/inpaint_quality.py --limit 4 --methods telea,navier_stokes --out results.json
    python bench/inpaint_quality.py --methods ours+,telea   # the model with the x8 self-ensemble
    python bench/inpaint_quality.py --record          # maintainers: the shipped inpaint's metrics

Prints the table (PSNR / SSIM of the whole image, PSNR inside the holes and the fill's
texture ratio, per bin and method, with the hidden originals' texture) and our hole-PSNR
margin over Telea per bin, when both were run: the target is above Telea in every bin.
``ours+`` is the model with the x8 flip/rotation self-ensemble (``restore inpaint
--ensemble``, 8 times the time). ``--record`` stores our per-bin means and the baselines'
hole PSNR and texture in weights/manifest.toml under the shipped weights' name.
``--grid FILE`` also writes the largest-hole cases side by side: holed | Telea | ours |
original. Progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from grids import side_by_side  # bench/ is on sys.path when run as a script
from restore.evaluate.inpaint import (BINS, ORIGINAL, InpaintMethod, InpaintTable, benchmark_pairs, bin_label,
                                      evaluate_inpaint, fill, holed_image)
from restore.io.image import Image, write_image
from restore.evaluate.methods import MODEL_METHODS, PROTOCOLS, parse_methods, table_methods
from restore.weights import WeightsError, load_manifest, record_metrics

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"
DEFAULT_DATA = EVAL / "denoise" / "Kodak24"
DEFAULT_MASKS = EVAL / "inpaint" / "masks"
PROTOCOL = PROTOCOLS["inpaint"]
GRID_METHODS = ("telea", "ours")


def build_methods(asked: list[str], weights: str | None) -> dict[str, InpaintMethod]:
    """The methods ``asked`` for (names or comma-separated lists), in order; the model is
    loaded here, so a bad weights path fails before any slow baseline runs."""
    try:
        names = parse_methods("inpaint", asked)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if MODEL_METHODS.keys() & set(names) and weights is None:
        print("no --weights and no shipped inpaint weights: baselines only", file=sys.stderr)
        names = [name for name in names if name not in MODEL_METHODS]
    return table_methods("inpaint", names, [weights])


def bin_gains(table: InpaintTable, method: str, baseline: str) -> dict[int, float]:
    """Mean hole-PSNR difference ``method - baseline`` per bin (same image+mask pairs)."""
    return {
        index: float(np.mean(np.subtract(table.hole_psnr[method][index], table.hole_psnr[baseline][index])))
        for index in sorted(table.pairs)
    }


def margins(table: InpaintTable, method: str, baseline: str) -> str:
    gains = bin_gains(table, method, baseline)
    cells = ", ".join(f"{bin_label(index)} {gain:+.2f}" for index, gain in gains.items())
    return f"hole PSNR {method} - {baseline}: {cells}; mean {np.mean(list(gains.values())):+.2f} dB"


def manifest_metrics(table: InpaintTable, key: str) -> dict[str, dict]:
    """Under ``key`` (the dataset's name, ``[:N]`` with --limit): per bin our mean PSNR, SSIM, hole
    PSNR and texture ratio, every other method's hole PSNR and texture from the same run
    (``ours+`` as ``ensemble``) and the hidden originals' texture; our mean margins over Telea."""
    means = {(row["bin"], row["method"]): row for row in table.rows()}
    entry: dict = {"images": table.settings["images"], "masks": Path(table.settings["masks"]).name}
    for index in sorted(table.pairs):
        label = bin_label(index)
        ours = means[(label, "ours")]
        cell = {"pairs": ours["pairs"], "psnr": ours["psnr"], "ssim": ours["ssim"], "hole_psnr": ours["hole_psnr"],
                "texture": ours["texture"], "original_texture": table.mean_texture(ORIGINAL, index)}
        for method in (name for name in table.methods if name != "ours"):
            cell |= {f"{_manifest_name(method)}_{key}": means[(label, method)][key] for key in ("hole_psnr", "texture")}
        entry[f"holes_{label.replace('%', 'pct')}"] = cell
    if "telea" in table.methods:
        for method in (name for name in table.methods if name in MODEL_METHODS):
            suffix = "" if method == "ours" else f"_{_manifest_name(method)}"
            entry[f"mean_hole_psnr_gain_over_telea{suffix}"] = float(np.mean(list(bin_gains(table, method, "telea").values())))
    return {key: entry}


def write_grid(path: Path, data: Path, masks: Path, weights: str, count: int) -> None:
    """holed | Telea | ours | original for the first ``count`` pairs of the largest-hole bin."""
    methods = build_methods([",".join(GRID_METHODS)], weights)
    largest = (pair for pair in benchmark_pairs(data, masks) if pair.bin == len(BINS) - 1)
    rows = [[holed_image(pair), *(fill(methods[name], pair, name) for name in GRID_METHODS), pair.image]
            for pair in itertools.islice(largest, count)]
    if not rows:
        raise SystemExit(f"error: {masks}: no mask in the {bin_label(len(BINS) - 1)} bin for --grid")
    write_image(path, Image(side_by_side(rows)), quality=85)
    print(f"grid: {path} ({len(rows)} pairs of {bin_label(len(BINS) - 1)} holes; holed, "
          f"{', '.join(GRID_METHODS)}, original)", file=sys.stderr)


def _manifest_name(method: str) -> str:
    """A method's name in manifest keys: ``ours+`` is ``ensemble`` there (as in superres's entries)."""
    return "ensemble" if method == "ours+" else method


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="clean photos (default: Kodak24)")
    parser.add_argument("--masks", type=Path, default=DEFAULT_MASKS, help="hole masks (default: NVIDIA's)")
    parser.add_argument("--weights", default=None, help="our model: weights name or file (default: shipped inpaint)")
    parser.add_argument("--methods", default=",".join(PROTOCOL.defaults),
                        help=f"subset of {','.join(PROTOCOL.methods)} (default: all but ours+, the x8 self-ensemble)")
    parser.add_argument("--limit", type=int, default=None, help="first N images only (biharmonic is slow)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table and pairs as JSON")
    parser.add_argument("--grid", type=Path, default=None, help="also write the largest-hole cases side by side here")
    parser.add_argument("--grid-images", type=int, default=4, help="pairs in --grid")
    parser.add_argument("--record", action="store_true",
                        help="store our per-bin means in weights/manifest.toml under the shipped --weights name "
                             "(maintainers, after `restore weights export`)")
    args = parser.parse_args(argv)

    for folder in (args.data, args.masks):
        if not folder.is_dir():
            raise SystemExit(f"error: {folder}: not found (pass --data / --masks)")
    weights = args.weights or ("inpaint" if "inpaint" in load_manifest() else None)
    try:
        methods = build_methods([args.methods], weights)
    except WeightsError as error:
        raise SystemExit(f"error: {error}") from None
    if args.record and ("ours" not in methods or weights not in load_manifest()):
        raise SystemExit("error: --record needs the ours method and shipped weights")  # before the slow run
    if args.grid is not None:
        write_grid(args.grid, args.data, args.masks, weights, args.grid_images)
    table = evaluate_inpaint(args.data, args.masks, methods, limit=args.limit,
                             progress=lambda line: print(line, file=sys.stderr))
    table.settings["weights"] = weights if MODEL_METHODS.keys() & set(methods) else None
    print(table.to_text())
    for method in (name for name in methods if name in MODEL_METHODS and "telea" in methods):
        print(margins(table, method, "telea"))
    if args.out is not None:
        table.write_json(args.out)
    if args.record:
        key = table.dataset + (f"[:{args.limit}]" if args.limit else "")
        command = "python bench/inpaint_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
        record_metrics(weights, manifest_metrics(table, key), command)


if __name__ == "__main__":
    main()

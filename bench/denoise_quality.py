"""Denoising quality on the standard benchmarks: our model against BM3D, NL-means and the
noisy input, with the literature's protocol (see restore/evaluate/denoise.py).

    python bench/denoise_quality.py --weights runs/denoise-color/best.safetensors
    python bench/denoise_quality.py --sets CBSD68 --sigmas 25 --max-images 4 --out results.json

Prints one table per set (mean PSNR dB / SSIM per method and sigma, seconds per
megapixel); progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restore.evaluate.denoise import evaluate_denoise
from restore.evaluate.methods import PROTOCOLS, parse_methods, table_methods
from restore.evaluate.report import write_json_file
from restore.weights import WeightsError, record_metrics

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "denoise"
DEFAULT_SETS = ("CBSD68", "Kodak24", "McMaster", "BSD68", "Set12")
PROTOCOL = PROTOCOLS["denoise"]


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help="comma-separated set folders under --data")
    parser.add_argument("--sigmas", default="15,25,50", help="noise levels on the 0-255 scale")
    parser.add_argument("--max-images", type=int, default=None, help="first N images of each set (quick runs)")
    parser.add_argument("--weights", default="denoise-color", help="our model: weights name or .safetensors path")
    parser.add_argument("--methods", default=",".join(PROTOCOL.defaults),
                        help=f"subset of {','.join(PROTOCOL.methods)}")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the sets")
    parser.add_argument("--out", type=Path, default=None, help="write every table, per image too, as JSON")
    parser.add_argument("--record", action="store_true",
                        help="store the means in weights/manifest.toml under the shipped --weights name "
                             "(maintainers, after `restore weights export`)")
    args = parser.parse_args(argv)
    try:
        names = parse_methods("denoise", [args.methods])
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if args.record and "ours" not in names:
        raise SystemExit("error: --record needs the ours method")

    sigmas = [float(sigma) for sigma in parse_list(args.sigmas)]
    try:  # every model is loaded before any slow baseline runs, so a bad weights path fails at once
        methods = table_methods("denoise", names, [args.weights])
    except WeightsError as error:
        raise SystemExit(f"error: {error}") from None
    results = {}
    for name in parse_list(args.sets):
        folder = args.data / name
        if not folder.is_dir():
            raise SystemExit(f"error: {folder}: set not found (pass --data to point at the eval sets)")
        table = evaluate_denoise(
            folder, methods, sigmas, max_images=args.max_images, progress=lambda line: print(line, file=sys.stderr)
        )
        print(table.to_text() + "\n", flush=True)
        results[name] = table.to_dict()
        if args.out is not None:  # after every set, so a long run keeps what it has done
            write_json_file(args.out, {"weights": args.weights, "sets": results})
    if args.record:
        command = "python bench/denoise_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
        record_metrics(args.weights, manifest_metrics(results, args.max_images), command)


def manifest_metrics(results: dict[str, dict], max_images: int | None) -> dict[str, dict]:
    """Per set and sigma: our mean PSNR/SSIM and each baseline's mean PSNR (same images, same
    run), plus seconds per megapixel: what `restore weights show` tells users. A subset is
    keyed ``SET[:N]`` so it never passes for the whole set."""
    metrics = {}
    for name, table in results.items():
        methods = table["methods"]
        entry: dict = {"images": len(table["images"])}
        for sigma in table["sigmas"]:
            key = f"{sigma:g}"
            row = {"psnr": methods["ours"]["sigma"][key]["psnr"], "ssim": methods["ours"]["sigma"][key]["ssim"]}
            row |= {f"{method}_psnr": scores["sigma"][key]["psnr"] for method, scores in methods.items() if method != "ours"}
            entry[f"sigma{key}"] = row
        entry["seconds_per_megapixel"] = {method: scores["seconds_per_megapixel"] for method, scores in methods.items()}
        metrics[name if max_images is None else f"{name}[:{max_images}]"] = entry
    return metrics


if __name__ == "__main__":
    main()

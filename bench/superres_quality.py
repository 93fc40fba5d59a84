"""Super-resolution quality and speed on the standard benchmarks: bicubic, Lanczos and our
model, with the literature's protocol (see restore/evaluate/superres.py: the provided
LR_bicubic files, PSNR/SSIM on Y (BT.601), border of `scale` pixels cropped).

    python bench/superres_quality.py                                  # x4, shipped superres-x4 if any
    python bench/superres_quality.py --weights runs/superres-x4/best.safetensors
    python bench/superres_quality.py --sets Set5 --scale 2 --methods bicubic,lanczos

Prints one table per set (mean PSNR dB / SSIM and seconds per output megapixel per
method); progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restore.api import default_weights
from restore.evaluate.methods import MODEL_METHODS, PROTOCOLS, parse_methods, table_methods
from restore.evaluate.report import write_json_file
from restore.evaluate.superres import SuperResMethod, evaluate_superres
from restore.weights import WeightsError, record_metrics

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "sr"
DEFAULT_SETS = ("Set5", "Set14", "BSD100")
METHODS = PROTOCOLS["superres"].methods
DEFAULT_METHODS = ("bicubic", "lanczos", "ours")  # all but ours+, the x8 self-ensemble (8x the time)


def build_methods(
    names: list[str], weights: str | None, scale: int, precision: str
) -> tuple[dict[str, SuperResMethod], str | None]:
    """The requested methods in order, and the weights ``ours`` uses. Without ``--weights``
    ``ours`` is the shipped ``superres-x<scale>``, or left out (with a note) when this
    installation ships none."""
    try:
        names = parse_methods("superres", names)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if MODEL_METHODS.keys() & set(names) and weights is None:
        try:
            weights = default_weights("superres", 3, {"scale": scale})
        except WeightsError as error:
            print(f"note: leaving out our model: {error}", file=sys.stderr)
            names = [name for name in names if name not in MODEL_METHODS]
    methods = table_methods("superres", names, [weights], scale=scale, precision=precision)
    return methods, weights if MODEL_METHODS.keys() & set(methods) else None


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help="comma-separated set folders under --data")
    parser.add_argument("--scale", type=int, default=4, choices=(2, 3, 4), help="upscaling factor (and border crop)")
    parser.add_argument("--max-images", type=int, default=None, help="first N images of each set (quick runs)")
    parser.add_argument("--weights", default=None,
                        help="our model: weights name or file (default: the shipped superres-x<scale>)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"subset of {','.join(METHODS)} (ours+: the x8 self-ensemble, 8x the time)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="our model's precision")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the sets")
    parser.add_argument("--per-image", action="store_true", help="print every image's scores, not only the means")
    parser.add_argument("--out", type=Path, default=None, help="write every table, per image too, as JSON")
    parser.add_argument("--record", action="store_true",
                        help="store our means in weights/manifest.toml under the shipped --weights name "
                             "(maintainers, after `restore weights export`)")
    args = parser.parse_args(argv)

    try:
        methods, weights = build_methods(parse_list(args.methods), args.weights, args.scale, args.precision)
    except WeightsError as error:
        raise SystemExit(f"error: {error}") from None
    if args.record and (weights is None or "ours" not in methods):
        raise SystemExit("error: --record needs the ours method and shipped weights")
    results = {}
    for name in parse_list(args.sets):
        folder = args.data / name
        if not folder.is_dir():
            raise SystemExit(f"error: {folder}: set not found (pass --data to point at the eval sets)")
        table = evaluate_superres(
            folder, args.scale, methods, max_images=args.max_images, progress=lambda line: print(line, file=sys.stderr)
        )
        print(table.to_text(per_image=args.per_image) + "\n", flush=True)
        results[name] = table.to_dict()
        if args.out is not None:  # after every set, so a long run keeps what it has done
            write_json_file(args.out, {"weights": weights, "scale": args.scale, "sets": results})
    if args.record:
        command = "python bench/superres_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
        record_metrics(weights, manifest_metrics(results), command)


def manifest_metrics(results: dict[str, dict]) -> dict[str, dict]:
    """Per set: our mean PSNR/SSIM (Y, cropped), each baseline's mean PSNR from the same run,
    and seconds per output megapixel: what `restore weights show` tells users."""
    metrics = {}
    for name, table in results.items():
        methods = table["methods"]
        entry = {
            "scale": table["scale"],
            "images": len(methods["ours"]["images"]),
            "psnr_y": methods["ours"]["psnr"],
            "ssim_y": methods["ours"]["ssim"],
        }
        entry |= {f"{method.replace('ours+', 'ensemble')}_psnr_y": scores["psnr"]
                  for method, scores in methods.items() if method != "ours"}
        entry["seconds_per_megapixel"] = {method: scores["seconds_per_megapixel"] for method, scores in methods.items()}
        metrics[name] = entry
    return metrics


if __name__ == "__main__":
    main()

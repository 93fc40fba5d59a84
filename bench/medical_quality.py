"""Shipped medical weights on their held-out scans against the classical baselines, the
protocol of `restore eval medical` (restore/evaluate/medical.py), with per-file means and
the option to record them in weights/manifest.toml.

    python bench/medical_quality.py --weights medical-ct-denoise --data ../shared/data/medical/slices/ct4.png
    python bench/medical_quality.py --weights medical-mr-denoise \\
        --data ../shared/data/medical/nifti/MNI152_2009_template.nii.gz --data ../shared/data/medical/slices/mr4.png --record

Each recipe in weights/recipes/ names the files it held out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restore.evaluate.medical import MedicalTable, evaluate_medical
from restore.evaluate.report import mean_or_nan
from restore.weights import record_metrics


def per_file_means(table: MedicalTable) -> dict[str, dict[str, float]]:
    """``{file: {"<method>_psnr": dB, "<method>_ssim": ..., "slices": n}}``."""
    means: dict[str, dict[str, float]] = {}
    for file in dict.fromkeys(row["file"] for row in table.rows):
        rows = [row for row in table.rows if row["file"] == file]
        entry: dict[str, float] = {"slices": len({row["slice"] for row in rows})}
        for method in dict.fromkeys(row["method"] for row in rows):
            for metric in ("psnr", "ssim"):
                entry[f"{method}_{metric}"] = mean_or_nan([row[metric] for row in rows if row["method"] == method])
        means[file] = entry
    return means


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="medical weights name or file")
    parser.add_argument("--data", type=Path, action="append", required=True, help="held-out scan (repeatable)")
    parser.add_argument("--limit", type=int, default=4, help="slices per file, evenly spaced")
    parser.add_argument("--level", type=float, default=None, help="degradation level (default: mid training range)")
    parser.add_argument("--record", action="store_true",
                        help="store the means in weights/manifest.toml under the shipped --weights name")
    args = parser.parse_args(argv)

    table = evaluate_medical(args.weights, args.data, limit=args.limit, level=args.level, device="cpu", tile=0,
                             progress=lambda line: print(line, file=sys.stderr))
    print(table.to_text())
    files = per_file_means(table)
    for file, entry in files.items():
        print(f"{file}: " + ", ".join(f"{key} {value:.4g}" for key, value in entry.items()))
    if args.record:
        command = "python bench/medical_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
        overall = {f"{method}_{metric}": value for method, values in table.means().items()
                   for metric, value in values.items()}
        level_key = f"level_{table.settings['level']:g}"
        record_metrics(args.weights, {level_key: {"slices": len(table.rows) // len(table.settings["methods"]),
                                                  **overall, "files": files}}, command)


if __name__ == "__main__":
    main()

"""Shipped medical weights on their held-out scans against the classical baselines, the
protocol of `restore eval medical` (restore/evaluate/medical.py), with per-file means and
the option to record them in weights/manifest.toml.

    python bench/medical_quality.py --weights medical-ct-denoise --data ../shared/data/medical/slices/ct4.png
    python bench/medical_quality.py --weights medical-mr-denoise \\
        --data ../shared/data/medical/nifti/MNI152_2009_template.nii.gz --data ../shared/data/medical/slices/mr4.png --record

Each recipe in weights/recipes/ names the files it held out. ``--data pydicom:NAME`` is a
file of pydicom's bundled test data (``CT_small.dcm``: a CT slice no recipe trains on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restore.evaluate.medical import MedicalTable, evaluate_medical
from restore.evaluate.report import mean_or_nan
from restore.weights import record_metrics


def scan_path(value: str) -> Path:
    """A path, or ``pydicom:NAME`` for a file pydicom ships with its test data."""
    if value.startswith("pydicom:"):
        from pydicom.data import get_testdata_file

        found = get_testdata_file(value.removeprefix("pydicom:"))
        if found is None:
            raise argparse.ArgumentTypeError(f"pydicom ships no test file {value.removeprefix('pydicom:')!r}")
        return Path(found)
    return Path(value)


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


def margin_over_strongest(entry: dict[str, float]) -> str:
    """Ours against the best classical method on one file (the issue's per-file target)."""
    classical = {key.removesuffix("_psnr"): value for key, value in entry.items()
                 if key.endswith("_psnr") and key not in ("ours_psnr", "noisy_psnr")}
    if "ours_psnr" not in entry or not classical:
        return "no classical method to compare"
    best = max(classical, key=classical.get)
    return f"ours {entry['ours_psnr'] - classical[best]:+.2f} dB over the strongest classical method ({best})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="medical weights name or file")
    parser.add_argument("--data", type=scan_path, action="append", required=True, help="held-out scan (repeatable)")
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
        print(f"{file}: {margin_over_strongest(entry)}")
    if args.record:
        command = "python bench/medical_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
        overall = {f"{method}_{metric}": value for method, values in table.means().items()
                   for metric, value in values.items()}
        level_key = f"level_{table.settings['level']:g}"
        record_metrics(args.weights, {level_key: {"slices": len(table.rows) // len(table.settings["methods"]),
                                                  **overall, "files": files}}, command)


if __name__ == "__main__":
    main()

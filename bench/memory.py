"""Peak memory of `restore` on huge images, with the default tiling.

    python bench/memory.py                        # denoise 10000x10000 RGB; superres x4 of 3000x3000
    python bench/memory.py --denoise-size 4000 --superres-size 1000

Each case runs `restore <task>` as a child process on one generated image and reports the
child's peak resident memory (and peak GPU memory where the child used CUDA), next to the
sizes of the decoded input and output (8-bit RGB), so the constant part is visible:
peak - input - output is what tiling costs, and must not grow with the image.
Cases whose default weights this installation does not ship are skipped.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

CHILD = """
import json, resource, sys, torch
from restore.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_initialized() else 0
    print(json.dumps({"gpu_peak_bytes": gpu}), file=sys.stderr)
"""


def make_image(path: Path, size: int) -> None:
    """A size x size RGB PNG with structure and noise, built in row bands to keep this
    process small."""
    rng = np.random.default_rng(0)
    band = 1000
    rows = []
    for top in range(0, size, band):
        height = min(band, size - top)
        y = (np.arange(top, top + height, dtype=np.float32)[:, None] / size) * 255
        x = (np.arange(size, dtype=np.float32)[None, :] / size) * 255
        base = np.stack(np.broadcast_arrays(y, x, (x + y) / 2), axis=-1)
        rows.append(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))
    cv2.imwrite(str(path), np.concatenate(rows))


def run_case(task: str, args: list[str], source: Path, out: Path) -> dict:
    command = [sys.executable, "-c", CHILD, task, "--in", str(source), "--out", str(out), "--quiet", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if finished.returncode != 0:
        raise SystemExit(f"{task} failed:\n{finished.stderr[-2000:]}")
    if peak_kib <= before:
        print(f"warning: {task}: peak RSS not above an earlier child's; run cases separately", file=sys.stderr)
    gpu = json.loads(finished.stderr.strip().splitlines()[-1])["gpu_peak_bytes"]
    return {"peak_rss_bytes": peak_kib * 1024, "gpu_peak_bytes": gpu, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--denoise-size", type=int, default=10000, help="side of the denoised image (0 = skip)")
    parser.add_argument("--superres-size", type=int, default=3000, help="side of the x4 input (0 = skip)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from restore.api import default_weights
    from restore.weights import WeightsError

    cases = [("denoise", args.denoise_size, 1, ["--sigma", "25"]), ("superres", args.superres_size, 4, ["--scale", "4"])]
    results = {}
    with tempfile.TemporaryDirectory(prefix="restore-memory-") as temp:
        for task, size, scale, extra in cases:
            if not size:
                continue
            try:
                default_weights(task, 3)
            except WeightsError as error:
                print(f"{task}: skipped ({error})", file=sys.stderr)
                continue
            source = Path(temp) / f"{task}.png"
            make_image(source, size)
            measured = run_case(task, ["--device", args.device, *extra], source, Path(temp) / f"{task}-out")
            input_bytes, output_bytes = size * size * 3, size * size * 3 * scale * scale
            results[task] = {"size": size, "scale": scale, "input_bytes": input_bytes, "output_bytes": output_bytes,
                             **measured, "constant_bytes": measured["peak_rss_bytes"] - input_bytes - output_bytes}
            source.unlink()

    gib = 2**30
    print(f"{'task':<10}{'image':>14}{'peak RSS GiB':>14}{'in+out GiB':>12}{'rest GiB':>10}{'GPU GiB':>9}{'s':>8}")
    for task, row in results.items():
        image = f"{row['size']}x{row['size']}"
        print(f"{task:<10}{image:>14}{row['peak_rss_bytes'] / gib:>14.2f}"
              f"{(row['input_bytes'] + row['output_bytes']) / gib:>12.2f}{row['constant_bytes'] / gib:>10.2f}"
              f"{row['gpu_peak_bytes'] / gib:>9.2f}{row['seconds']:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

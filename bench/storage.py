"""Object storage against local disk: the same batch with --in/--out on disk and in S3.

    python bench/storage.py                          # 24 images of 256x256, shipped denoise weights
    python bench/storage.py --images 48 --size 128 --weights runs/x/best.safetensors --json storage.json

Starts moto's S3 server on a free port of 127.0.0.1 (pip install 'restore[dev]'; stopped at
the end), uploads a folder of generated PNGs, then times ``restore.process_folder`` from a
local folder to a local folder and from ``s3://`` to ``s3://`` (reads, decoding, the
network, encoding, uploads, report.json), in ``--rounds`` rounds with ``overwrite`` so each
round does every image. Prints each path's median images/s and the median over rounds of
the ratio S3/local (each round runs both paths back to back, the order turned each round, so
a change in the machine's load weighs on both).

moto runs on this machine's cores, beside restore, and answers over loopback: the ratio is
the cost of the storage code path (requests, copies, staging files) plus moto's CPU, not a
real network's latency or bandwidth.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

from restore.api import default_weights, process_folder


def write_images(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        smooth = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 4.0)
        noisy = np.clip(smooth * 255 + rng.normal(0, 15, smooth.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{index:04d}.png"), noisy)


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=2).close()
            return server, endpoint
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise SystemExit(f"moto's S3 server did not start on {endpoint} (pip install 'moto[server]')")
            time.sleep(0.2)


def rate(source: str | Path, destination: str | Path, count: int, options: dict) -> float:
    started = time.perf_counter()
    report = process_folder("denoise", source, destination, overwrite=True, quiet=True, **options)
    seconds = time.perf_counter() - started
    if report.count("done") != count:
        raise SystemExit(f"{source} -> {destination}: {report.summary()}")
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--weights", default=None, help="default: the shipped colour denoiser")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import boto3

    server, endpoint = start_moto()
    try:
        os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint})
        with tempfile.TemporaryDirectory() as work:
            local = Path(work) / "in"
            write_images(local, args.images, args.size)
            client = boto3.client("s3", endpoint_url=endpoint)
            client.create_bucket(Bucket="bench")
            for path in sorted(local.iterdir()):
                client.put_object(Bucket="bench", Key=f"in/{path.name}", Body=path.read_bytes())
            options = {"weights": args.weights or default_weights("denoise", 3), "sigma": 25.0,
                       "workers": args.workers, "precision": "fp32"}
            rate(local, Path(work) / "warm-up", args.images, options)  # loads the weights once
            paths = {"local": (local, Path(work) / "out"), "s3": ("s3://bench/in", "s3://bench/out")}
            rates: dict[str, list[float]] = {"local": [], "s3": []}
            for number in range(args.rounds):  # back to back, the order turned each round
                for name in (("local", "s3") if number % 2 == 0 else ("s3", "local")):
                    rates[name].append(rate(*paths[name], args.images, options))
    finally:
        server.terminate()
        server.wait(timeout=30)
    medians = {path: statistics.median(values) for path, values in rates.items()}
    # the ratio of each round's pair, run back to back, then their median: the machine's load
    # changes between rounds far more than within one
    ratio = statistics.median(s3 / disk for s3, disk in zip(rates["s3"], rates["local"]))
    result = {"images": args.images, "size": args.size, "weights": options["weights"],
              "images_per_second": medians, "rounds": rates, "ratio_s3_over_local": ratio}
    print(f"{args.images} images of {args.size}x{args.size}, {options['weights']}, fp32, {args.workers} workers")
    for path, value in medians.items():
        rounds = ", ".join(f"{each:.2f}" for each in rates[path])
        print(f"  {path:6s} {value:7.2f} images/s (rounds: {rounds})")
    print(f"  S3 (moto) / local disk: {result['ratio_s3_over_local']:.2f}x")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

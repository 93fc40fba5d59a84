"""The batch engine on a Ray cluster against the local engine, on this machine.

    python bench/cluster.py                       # 16 images of 256x256, shipped denoise weights
    python bench/cluster.py --images 32 --size 256 --json cluster.json

Times ``restore.process_folder`` (fp32) over a folder of generated PNGs:

- the local engine (this process, torch limited to 1 thread), --in/--out on disk and in S3;
- ``--cluster`` on a 1-node and on a 2-node Ray cluster started here (tests/ray_cluster.py:
  ``ray start`` on 127.0.0.1, 1 CPU and torch 1 thread per node, stopped at the end), one
  actor per node, on disk and (2 nodes) in S3.

S3 is moto's server on 127.0.0.1 (pip install 'restore[dev]'). Each configuration's rate is
taken from when its outputs appeared, first to last (images/s once running), and the rest of
its wall time is its fixed **start-up** (joining the cluster, starting actors, loading the
weights): a cluster pays seconds of start-up that a big batch amortises. Prints each and the
ratios to the local engine on disk. On a 2-core machine shared with
other work, two nodes cannot be twice one: the ratio says what the extra node and Ray's
tasks cost here, not what N GPU machines give (docs/scale-out.md does that arithmetic).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from restore.api import default_weights, process_folder
from storage import start_moto, write_images

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ray_cluster import LocalCluster  # noqa: E402 - tests/ holds the local cluster's helper


def finished_at(destination: str | Path, client) -> list[float]:
    """When each output of a run appeared: file times on disk, object times in S3 (1 s
    resolution: runs of a dozen seconds or more)."""
    if isinstance(destination, Path):
        return [path.stat().st_mtime for path in destination.rglob("*.png")]
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
    return [entry["LastModified"].timestamp() for entry in listing if entry["Key"].endswith(".png")]


def measure(source: str | Path, destination: str | Path, count: int, options: dict, client) -> dict[str, float]:
    """Images/s once running (from the outputs' times: first to last) and the start-up
    before it (joining the cluster, starting actors, loading weights): the rest of the wall
    time."""
    started = time.perf_counter()
    report = process_folder("denoise", source, destination, overwrite=True, quiet=True, **options)
    wall = time.perf_counter() - started
    if report.count("done") != count:
        raise SystemExit(f"{source} -> {destination}: {report.summary()}")
    times = sorted(finished_at(destination, client))
    rate = (len(times) - 1) / max(times[-1] - times[0], 1e-3)
    return {"images_per_second": rate, "startup_seconds": max(0.0, wall - count / rate), "wall_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--weights", default=None, help="default: the shipped colour denoiser")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the local engine as one node: torch on 1 thread
    import boto3

    options = {"weights": args.weights or default_weights("denoise", 3), "sigma": 25.0, "precision": "fp32"}
    server, endpoint = start_moto()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "RAY_USAGE_STATS_ENABLED": "0"})
    results: dict[str, dict] = {}
    cluster = None
    try:
        with tempfile.TemporaryDirectory() as work:
            root = Path(work)
            client = boto3.client("s3", endpoint_url=endpoint)
            client.create_bucket(Bucket="bench")
            write_images(root / "in", args.images, args.size)
            for path in sorted((root / "in").iterdir()):
                client.put_object(Bucket="bench", Key=f"in/{path.name}", Body=path.read_bytes())
            disk, s3 = (root / "in", root / "out"), ("s3://bench/in", "s3://bench/out")
            measure(*disk, args.images, options, client)  # warm-up: caches, first weights load
            results["local disk"] = measure(*disk, args.images, options, client)
            results["local S3"] = measure(*s3, args.images, options, client)
            cluster = LocalCluster(cpus=1, threads=1)
            cluster.start_head()
            on_cluster = {**options, "cluster": cluster.address, "cluster_actors": 1}
            results["1 node disk"] = measure(*disk, args.images, on_cluster, client)
            cluster.add_worker()
            on_cluster["cluster_actors"] = 2
            results["2 nodes disk"] = measure(*disk, args.images, on_cluster, client)
            results["2 nodes S3"] = measure(*s3, args.images, on_cluster, client)
    finally:
        if cluster is not None:
            cluster.stop()
        server.terminate()
        server.wait(timeout=30)
    base = results["local disk"]["images_per_second"]
    print(f"{args.images} images of {args.size}x{args.size}, {options['weights']}, fp32, "
          f"torch 1 thread per node")
    for name, result in results.items():
        print(f"  {name:13s} {result['images_per_second']:6.2f} images/s ({result['images_per_second'] / base:4.2f}x "
              f"local disk), start-up {result['startup_seconds']:5.1f} s")
    print(f"  S3 (moto) / disk: local engine {results['local S3']['images_per_second'] / base:.2f}x, "
          f"2 nodes {results['2 nodes S3']['images_per_second'] / results['2 nodes disk']['images_per_second']:.2f}x")
    print(f"  2 nodes / 1 node: {results['2 nodes disk']['images_per_second'] / results['1 node disk']['images_per_second']:.2f}x")
    if args.json is not None:
        args.json.write_text(json.dumps({"images": args.images, "size": args.size, "results": results}, indent=2))


if __name__ == "__main__":
    main()

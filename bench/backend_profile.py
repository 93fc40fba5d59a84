"""Two backend paths back to back on one image, and where OpenVINO spends a graph's time.

    python bench/backend_profile.py --weights denoise-color --size 481x321
    python bench/backend_profile.py --weights superres-x4 --size 128x128 --layers

backend_speed.py scores every output (PSNR, SSIM) between calls; here the paths (default
torch bf16 and OpenVINO bf16, any of backend_speed.py's) run one call after another on the
same image (a Kodak24 photo resized, 8-bit, or float with noise where ``--float``), after two
warm-up calls each, and each path's median time is printed with the ratio. ``--layers``
prints OpenVINO's per-layer profile of the weights' exported graph at the network input the
image gives (bf16 hint), summed by operation type: which layers dominate.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

import numpy as np
import torch

from backend_speed import EVAL, PATHS, load_path  # bench/ is on sys.path when run as a script
from restore.evaluate.pairs import index_images
from restore.io.image import read_image


def test_image(width: int, height: int, floating: bool) -> np.ndarray:
    """The first Kodak24 photo resized to ``width`` x ``height`` (with noise of sd 0.1 as
    float32 where ``floating``, as the denoise benchmark's inputs are)."""
    import cv2

    photo = read_image(sorted(index_images(EVAL / "denoise" / "Kodak24", "").values())[0]).pixels
    image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
    if not floating:
        return image
    return (image / 255 + np.random.default_rng(0).normal(0, 0.1, image.shape)).astype(np.float32)


def back_to_back(weights: str, paths: list[str], image: np.ndarray, repeats: int) -> dict[str, float]:
    """Each path's median seconds per call, the paths alternating call by call."""
    options = {"sigma": 25} if weights.startswith("denoise") else {}
    models = {path: load_path(weights, path) for path in paths}
    for model in models.values():
        model(image, **options)
        model(image, **options)
    times: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(repeats):
        for path, model in models.items():
            start = time.perf_counter()
            model(image, **options)
            times[path].append(time.perf_counter() - start)
    return {path: statistics.median(values) for path, values in times.items()}


def layer_profile(weights: str, image: np.ndarray) -> list[tuple[str, float]]:
    """OpenVINO's milliseconds per (operation, kernel) on the graph's input for ``image``."""
    import openvino

    model = load_path(weights, "openvino-bf16")
    graph = model._graph
    height = -(-image.shape[0] // model.multiple) * model.multiple
    width = -(-image.shape[1] // model.multiple) * model.multiple
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(graph.graphs["fp32"])), "CPU", {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "bf16", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    batch = np.random.default_rng(0).random((1, graph.graph.channels, height, width)).astype(np.float32)
    for _ in range(3):
        request.infer([batch])
    totals: collections.Counter[str] = collections.Counter()
    for layer in request.get_profiling_info():
        totals[f"{layer.node_type} ({layer.exec_type})"] += layer.real_time.total_seconds() * 1000
    return totals.most_common()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="denoise-color", help="shipped weights (denoise-color, superres-x4, ...)")
    parser.add_argument("--size", default="481x321", help="WIDTHxHEIGHT of the input image")
    parser.add_argument("--paths", default="torch-bf16,openvino-bf16", help=f"two or more of {','.join(PATHS)}")
    parser.add_argument("--repeats", type=int, default=6, help="timed calls per path")
    parser.add_argument("--float", action="store_true", help="a float32 input with noise instead of 8-bit")
    parser.add_argument("--layers", action="store_true", help="also OpenVINO's per-layer profile")
    args = parser.parse_args(argv)
    width, height = (int(side) for side in args.size.lower().split("x"))
    paths = [path for path in args.paths.split(",") if path]
    if unknown := set(paths) - PATHS.keys():
        parser.error(f"unknown paths {', '.join(sorted(unknown))}; known: {', '.join(PATHS)}")
    image = test_image(width, height, args.float)
    seconds = back_to_back(args.weights, paths, image, args.repeats)
    first = paths[0]
    print(f"{args.weights} on a {width}x{height} {'float' if args.float else '8-bit'} image, median of {args.repeats}:")
    for path, value in seconds.items():
        print(f"  {path:<18} {value * 1000:8.1f} ms   {seconds[first] / value:5.2f}x {first}")
    if args.layers:
        profile = layer_profile(args.weights, image)
        total = sum(milliseconds for _, milliseconds in profile)
        print(f"OpenVINO bf16 per-layer profile, {total:.1f} ms in all:")
        for name, milliseconds in profile[:10]:
            print(f"  {milliseconds:8.2f} ms {milliseconds / total * 100:5.1f} %  {name}")


if __name__ == "__main__":
    main()

"""Seconds per megapixel and PSNR of each way of running the network, on the task benchmarks.

    python bench/backend_speed.py                          # every path, denoise-color, superres-x4, inpaint
    python bench/backend_speed.py --max-images 5 --paths torch-fp32,onnxruntime-fp32
    python bench/backend_speed.py --record                 # maintainers: store the paths in the manifest

Paths (``--paths``), all through restore's inference engine (the same tiling as
``restore denoise``; only the network call differs):

- ``torch-fp32``: torch eager in fp32 with channels-last tensors, restore's default on a CPU;
- ``torch-bf16``: the same under bf16 autocast (fast only where the CPU has AVX512-BF16 or
  AMX; emulated, and many times slower, elsewhere);
- ``torch-fp32-nchw``: torch fp32 with contiguous (NCHW) tensors, for comparison;
- ``onnxruntime-fp32``: the exported graph in ONNX Runtime (graph optimisations on, threads = cores);
- ``openvino-fp32`` and ``openvino-bf16``: the graph in OpenVINO, in fp32 and with its bf16
  inference precision hint (ignored by CPUs without bf16 arithmetic);
- ``onnxruntime-int8`` and ``openvino-int8``: the graph quantised to int8 (QDQ, calibrated on
  the training crops of weights/int8/NAME.json: restore/engine/backends/int8.py) in each runtime.

Benchmarks: denoise-color on CBSD68[:20] at sigma 25, superres-x4 on Set5 x4 (PSNR-Y),
inpaint on Kodak24 with NVIDIA's masks (hole PSNR), each by its protocol in
restore/evaluate. Every path runs each image in turn in one process, so the ratios against
torch fp32 see the same machine load. A first pass over the set builds each path's plans for
each input shape (OpenVINO compiles its kernels per new input shape, which a folder of
same-size photos or tiles pays once, and which would otherwise weigh on Set5's five
differently sized images: ``--cold`` shows how much); then ``--passes`` timed passes give each
path's median s/MP (one pass's timings moved by 10-50 % between runs on a 2-core machine).
``--cold`` times one first pass instead, after one warm-up call. ``--record`` stores each
path's s/MP, speed ratio and PSNR loss against torch fp32 under the weights'
``backend_speed`` metrics, from which ``--backend auto`` takes the fastest path losing at
most 0.05 dB (measured on this CPU: re-run it on another); an int8 path only under
``--precision auto``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import restore
from restore.engine.backends import BACKEND_SPEED, MAX_PSNR_LOSS, choose_backend, installed
from restore.evaluate.denoise import evaluate_denoise
from restore.evaluate.inpaint import evaluate_inpaint
from restore.evaluate.superres import evaluate_superres
from restore.weights import record_metrics

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"
PATHS = {  # name -> Restorer settings
    "torch-fp32": {"precision": "fp32"},
    "torch-bf16": {"precision": "bf16"},
    "torch-fp32-nchw": {"precision": "fp32"},
    "onnxruntime-fp32": {"precision": "fp32", "backend": "onnxruntime"},
    "openvino-fp32": {"precision": "fp32", "backend": "openvino"},
    "openvino-bf16": {"precision": "bf16", "backend": "openvino"},
    "onnxruntime-int8": {"precision": "int8", "backend": "onnxruntime"},
    "openvino-int8": {"precision": "int8", "backend": "openvino"},
}
BASELINE = "torch-fp32"


class Contiguous(nn.Module):
    """A network run on contiguous (NCHW) tensors whatever layout it is handed."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network.to(memory_format=torch.contiguous_format)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network(batch.contiguous())


def load_path(weights: str, path: str) -> restore.Restorer:
    model = restore.load(weights, device="cpu", **PATHS[path])
    if path.endswith("-nchw"):
        model.network = Contiguous(model.network)
    return model


class Benchmark:
    """One task's benchmark: its weights, its set and how each path is scored on it."""

    def __init__(self, task: str, weights: str, label: str, run: Callable[[dict[str, restore.Restorer]], dict]) -> None:
        self.task, self.weights, self.label, self.run = task, weights, label, run


def denoise(limit: int) -> Callable[[dict[str, restore.Restorer]], dict[str, tuple[float, float]]]:
    def run(models: dict[str, restore.Restorer]) -> dict[str, tuple[float, float]]:
        methods = {name: (lambda noisy, sigma, model=model: model(noisy, sigma=sigma)) for name, model in models.items()}
        table = evaluate_denoise(EVAL / "denoise" / "CBSD68", methods, [25], max_images=limit, progress=_progress)
        return {name: (table.seconds_per_megapixel(name), table.mean_psnr(name, 25.0)) for name in models}

    return run


def superres(limit: int) -> Callable[[dict[str, restore.Restorer]], dict[str, tuple[float, float]]]:
    def run(models: dict[str, restore.Restorer]) -> dict[str, tuple[float, float]]:
        methods = {name: (lambda low, scale, model=model: model(low)) for name, model in models.items()}
        table = evaluate_superres(EVAL / "sr" / "Set5", 4, methods, max_images=limit, progress=_progress)
        return {name: (table.seconds_per_megapixel(name), table.mean_psnr(name)) for name in models}

    return run


def inpaint(limit: int) -> Callable[[dict[str, restore.Restorer]], dict[str, tuple[float, float]]]:
    def run(models: dict[str, restore.Restorer]) -> dict[str, tuple[float, float]]:
        methods = {name: (lambda holed, hole, model=model: model(holed, mask=hole)) for name, model in models.items()}
        table = evaluate_inpaint(EVAL / "denoise" / "Kodak24", EVAL / "inpaint" / "masks", methods, limit=limit,
                                 progress=_progress)
        pairs = sum(len(bin_pairs) for bin_pairs in table.pairs.values())
        megapixels = pairs * 768 * 512 / 1e6  # every Kodak24 photo is 768x512 or 512x768
        return {name: (table.seconds[name] / megapixels,
                       float(np.mean([value for values in table.hole_psnr[name].values() for value in values])))
                for name in models}

    return run


def _progress(line: str) -> None:
    print(line, file=sys.stderr)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(benchmark: Benchmark, paths: list[str], passes: int = 3,
            cold: bool = False) -> dict[str, dict[str, float]]:
    """s/MP (the median over ``passes`` timed passes, after an untimed one), speed against
    torch fp32, PSNR and PSNR loss of each path (torch fp32 always runs); ``cold``: one
    timed first pass, after one call."""
    models = {path: load_path(benchmark.weights, path) for path in paths}
    if cold:
        warm = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
        for model in models.values():  # graph compilation, first allocations
            model(warm, **({"mask": np.zeros((64, 64), bool)} if benchmark.task == "inpaint" else {}))
        timed = [benchmark.run(models)]
    else:
        benchmark.run(models)  # every input shape's plans
        timed = [benchmark.run(models) for _ in range(passes)]
    scores = {path: (float(np.median([run[path][0] for run in timed])), timed[0][path][1]) for path in models}
    base_speed, base_psnr = scores[BASELINE]
    return {path: {"seconds_per_megapixel": speed, "speed_vs_torch_fp32": base_speed / speed, "psnr": value,
                   "psnr_loss_db": base_psnr - value} for path, (speed, value) in scores.items()}


def table(benchmark: Benchmark, results: dict[str, dict[str, float]]) -> str:
    lines = [f"{benchmark.weights} on {benchmark.label} ({cpu_name()}, {torch.get_num_threads()} threads)",
             f"  {'path':<18} {'s/MP':>8} {'x torch fp32':>13} {'PSNR':>8} {'loss dB':>8}"]
    for path, row in results.items():
        lines.append(f"  {path:<18} {row['seconds_per_megapixel']:>8.2f} {row['speed_vs_torch_fp32']:>12.2f}x "
                     f"{row['psnr']:>8.3f} {row['psnr_loss_db']:>8.3f}")
    # what restore runs 8-bit images at on this CPU under --precision auto, on torch
    eight_bit = restore.load(benchmark.weights, device="cpu").image_precision(exact=False)
    chosen = "-".join(choose_backend("auto", torch.device("cpu"), eight_bit, {"paths": results}, int8=True))
    lines.append(f"  --backend auto --precision auto (8-bit images, this CPU: {eight_bit}) takes: {chosen}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}")
    parser.add_argument("--tasks", default="denoise,superres,inpaint", help="comma-separated subset")
    parser.add_argument("--max-images", type=int, default=20, help="CBSD68 images (the standard subset is 20)")
    parser.add_argument("--sr-images", type=int, default=5, help="Set5 images")
    parser.add_argument("--inpaint-images", type=int, default=2, help="Kodak24 images (each with one mask per bin)")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the set (median s/MP)")
    parser.add_argument("--cold", action="store_true",
                        help="time the first pass over the set (each input shape new to each path)")
    parser.add_argument("--record", action="store_true",
                        help="store each path's speed and PSNR loss under the weights' backend_speed metrics")
    args = parser.parse_args(argv)
    paths = [path for path in args.paths.split(",") if path]
    unknown = set(paths) - PATHS.keys()
    if unknown:
        raise SystemExit(f"error: unknown paths {', '.join(sorted(unknown))}; known: {', '.join(PATHS)}")
    missing = [path for path in paths if not installed(PATHS[path].get("backend", "torch"))]
    if missing:
        print(f"skipped (package not installed): {', '.join(missing)}", file=sys.stderr)
    paths = [BASELINE] + [path for path in paths if path != BASELINE and path not in missing]
    benchmarks = {
        "denoise": Benchmark("denoise", "denoise-color", f"CBSD68[:{args.max_images}] sigma 25 (PSNR)",
                             denoise(args.max_images)),
        "superres": Benchmark("superres", "superres-x4", f"Set5[:{args.sr_images}] x4 (PSNR-Y)", superres(args.sr_images)),
        "inpaint": Benchmark("inpaint", "inpaint", f"Kodak24[:{args.inpaint_images}] x NVIDIA masks (hole PSNR)",
                             inpaint(args.inpaint_images)),
    }
    command = "python bench/backend_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for task in args.tasks.split(","):
        benchmark = benchmarks[task]
        results = measure(benchmark, paths, args.passes, args.cold)
        print(table(benchmark, results), flush=True)
        if args.record:
            timed = "first pass" if args.cold else f"median of {args.passes} passes after one"
            record: dict[str, Any] = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "timed": timed,
                                      "benchmark": benchmark.label, "max_psnr_loss_db": MAX_PSNR_LOSS,
                                      "paths": results}
            record_metrics(benchmark.weights, {BACKEND_SPEED: record}, command)


if __name__ == "__main__":
    main()

"""Where a :class:`~restore.model.Restorer`'s network runs: torch itself, or the network
exported once to an ONNX graph and run by ONNX Runtime or OpenVINO (often 2-3x faster than
torch on a CPU: ``python bench/backend_speed.py``).

Only the network call changes: the tiler, the batch engine and the task's pre- and
post-processing run in torch as before. A graph is exported on first use, checked against
torch's output (:mod:`restore.engine.backends.export`) and cached per weights and export
settings in the user's cache folder, so the same weights are never exported twice.

- :func:`choose_backend`: ``auto`` -> the fastest path measured for the weights
  (``bench/backend_speed.py --record``) within :data:`MAX_PSNR_LOSS` of torch fp32, int8
  paths included where the precision is left to ``auto``;
- :func:`exported_network`: the cached (or newly exported) graph, ready to run, with its
  int8 quantisation (:mod:`restore.engine.backends.int8`) when asked.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from restore.engine.device import DeviceError

TORCH = "torch"
EXPORTED = ("onnxruntime", "openvino")  # the backends that run an exported graph
BACKENDS = (TORCH, *EXPORTED)
CHOICES = (*BACKENDS, "auto")
# the package each exported backend imports, and the extra of restore that installs it
PACKAGES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "openvino")}
# the manifest's metrics key of bench/backend_speed.py's record: s/MP and PSNR loss per path
BACKEND_SPEED = "backend_speed"
# how much PSNR a path may lose against torch fp32 for ``auto`` to take it (bench/backend_speed.py)
MAX_PSNR_LOSS = 0.05
# the precisions each backend runs (ONNX Runtime's CPU kernels are fp32; OpenVINO's bf16 is
# its inference precision hint, which it ignores on CPUs without bf16 arithmetic; int8 is the
# graph quantised after training, which both run)
INT8 = "int8"
PRECISIONS = {"torch": ("fp32", "bf16", "fp16"), "onnxruntime": ("fp32", INT8), "openvino": ("fp32", "bf16", INT8)}


class BackendError(DeviceError):
    """A backend that cannot run here: its package is not installed, it does not run on the
    device or at the precision asked for, or the weights' exported graph does not reproduce
    torch's output. Like a missing device, it stops a command before any image."""


def installed(backend: str) -> bool:
    """Whether ``backend``'s package can be imported (torch always can)."""
    return backend == TORCH or importlib.util.find_spec(PACKAGES[backend][0]) is not None


def check_backend(backend: str) -> None:
    """Refuse an unknown backend, or one whose package is missing, naming the extra to install."""
    if backend not in CHOICES:
        raise BackendError(f"backend must be one of {', '.join(CHOICES)}, not {backend!r}")
    if backend in EXPORTED and not installed(backend):
        package, extra = PACKAGES[backend]
        raise BackendError(f"--backend {backend} needs the {package} package: pip install 'restore[{extra}]'")
    if backend in EXPORTED and importlib.util.find_spec("onnx") is None:  # torch's exporter writes with it
        raise BackendError(f"--backend {backend} needs the onnx package to export the network: "
                           f"pip install 'restore[{PACKAGES[backend][1]}]'")


def choose_backend(backend: str, device: torch.device, precision: str, records: dict[str, Any],
                   int8: bool = False) -> tuple[str, str]:
    """``(backend, precision of 8-bit images)`` a network runs with. ``auto``: on the CPU, the
    fastest path in ``records`` (the weights' :data:`BACKEND_SPEED` metrics) at ``precision``
    (what 8-bit images run at), or at int8 where ``int8`` (the precision was left to auto),
    that lost at most :data:`MAX_PSNR_LOSS` dB against torch fp32 and whose package is
    installed; torch where nothing qualifies, and on GPUs. ``precision`` int8 takes the fastest
    int8 path measured, whatever it lost (it was asked for). A named backend is checked."""
    check_backend(backend)
    if backend != "auto":
        if backend in EXPORTED and device.type != "cpu":
            raise BackendError(f"--backend {backend} runs on the CPU: use --device cpu, or --backend torch on {device.type}")
        return backend, precision
    wanted = {precision, INT8} if int8 else {precision}
    candidates = []
    for path, measured in records.get("paths", {}).items() if device.type == "cpu" else ():
        name, _, path_precision = path.partition("-")
        if (name in BACKENDS and path_precision in wanted and installed(name)
                and (_qualifies(measured) or (precision == INT8 and "seconds_per_megapixel" in measured))):
            candidates.append((float(measured["seconds_per_megapixel"]), name, path_precision))
    if candidates:
        return min(candidates)[1:]
    if precision == INT8:
        raise BackendError("--precision int8 with --backend auto: no int8 path was measured for these weights "
                           "(bench/backend_speed.py --record): name --backend onnxruntime or openvino")
    return TORCH, precision


def _qualifies(measured: Any) -> bool:
    return (isinstance(measured, dict) and "seconds_per_megapixel" in measured
            and float(measured.get("psnr_loss_db", float("inf"))) <= MAX_PSNR_LOSS)


def backend_precision(backend: str, precision: str) -> str:
    """The precision setting ``backend`` runs with: ONNX Runtime runs fp32 (``auto`` means
    fp32 there); a precision an exported backend does not run is refused, and int8 on torch.
    (torch checks its own; ``auto`` only picks a path measured at the precision the image runs at.)"""
    if backend not in EXPORTED:
        if precision == INT8:
            raise BackendError("--precision int8 runs an int8 graph: use --backend onnxruntime or openvino")
        return precision
    if precision == "auto":
        return "fp32" if backend == "onnxruntime" else precision
    if precision not in PRECISIONS[backend]:
        raise BackendError(f"--backend {backend} runs {' or '.join(PRECISIONS[backend])}, not {precision}: "
                           f"use --precision {PRECISIONS[backend][0]} or --backend torch")
    return precision


def cache_dir() -> Path:
    """Where exported graphs are kept: ``RESTORE_CACHE``, else platformdirs' user cache dir."""
    if os.environ.get("RESTORE_CACHE"):
        return Path(os.environ["RESTORE_CACHE"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("restore", appauthor=False))


def exported_network(network: nn.Module, spec: dict[str, Any], backend: str, int8_recipe: dict[str, Any] | None = None,
                     calibrate: Callable[[dict[str, Any], int], list[Any]] | None = None):  # noqa: ANN201
    """``network`` as ``backend`` runs it: a callable on ``(B, C, H, W)`` float32 CPU tensors
    taking the precision of the call too (:class:`restore.engine.backends.runtimes.GraphNetwork`).
    The graph comes from the cache, or is exported, checked and cached now; with
    ``int8_recipe`` (:func:`restore.engine.backends.int8.find_recipe`) its int8 quantisation
    too, calibrated on ``calibrate(recipe, size multiple)`` if it is not cached yet."""
    from restore.engine.backends.export import cached_graph, graph_input
    from restore.engine.backends.runtimes import GraphNetwork

    check_backend(backend)
    path = cached_graph(network, spec, cache_dir())
    graph = graph_input(network, spec)
    graphs = {"fp32": path}
    if int8_recipe is not None and calibrate is not None:
        from restore.engine.backends.int8 import cached_int8_graph

        graphs[INT8] = cached_int8_graph(path, int8_recipe, lambda: calibrate(int8_recipe, max(1, graph.multiple)))
    return GraphNetwork(graphs, backend, graph)

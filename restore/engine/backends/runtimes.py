"""Running an ONNX graph in ONNX Runtime or OpenVINO as a network the engine calls."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from restore.engine.backends.export import GraphInput

ArrayRun = Callable[[np.ndarray], np.ndarray]


def compile_graph(path: Path, backend: str, precision: str, threads: int | None = None) -> ArrayRun:
    """The graph at ``path`` ready to run in ``backend`` on ``(B, C, H, W)`` float32 arrays,
    with ``threads`` threads (default: torch's, i.e. the cores or OMP_NUM_THREADS), graph
    optimisations on; ``precision`` bf16 is OpenVINO's inference precision hint. Compiled once
    per process (a second ``restore.load`` of the same weights, a folder run after another,
    restore serve's requests, reuse it: compiling costs a second or more); a file rewritten
    since (another size or time) is compiled anew."""
    stat = Path(path).stat()
    return _compiled(Path(path), stat.st_size, stat.st_mtime_ns, backend, precision, threads or torch.get_num_threads())


@functools.lru_cache(maxsize=16)
def _compiled(path: Path, size: int, mtime_ns: int, backend: str, precision: str, threads: int) -> ArrayRun:
    del size, mtime_ns  # in the cache key only
    if backend == "onnxruntime":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda array: session.run(None, {name: array})[0]
    import openvino

    core = openvino.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)

    def run(array: np.ndarray) -> np.ndarray:
        request = compiled.create_infer_request()  # one per call: a request is not shared between threads
        request.infer([array])
        return request.get_output_tensor(0).data.copy()

    return run


class GraphNetwork:
    """An exported graph called like the torch network it replaces: ``(B, C, H, W)`` tensor
    in, tensor out, at the call's ``precision`` (``int8``: the quantised graph of ``graphs``,
    every other precision the fp32 one). A grey community network given a colour image runs
    on each of its channels, as :class:`restore.zoo.network.CommunityNetwork` does."""

    def __init__(self, graphs: dict[str, Path], backend: str, graph: GraphInput) -> None:
        self.graphs, self.backend, self.graph = graphs, backend, graph
        self._runs: dict[str, ArrayRun] = {}
        self._lock = threading.Lock()

    def run(self, precision: str) -> ArrayRun:
        """The graph compiled for ``precision``, on first use."""
        with self._lock:
            if precision not in self._runs:
                path = self.graphs[precision if precision == "int8" else "fp32"]
                self._runs[precision] = compile_graph(path, self.backend, "fp32" if precision == "int8" else precision)
            return self._runs[precision]

    def __call__(self, batch: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        run = self.run(precision)
        if self.graph.per_channel and batch.shape[1] != self.graph.channels:
            image, condition = (batch[:, :-1], batch[:, -1:]) if self.graph.condition else (batch, batch[:, :0])
            return torch.cat([self(torch.cat([image[:, [channel]], condition], dim=1), precision)
                              for channel in range(image.shape[1])], dim=1)
        array = np.ascontiguousarray(batch.detach().cpu().float().numpy())
        return torch.from_numpy(run(array))

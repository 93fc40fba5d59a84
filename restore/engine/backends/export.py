"""A network -> an ONNX graph with dynamic batch, height and width, checked against torch.

The graph is traced by torch's TorchScript-based exporter (``dynamo=False``: it handles the
U-Net, ResNet and community architectures alike, and needs only the ``onnx`` package) at
opset :data:`OPSET`, which ONNX Runtime >= 1.12 and OpenVINO >= 2022.3 both run. Before a
graph is written anywhere it runs on two tiles of different shapes (the second checks that
height and width really are dynamic) and must match torch's fp32 output within
:data:`TOLERANCE` in [0, 1] units; a graph that does not is refused, never cached.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from restore.engine.backends import EXPORTED, BackendError, check_backend, installed
from restore.io.atomic import atomic_write
from restore.zoo.network import ARCH, Description

OPSET = 17
TOLERANCE = 1e-3  # largest difference from torch fp32 a graph may have, in [0, 1] units
# bumped when the graph restore writes for the same weights changes (2: bicubic upsampling as a
# grouped convolution, restore.nets.unet.bicubic_upsample), so a cache never serves an older graph
GRAPH_VERSION = 2
TEST_SIDE = 48  # the test tiles' shorter side before rounding up to the network's size needs


@dataclass(frozen=True)
class GraphInput:
    """What the graph takes: ``channels`` in all (the image's, then the noise-level map or
    hole mask when ``condition``); ``per_channel``: a grey network that restore runs on each
    channel of a colour image; the sizes the network accepts (``multiple``, ``minimum``, ``square``)."""

    channels: int
    condition: bool = False
    per_channel: bool = False
    multiple: int = 1
    minimum: int = 0
    square: bool = False


def graph_input(network: nn.Module, spec: dict[str, Any]) -> GraphInput:
    """The input of ``network``, built from the weights' ``spec`` (restore's network spec, or
    a community architecture's description)."""
    if spec.get("arch") == ARCH:
        description = Description.from_spec(spec)
        condition = description.kind != "image"
        return GraphInput(description.in_channels + condition, condition,
                          per_channel=description.in_channels == 1 and description.out_channels == 1,
                          multiple=description.multiple, minimum=description.minimum, square=description.square)
    extra = int(spec.get("extra_channels", 0))
    return GraphInput(int(spec.get("in_channels", 3)) + extra, extra > 0,
                      multiple=int(getattr(network, "size_multiple", 1)))


def test_shapes(graph: GraphInput) -> list[tuple[int, int, int, int]]:
    """Two ``(B, C, H, W)`` test batches of different batch size and shape, each side a
    multiple of what the network needs (as the tiler pads)."""
    multiple = max(1, graph.multiple)

    def side(pixels: int) -> int:
        return math.ceil(max(pixels, graph.minimum) / multiple) * multiple

    short, long = side(TEST_SIDE), side(TEST_SIDE + 24)
    if graph.square:
        return [(1, graph.channels, short, short), (2, graph.channels, long, long)]
    return [(1, graph.channels, short, long), (2, graph.channels, long, short)]


def graph_digest(network: nn.Module, spec: dict[str, Any]) -> str:
    """sha256 of what decides the graph: the weights' tensors, their network spec and the
    export settings (so another opset or :data:`GRAPH_VERSION` is another graph)."""
    settings = {"spec": spec, "opset": OPSET, "graph_version": GRAPH_VERSION}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in sorted(network.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def cached_graph(network: nn.Module, spec: dict[str, Any], folder: Path) -> Path:
    """The graph of ``network`` in ``folder`` (``graphs/<digest>.onnx``), exported and checked
    on first use, written atomically; a graph already there is used as it is."""
    path = folder / "graphs" / f"{graph_digest(network, spec)}.onnx"
    if not path.is_file():
        write_graph(network, spec, path)
    return path


def write_graph(network: nn.Module, spec: dict[str, Any], path: Path, runtime: str | None = None) -> float:
    """Export ``network`` to ``path`` (atomically, only once it is checked) and return the
    largest difference from torch on the test tiles. ``runtime``: which backend checks it
    (default: ONNX Runtime where installed, else OpenVINO)."""
    runtime = runtime or next((name for name in EXPORTED if installed(name)), None)
    if runtime is None:
        raise BackendError("exporting to ONNX needs onnxruntime (or openvino) to check the graph: "
                           "pip install 'restore[onnx]'")
    check_backend(runtime)  # and the onnx package torch's exporter writes with
    graph = graph_input(network, spec)
    data = export_onnx(network, graph)
    difference = 0.0

    def write(temp: Path) -> None:
        nonlocal difference
        temp.write_bytes(data)
        difference = check_graph(temp, network, graph, runtime)

    atomic_write(path, write)
    return difference


def export_onnx(network: nn.Module, graph: GraphInput) -> bytes:
    """The ONNX graph of ``network`` (fp32, batch, height and width dynamic)."""
    sample = torch.rand(test_shapes(graph)[0], generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's warnings about Python ints: the check below decides
            torch.onnx.export(network, (sample,), buffer, dynamo=False, opset_version=OPSET,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": axes, "output": axes})
    except Exception as error:  # the exporter's errors share no base class (unsupported operators, tracing)
        reason = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise BackendError(f"the network cannot be exported to ONNX ({reason.strip()}): use --backend torch") from error
    return buffer.getvalue()


def check_graph(path: Path, network: nn.Module, graph: GraphInput, runtime: str) -> float:
    """The largest difference between the graph at ``path`` (run by ``runtime``) and torch
    fp32 on the test tiles; a graph beyond :data:`TOLERANCE` (or one that fails) is refused."""
    from restore.engine.backends.runtimes import compile_graph

    run = compile_graph(path, runtime, "fp32")
    generator = torch.Generator().manual_seed(1)
    largest = 0.0
    for shape in test_shapes(graph):
        sample = torch.rand(shape, generator=generator)
        with torch.no_grad():
            expected = network(sample).float().numpy()
        try:
            actual = run(sample.numpy())
        except Exception as error:  # the runtime's own errors (a shape the graph fixed at export)
            raise BackendError(f"the exported graph fails on a {shape[2]}x{shape[3]} tile in {runtime} "
                               f"({str(error).splitlines()[0] if str(error) else type(error).__name__}): "
                               f"use --backend torch") from error
        if actual.shape != expected.shape:
            raise BackendError(f"the exported graph gives {actual.shape} for a {shape} batch, torch {expected.shape}: "
                               f"use --backend torch")
        largest = max(largest, float(np.abs(actual - expected).max()))
    if not largest <= TOLERANCE:
        raise BackendError(f"the exported graph differs from torch by {largest:.2g} (at most {TOLERANCE:g} allowed) "
                           f"in {runtime}: use --backend torch")
    return largest

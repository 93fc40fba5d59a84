"""int8 graphs: the exported fp32 graph quantised after training (ONNX Runtime's static QDQ
quantisation: int8 per-channel weights, uint8 activations calibrated on training crops),
which ONNX Runtime and OpenVINO both run in int8.

Calibration must be reproducible, so it follows a committed *recipe* per shipped weights
(``weights/int8/NAME.json``, written by ``python bench/int8_recipe.py --weights NAME``): the
training crops (file, position), the seed of their degradation (the task's own
``make_pair``: noise at sigmas over the trained range with its noise-level map, bicubic
downscaling, hole masks) and the quantisation settings. Crops come from training images only
(:func:`restore.calibration.train_data`), never from evaluation sets. The quantised graph is cached beside the
fp32 one, named by the fp32 graph's digest and the recipe's, so it is built once per weights
and recipe. Weights without a recipe (your own) are refused with what to do instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from restore.engine.backends import BackendError, installed
from restore.io.atomic import atomic_write

# the settings quantize_static runs with; part of a recipe, so a change is another graph
QUANTISATION = {"format": "QDQ", "per_channel": True, "weights": "QInt8", "activations": "QUInt8",
                "calibration": "MinMax", "operators": ["Conv", "ConvTranspose"], "fp32_ends": True}
Calibrate = Callable[[], list[np.ndarray]]  # the network-input batches a graph is calibrated on


def recipe_path(name: str) -> Path:
    from restore.weights import weights_dir

    return weights_dir() / "int8" / f"{name}.json"


def find_recipe(name: str | None, sha256: str | None) -> dict[str, Any]:
    """The int8 recipe of the shipped weights ``name`` (whose file has ``sha256``); weights
    without one are refused, naming what to do."""
    path = recipe_path(name) if name else None
    if path is None or not path.is_file():
        raise BackendError(f"--precision int8 needs a calibration recipe, and {name or 'this weights file'} has none "
                           f"(shipped weights keep theirs in weights/int8/; a maintainer writes one with "
                           f"`python bench/int8_recipe.py --weights NAME`): use --precision fp32 (or bf16 on openvino)")
    recipe = json.loads(path.read_text())
    if sha256 is not None and recipe.get("sha256") != sha256:
        raise BackendError(f"{path} was calibrated for another file of {name} (sha256 {recipe.get('sha256', '?')[:12]}): "
                           f"rewrite it with `python bench/int8_recipe.py --weights {name}`, or use --precision fp32")
    return recipe


def recipe_digest(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def cached_int8_graph(fp32_graph: Path, recipe: dict[str, Any], calibrate: Calibrate) -> Path:
    """The int8 graph of ``fp32_graph`` (cached as ``<fp32 digest>-int8-<recipe digest>.onnx``
    beside it), quantised now on first use, on ``calibrate()``'s batches (the recipe's crops:
    :func:`restore.calibration.calibration_batches`, which the task layer builds), and written
    atomically."""
    settings = {**recipe, "quantisation": recipe.get("quantisation", QUANTISATION)}
    path = fp32_graph.with_name(f"{fp32_graph.stem}-int8-{recipe_digest(settings)}.onnx")
    if not path.is_file():
        if not installed("onnxruntime"):
            raise BackendError("--precision int8 quantises the graph with ONNX Runtime (OpenVINO runs it): "
                               "pip install 'restore[onnx]', or use --precision fp32")
        batches = calibrate()
        atomic_write(path, lambda temp: quantise(fp32_graph, temp, batches, settings["quantisation"]))
    return path


def end_convolutions(graph: Any, operators: set[str]) -> list[str]:
    """The names of the convolutions (``operators``) of an ONNX ``graph`` at its ends: those
    that no other convolution precedes (they read the image itself) or follows (they write
    the output). A U-Net's first and last layers, and a super-resolution network's fixed
    bicubic convolution of the input (restore.nets.unet.bicubic_upsample), whose 8-bit
    activations would be the output image rounded to 8 bits."""
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def meets_convolution(node: Any, neighbours: Callable[[Any], list[Any]]) -> bool:
        seen, frontier = set(), neighbours(node)
        while frontier:
            current = frontier.pop()
            if current.op_type in operators:
                return True
            if id(current) not in seen:
                seen.add(id(current))
                frontier.extend(neighbours(current))
        return False

    def before(node: Any) -> list[Any]:
        return [producers[name] for name in node.input if name in producers]

    def after(node: Any) -> list[Any]:
        return [consumer for name in node.output for consumer in consumers.get(name, [])]

    return [node.name for node in graph.node if node.op_type in operators
            and not (meets_convolution(node, before) and meets_convolution(node, after))]


def quantise(source: Path, target: Path, batches: list[np.ndarray], settings: dict[str, Any]) -> None:
    """ONNX Runtime's static quantisation of ``source`` into ``target``, calibrated on ``batches``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        """The batches in ranges: quantize_static's strided calibration folds each range into
        the running minima and maxima, so only one batch's activations are held at a time."""

        def __init__(self) -> None:
            self.set_range(0, len(batches))

        def __len__(self) -> int:
            return len(batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.batches = iter(batches[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    excluded = []
    if settings.get("fp32_ends"):  # the convolutions at the ends stay fp32, as usual for image-to-image networks
        import onnx

        excluded = end_convolutions(onnx.load(str(source)).graph, set(settings["operators"]))
    logger = logging.getLogger()  # quantize_static warns on the root logger to pre-process the graph
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat[settings["format"]],
                        per_channel=settings["per_channel"], weight_type=QuantType[settings["weights"]],
                        activation_type=QuantType[settings["activations"]],
                        calibrate_method=CalibrationMethod[settings["calibration"]],
                        op_types_to_quantize=settings["operators"], nodes_to_exclude=excluded,
                        extra_options={"CalibStridedMinMax": 1})
    finally:
        logger.setLevel(level)

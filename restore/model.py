"""A loaded model: network + task + device settings, callable on arrays or tensors.

This is the inference engine every task shares; the CLI and the folder batch engine are
thin layers over it::

    model = restore.load("denoise-color", device="auto")
    clean = model(noisy_uint8_array, sigma=25)      # same type, shape and dtype back
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from restore.engine.backends import (
    BACKEND_SPEED,
    INT8,
    TORCH,
    BackendError,
    backend_precision,
    check_backend,
    choose_backend,
    exported_network,
)
from restore.engine.backends.int8 import find_recipe
from restore.calibration import calibration_batches
from restore.engine.batch import Recorded
from restore.engine.device import autocast, check_precision, inference_precision, resolve_device
from restore.engine.progress import Progress
from restore.engine.tiling import BlockSink, OutputCollector, TileReader, auto_batch_size, auto_tile_size, stream_tiles
from restore.io.convert import array_to_tensor, is_neutral_grey, tensor_to_array
from restore.schema import options_of
from restore.tasks import TASKS, get_task
from restore.tasks.base import TaskOptions
from restore.weights import BF16_CHECK, WeightsEntry, WeightsError, resolve_weights
from restore.zoo.files import read_checkpoint
from restore.zoo.models import network_from_weights
from restore.zoo.network import precision_for

ImageLike = TypeVar("ImageLike", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class RestorerSettings:
    """How a :class:`Restorer` runs its network, whatever the task: the keyword settings of
    :func:`load` and of the CLI's inference options (see :class:`Restorer`)."""

    device: str = "auto"
    precision: str = "auto"
    tile: int | str = "auto"
    tile_overlap: int = 32
    batch_size: int | str = "auto"
    ensemble: bool = False
    compile: bool = False
    backend: str = TORCH

    def __post_init__(self) -> None:
        check_backend(self.backend)  # a missing package stops the command before any image


Transform = Callable[[torch.Tensor], torch.Tensor]


def _rotation(quarter_turns: int, flip: bool) -> tuple[Transform, Transform]:
    """A flip/rotation of ``(B, C, H, W)`` tensors and its inverse."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        x = x.flip(-1) if flip else x
        return torch.rot90(x, quarter_turns, dims=(-2, -1))

    def inverse(x: torch.Tensor) -> torch.Tensor:
        x = torch.rot90(x, -quarter_turns, dims=(-2, -1))
        return x.flip(-1) if flip else x

    return forward, inverse


# the identity first: without ensembling only it runs
ENSEMBLE_TRANSFORMS = [_rotation(turns, flip) for flip in (False, True) for turns in range(4)]


class Restorer:
    """Runs one network on images of any size (tiled when asked) on the chosen device.

    ``tile``: 0 = whole image at once, ``"auto"`` = pick from free memory, N = N-pixel
    tiles overlapping by ``tile_overlap`` and blended smoothly. ``batch_size``: tiles per
    forward pass, ``"auto"`` = 1 on the CPU (fastest there), 4 on a GPU. ``ensemble``: also run
    the 7 other flips/rotations of the image and average the 8 results (the "x8"
    self-ensemble of EDSR and DRUNet): about 0.1-0.2 dB more for 8 times the time.
    ``compile``: run the network through ``torch.compile``. Off by default because it slows
    some models down and each new tile shape costs seconds of compilation, so it suits
    folders of same-size images and models measured to gain (``python bench/compile_speed.py``).
    ``backend``: ``torch``, or the network exported to ONNX and run by ``onnxruntime`` or
    ``openvino`` on the CPU (:mod:`restore.engine.backends`; ``auto``: the fastest measured
    path that keeps the quality). The settings are :class:`RestorerSettings`' fields, given as keywords."""

    def __init__(
        self, network: nn.Module, metadata: dict[str, Any], *, entry: WeightsEntry | None = None, **settings: Any
    ) -> None:
        self.settings = options_of(RestorerSettings, settings, "Restorer")
        self.metadata = metadata
        self.entry = entry
        try:  # built with the options it was trained with (inpainting's fill, superres's scale)
            self.task = get_task(metadata["task"], metadata.get("task_options"))
        except (ValueError, TypeError) as error:
            raise WeightsError(f"{self.name}: its task options are unusable ({error})") from error
        self.device = resolve_device(self.settings.device)
        check_precision(self.device, self.settings.precision, allow_auto=True)
        self.precision = precision_for(network, self.settings.precision)
        spec = metadata["network"]
        self.channels = int(spec.get("in_channels", 3))
        self.scale = int(spec.get("upscale", 1))
        self.network = network.eval().requires_grad_(False).to(self.device)
        self.network.to(memory_format=torch.channels_last)
        self.multiple = int(getattr(network, "size_multiple", 1))
        self.per_channel = bool(getattr(network, "per_channel", False))  # a grey network run on each channel
        tile, batch_size = self.settings.tile, self.settings.batch_size
        if tile == "auto" and not getattr(network, "tileable", True):
            tile = 0  # an architecture that needs the whole image (spandrel's tiling hint)
        if batch_size == "auto":
            batch_size = auto_batch_size(self.device)
        if tile == "auto":  # sized for a whole batch of tiles in flight
            tile = auto_tile_size(self.device, self.channels, self.scale, batch_size=int(batch_size))
        self.tile, self.tile_overlap, self.batch_size = int(tile), self.settings.tile_overlap, int(batch_size)
        self.ensemble = self.settings.ensemble
        self.compile = self.settings.compile
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._use_backend(network, metadata["network"])

    def _use_backend(self, network: nn.Module, spec: dict[str, Any]) -> None:
        """Resolve the backend (``auto``: from the weights' measured paths at the precision
        8-bit images run at) and export the network for it (cached, so once per weights)."""
        metrics = self.entry.metrics if self.entry is not None else {}
        eight_bit = inference_precision(self.device, self.precision, exact=False, measured=BF16_CHECK in metrics)
        self.backend, chosen = choose_backend(self.settings.backend, self.device, eight_bit,
                                              metrics.get(BACKEND_SPEED, {}), int8=self.precision == "auto")
        # auto took a measured int8 path: 8-bit images run int8, exact ones (16-bit, float) fp32
        self.int8_images = chosen == INT8 and self.precision == "auto"
        self.precision = backend_precision(self.backend, self.precision)
        self._graph = None
        if self.backend != TORCH:
            if self.compile:
                raise BackendError(f"--compile compiles torch's network: it does not apply to --backend {self.backend}")
            recipe = None
            if self.precision == INT8 or self.int8_images:
                entry = self.entry
                recipe = find_recipe(entry.name if entry else None, entry.sha256 if entry else None)
            self._graph = exported_network(network, spec, self.backend, recipe, calibration_batches)

    @classmethod
    def from_weights(cls, name_or_path: str | Path, task: str | None = None, **settings: Any) -> Restorer:
        """``task``: for a file without restore's metadata (a plain ``.pth`` published by
        another project), the task that may recognise its architecture from its keys.
        ``settings``: :class:`RestorerSettings`' fields (a misspelt one is refused before
        the file is read)."""
        options_of(RestorerSettings, settings, "load")
        path, entry = resolve_weights(str(name_or_path), task)
        state_dict, metadata = read_checkpoint(path)
        if "network" not in metadata or "task" not in metadata:
            if task is None:
                raise WeightsError(f"{path}: no restore metadata (task, network); it was not written by restore")
            state_dict, metadata = get_task(task).recognise_weights(state_dict, str(path))
        if metadata["task"] not in TASKS:
            raise WeightsError(f"{path}: weights for an unknown task {metadata['task']!r}; known: {', '.join(TASKS)}")
        try:
            network = network_from_weights(metadata["network"], state_dict)
        except (ValueError, TypeError, RuntimeError) as error:  # a damaged spec, or tensors that do not fit it
            detail = " ".join(line.strip() for line in str(error).splitlines()[:2])
            raise WeightsError(f"{path}: cannot build the network the file describes ({detail})") from error
        return cls(network, metadata, entry=entry, **settings)

    @property
    def name(self) -> str:
        return self.entry.name if self.entry else str(self.metadata.get("source", "weights file"))

    def run(self, image: torch.Tensor, *, eight_bit: bool = False, **options: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        """``(1, C, H, W)`` [0, 1] CPU tensor -> restored float32 tensor and per-image decisions.

        ``eight_bit``: the image was decoded from 8-bit samples, so precision ``auto`` may
        run it in bf16 if the weights' bf16 outputs were measured (see
        :func:`restore.engine.device.inference_precision`). ``options``: the task's (its
        ``options_type``; another name is a TypeError).
        Grey images given to a colour model are replicated to RGB and averaged back (and
        colour to a grey model is refused), so grey stays grey whatever the weights."""
        return self._run(image, self.task.run_options(options), eight_bit=eight_bit)

    def _run(
        self, image: torch.Tensor, options: TaskOptions, *, eight_bit: bool
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        _check_finite(image)
        collector = OutputCollector(image.shape[2] * self.scale, image.shape[3] * self.scale)
        info = self._stream(
            lambda top, bottom, left, right: image[:, :, top:bottom, left:right],
            image.shape[1], image.shape[2], image.shape[3], collector, eight_bit=eight_bit, options=options,
        )
        return collector.result, info

    def restore_array(
        self, pixels: np.ndarray, progress: Progress | None = None, **options: Any
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """``(H, W, C)`` array (uint8, uint16 or float in [0, 1]) -> the task's output at the
        same dtype, and per-image decisions. Converted to float32 a tile at a time and
        written back a block at a time, so a huge 8-bit image costs little more than
        its input and output arrays (bench/memory.py). ``progress`` is told the tiles done.

        A grey picture stored as RGB (:func:`restore.io.convert.is_neutral_grey`) comes
        out grey too, for a task that keeps grey: the colour network runs on it and its
        output channels are averaged, as for a one-channel grey image, where it would
        otherwise add colour fringes (superres-x4-real: up to 70 levels). The task's
        post-processing still sees the input as it is (inpainting's known pixels are
        put back bit for bit). ``options``: the task's, as for :meth:`run`."""
        return self._restore_array(pixels, self.task.run_options(options), progress)

    def _restore_array(
        self, pixels: np.ndarray, options: TaskOptions, progress: Progress | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if pixels.dtype.kind == "f":
            _check_finite(torch.from_numpy(pixels))
        height, width, channels = pixels.shape
        neutral = self.task.keeps_grey and is_neutral_grey(pixels)
        output = np.empty((height * self.scale, width * self.scale, self.out_channels(channels)), dtype=pixels.dtype)

        def keep(top: int, left: int, block: torch.Tensor) -> None:
            output[top : top + block.shape[2], left : left + block.shape[3]] = tensor_to_array(block, pixels.dtype)

        info = self._stream(
            lambda top, bottom, left, right: array_to_tensor(pixels[top:bottom, left:right]),
            channels, height, width, keep, eight_bit=pixels.dtype == np.uint8, options=options, neutral=neutral,
            progress=progress,
        )
        if neutral:
            info = {**info, "grey_as_rgb": True}
        return self.task.postprocess(output, pixels, options), info

    def out_channels(self, channels: int) -> int:
        """Channels of the output for a ``channels``-channel input (grey stays grey)."""
        if channels == 1 or self.per_channel:
            return channels
        return int(self.metadata["network"].get("out_channels", self.channels))

    def _stream(
        self, read: TileReader, channels: int, height: int, width: int, sink: BlockSink, *, eight_bit: bool,
        options: TaskOptions, neutral: bool = False, progress: Progress | None = None,
    ) -> dict[str, Any]:
        """The one inference path: the task's per-image decisions, then the network over
        tiles read from ``read`` (grey replicated for a colour model, the task's input built
        per tile), finished blocks handed to ``sink`` clamped to [0, 1] (and grey again;
        ``neutral``: an RGB input that is grey, whose output gets the channels' mean in each)."""
        if channels != self.channels and not (channels == 1 and self.channels == 3) and not self.per_channel:
            raise ValueError(f"this {self.name} model takes {self.channels}-channel images, not {channels}")
        options, info = self.task.image_options(read, height, width, options)
        spatial = {key: getattr(options, key) for key in self.task.spatial_options}
        spatial = {key: value for key, value in spatial.items() if value is not None}

        def read_input(top: int, bottom: int, left: int, right: int) -> torch.Tensor:
            region = read(top, bottom, left, right)
            if region.shape[1] < self.channels:
                region = region.expand(-1, self.channels, -1, -1)
            cut = {key: _cut(value, top, bottom, left, right) for key, value in spatial.items()}
            return self.task.inference_input(region, dataclasses.replace(options, **cut) if cut else options)

        precision = self.image_precision(exact=not eight_bit)

        def finish(top: int, left: int, block: torch.Tensor) -> None:
            if not bool(torch.isfinite(block).all()):  # clamping would hide it as black or white
                raise NonFiniteOutput(
                    f"the network's output has NaN or infinite values (at {precision} precision"
                    + ("; try --precision fp32)" if precision != "fp32" else ")")
                )
            block = block.clamp_(0, 1)
            if block.shape[1] == 3 and (channels == 1 or neutral):
                grey = block.mean(dim=1, keepdim=True)
                block = grey if channels == 1 else grey.expand_as(block)
            sink(top, left, block)

        info = {**info, "precision": precision, "tile": self.tile, "backend": self.backend}
        stream_tiles(
            functools.partial(self._forward, precision=precision), read_input, height, width, finish,
            tile=self.tile, overlap=self.tile_overlap, scale=self.scale, multiple=self.multiple,
            batch_size=self.batch_size, device=self.device,
            autocast=functools.partial(autocast, self.device, precision), progress=progress,
        )
        return info

    def image_precision(self, exact: bool) -> str:
        """The precision an image runs at: int8 for 8-bit images where ``auto`` took an int8
        path, else :func:`restore.engine.device.inference_precision`'s choice."""
        if self.int8_images and not exact:
            return INT8
        measured = self.entry is not None and BF16_CHECK in self.entry.metrics
        return inference_precision(self.device, self.precision, exact=exact, measured=measured)

    def _forward(self, batch: torch.Tensor, precision: str) -> torch.Tensor:
        """One batch of tiles through the network (at ``precision``, which an exported graph's
        runtime is told; torch's is the autocast around this call); with ``ensemble`` the mean
        over the 8 flips/rotations of each tile (for a convolutional network, the same as
        flipping the whole image, tile by tile)."""
        transforms = ENSEMBLE_TRANSFORMS if self.ensemble else ENSEMBLE_TRANSFORMS[:1]
        if self._graph is not None:
            network = functools.partial(self._graph, precision=precision)
        else:
            network = self._compiled_network() if self.compile else self.network
        total = torch.zeros(())
        for forward, inverse in transforms:
            total = total + inverse(network(forward(batch).contiguous(memory_format=torch.channels_last)).float())
        return total / len(transforms)

    def _compiled_network(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``torch.compile`` of the network, made on first use (torch compiles it for each new
        input shape when it first sees it). A failure of the compiler itself (no C++ compiler
        on the CPU, an unsupported operation) says how to do without it."""
        if self._compiled is None:
            compiled = torch.compile(self.network)

            def run(batch: torch.Tensor) -> torch.Tensor:
                try:
                    return compiled(batch)
                except Exception as error:  # torch's compiler errors share no public base class
                    if not type(error).__module__.startswith(("torch._dynamo", "torch._inductor")):
                        raise
                    reason = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
                    raise RuntimeError(
                        f"torch.compile failed ({reason.strip()}): install a C++ compiler (g++ or clang++) "
                        "or run without --compile"
                    ) from error

            self._compiled = run
        return self._compiled

    def __call__(self, image: ImageLike, **options: Any) -> ImageLike:
        """Restore an ``(H, W)``/``(H, W, C)`` array (uint8, uint16 or float in [0, 1]) or a
        ``(C, H, W)``/``(B, C, H, W)`` tensor in [0, 1]; returns the same type, layout and
        dtype. ``options`` are the task's (e.g. ``sigma=25``, inpainting's ``mask=``): a name
        the task does not take is a TypeError that names it."""
        run_options = self.task.run_options(options)
        if isinstance(image, np.ndarray):
            output, _ = self._restore_array(image[:, :, None] if image.ndim == 2 else image, run_options)
            return output[:, :, 0] if image.ndim == 2 else output
        if isinstance(image, torch.Tensor):
            batch = image[None] if image.ndim == 3 else image
            outputs = [self._run_tensor(item[None].float().cpu(), run_options) for item in batch]
            result = torch.cat(outputs).to(image.dtype).to(image.device)
            return result[0] if image.ndim == 3 else result
        raise TypeError(f"expected a numpy array or torch tensor, not {type(image).__name__}")

    def _run_tensor(self, image: torch.Tensor, options: TaskOptions) -> torch.Tensor:
        """:meth:`run` plus the task's post-processing, which works on float32 arrays."""
        output = tensor_to_array(self._run(image, options, eight_bit=False)[0], np.float32)
        return array_to_tensor(self.task.postprocess(output, tensor_to_array(image, np.float32), options))


class NonFiniteOutput(ValueError):
    """The network produced NaN or infinity for an image (finite weights and input, so an
    overflow): that image fails instead of being written as a black one."""


def _cut(value: Any, top: int, bottom: int, left: int, right: int) -> Any:
    """A spatial option's part under one tile: tensors are ``(..., H, W)``, arrays ``(H, W, ...)``."""
    if isinstance(value, torch.Tensor):
        return value[..., top:bottom, left:right]
    return np.asarray(value)[top:bottom, left:right]


def _check_finite(image: torch.Tensor) -> None:
    """Refuse NaN and infinity: one such sample would spread through the network to every
    output pixel. (Values outside [0, 1] are allowed: benchmark noise is not clipped.)"""
    finite = torch.isfinite(image)
    if not finite.all():
        count = int((~finite).sum())
        raise ValueError(f"the image has {count} NaN or infinite sample(s); the network needs finite values")


def recorded_settings(settings: RestorerSettings, scans: bool = False, model: Restorer | None = None) -> Recorded:
    """Restorer ``settings`` as report.json records them,
    resolved for this machine. The precision each kind of input runs at and the ensemble
    change outputs, so a rerun compares them; the device, tiling and batching change them by
    rounding at most (tiles are blended), so they are only recorded. ``auto`` tile sizes
    follow the free memory of the moment: each image's info records the size it ran with.
    ``scans``: every input is exact (medical), never 8-bit. ``model``: the one model the run
    uses, already loaded, whose network may overrule the precision (a community architecture
    runs fp32 under ``auto``); without it the run's models are restore's own networks."""
    device = resolve_device(settings.device) if model is None else model.device
    backend = settings.backend if model is None else model.backend
    requested = backend_precision(backend, settings.precision) if model is None else model.precision
    # without a model the run uses the shipped defaults, whose bf16 outputs are all measured
    measured = model is None or (model.entry is not None and BF16_CHECK in model.entry.metrics)
    exact = inference_precision(device, requested, exact=True, measured=measured)
    precision = exact if scans else (model.image_precision(exact=False) if model is not None else
                                     inference_precision(device, requested, exact=False, measured=measured))
    if precision != exact:
        precision = f"{precision} for 8-bit images, {exact} for others"
    batch_size = settings.batch_size
    return Recorded(
        outputs={"precision": precision, "ensemble": settings.ensemble},
        execution={
            "device": str(device), "tile": settings.tile, "tile_overlap": settings.tile_overlap,
            "batch_size": auto_batch_size(device) if batch_size == "auto" else int(batch_size),
            "compile": settings.compile, "backend": backend,
        },
    )


def load(name_or_path: str | Path, task: str | None = None, **settings: Any) -> Restorer:
    """Load shipped weights by name (see ``restore weights list``), a user model's name
    (``restore weights add``) or a weights file; ``task`` lets a community checkpoint
    (Real-ESRGAN, KAIR, ...) be recognised for that task.

    ``settings``: ``device`` (auto|cpu|cuda|mps), ``precision`` (auto|fp32|bf16|fp16),
    ``tile``, ``tile_overlap``, ``batch_size`` (N or auto), ``ensemble``, ``compile``,
    ``backend`` (torch|onnxruntime|openvino|auto) (:class:`RestorerSettings`); another name is a TypeError that names it."""
    return Restorer.from_weights(name_or_path, task=task, **settings)

"""Task-level processing for scripts and the CLI: pick the right weights per image, keep
alpha and bit depth, and run whole folders through the batch engine."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from restore.engine.batch import BatchReport, BatchSettings, Recorded, run_batch
from restore.engine.cluster import ClusterSettings, cluster_executor
from restore.engine.progress import Progress
from restore.io.image import Image, resize_alpha
from restore.io.storage import ObjectPath, location
from restore.model import Restorer, RestorerSettings, recorded_settings
from restore.schema import option_defaults, split_options
from restore.tasks import get_task, task_class
from restore.tasks.base import TaskOptions
from restore.weights import WeightsError, fingerprint, load_manifest
from restore.weights.manifest import weights_dir

ALPHA_MODES = ("bicubic", "model")  # how alpha follows a task that changes the image size


@dataclass(frozen=True)
class ProcessorOptions:
    """How :class:`TaskProcessor` applies a task, beside the task's own options:
    ``weights`` (None: each image the task's default for its channels) and ``alpha``
    (``bicubic`` or ``model``: how alpha is resized when the task changes the image size)."""

    weights: str | None = None
    alpha: str = "bicubic"

    def __post_init__(self) -> None:
        if self.alpha not in ALPHA_MODES:
            raise ValueError(f"alpha must be one of {', '.join(ALPHA_MODES)}, not {self.alpha!r}")


def default_weights(task: str, channels: int, options: dict[str, Any] | None = None) -> str:
    """The shipped weights ``task`` uses for ``channels``-channel images: the first of the
    task's preferences that this installation ships. ``options`` (the command's) can change
    the preference, e.g. super-resolution's scale. When none is shipped, the error names the
    missing weights and the recipe that trains them."""
    candidates = get_task(task, options).default_weights(channels)
    shipped = load_manifest()
    for name in candidates:
        if name in shipped:
            return name
    wanted = ", ".join(candidates) or "none defined"
    message = f"no shipped {task} weights for {channels}-channel images ({wanted}) in this installation"
    recipes = [weights_dir() / "recipes" / f"{name}.toml" for name in candidates]
    recipe = next((path for path in recipes if path.is_file()), None)
    if recipe is None:
        raise WeightsError(f"{message}: pass --weights")
    run = f"runs/{recipe.stem}"
    raise WeightsError(
        f"{message}. Train them with `restore train {task} --config {_shown(recipe)} --out {run}` "
        f"and pass --weights {run}/best.safetensors"
    )


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter to copy)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class TaskProcessor:
    """Applies a task to decoded images.

    Without explicit ``weights`` each image gets the task's default for its channel count
    (grey images the grey model, colour the colour model), loaded once on first use."""

    def __init__(self, task: str, weights: str | None = None, root: Path | None = None, **settings: Any) -> None:
        """``root``: the ``--in`` file or folder, so a task can find an image's companions
        by relative path (inpainting's ``--masks DIR``). The other ``settings`` are the
        fields of :class:`~restore.model.RestorerSettings`, :class:`ProcessorOptions`
        (``alpha``) and the task's ``options_type``; any other name is a TypeError."""
        restorer, processor, own = split_options(
            settings, RestorerSettings, ProcessorOptions, task_class(task).options_type, where=task)
        self.restorer_settings = RestorerSettings(**restorer)
        self.processor_options = ProcessorOptions(weights=weights, **processor)
        self.weights = self.processor_options.weights
        self.root = location(root) if root is not None else None
        self._task_options = own  # as given: they build the task and pick its weights (superres's scale, model)
        self.task = get_task(task, own)
        self.options = self.task.run_options(own)
        # report.json records the options given, in their order (max_pixels with the batch's execution settings)
        self._recorded_names = [name for name in settings if name in (processor.keys() | own.keys()) - {"max_pixels"}]
        self._models: dict[str, Restorer] = {}

    def model_for(self, channels: int) -> Restorer:
        return self._model(self.weights or self._default_weights(channels))

    def check_weights(self) -> None:
        """Load explicitly given weights now, so a file that cannot be used (missing, a
        refused pickle, another task's weights) stops the run with one message before any
        image, instead of failing every image with it."""
        if self.weights is not None:
            self._model(self.weights)

    def _model(self, name: str) -> Restorer:
        if name not in self._models:
            model = Restorer.from_weights(name, task=self.task.name, **dataclasses.asdict(self.restorer_settings))
            if model.task.name != self.task.name:
                raise WeightsError(f"weights {name!r} are for {model.task.name}, not {self.task.name}")
            requested = getattr(self.options, "scale", None)
            if requested is not None and model.scale != requested:
                raise WeightsError(f"weights {name!r} upscale x{model.scale}, not the x{requested} asked for")
            self._models[name] = model
        return self._models[name]

    def _default_weights(self, channels: int) -> str:
        return default_weights(self.task.name, channels, self._task_options)

    def recorded(self) -> Recorded:
        """The settings of this processor as report.json records them (see
        :func:`restore.model.recorded_settings`): the task, the weights it may use with their
        sha256 (without ``weights``, the task's default for each channel count that has one
        shipped: which one an image used is in its info), the precision and ensemble, and the
        task's options (folders as real paths)."""
        names = [self.weights] if self.weights is not None else self._shipped_defaults()
        weights = {name: digest for each in names for name, digest in fingerprint(each).items()}
        options = {name: _recorded_value(self._option(name)) for name in self._recorded_names}
        record = recorded_settings(self.restorer_settings, model=self._models.get(self.weights or ""))
        return Recorded({"task": self.task.name, "weights": weights, **record.outputs, **options}, record.execution,
                        defaults=option_defaults(type(self.options)))

    def _option(self, name: str) -> Any:
        """The task's or this processor's option ``name``."""
        return getattr(self.options if hasattr(self.options, name) else self.processor_options, name)

    def _shipped_defaults(self) -> list[str]:
        """The default weights of grey and of colour images, those this installation ships."""
        names = set()
        for channels in (1, 3):
            try:
                names.add(self._default_weights(channels))
            except WeightsError:  # images of this kind fail, each with this message
                continue
        return sorted(names)

    def is_input(self, path: Path) -> bool:
        """The task's filter of the files under ``--in`` (see :meth:`Task.is_input`)."""
        return self.task.is_input(path, self.options)

    def __call__(
        self, image: Image, source: Path | None = None, progress: Progress | None = None
    ) -> tuple[Image, dict[str, Any]]:
        """The task's output for ``image`` (read from ``source``), and what was decided for
        it; ``progress`` is told the network's tiles done."""
        prepared = self.task.prepare(image, source, self._relative(source), self.options)
        if not prepared.run:
            return prepared.image, prepared.info
        image, options = prepared.image, dataclasses.replace(self.options, **prepared.options)
        model = self.model_for(image.channels)
        pixels, info = model.restore_array(image.pixels, progress, **vars(options))
        alpha = image.alpha
        if alpha is not None and alpha.shape != pixels.shape[:2]:
            alpha = self._resize_alpha(model, alpha, pixels.shape[0], pixels.shape[1], options)
        metadata = image.metadata.scaled(pixels.shape[1] / image.width, pixels.shape[0] / image.height)
        output = Image(pixels, alpha, format=image.format, metadata=metadata)
        return output, {"weights": model.name, **prepared.info, **info}

    def _resize_alpha(
        self, model: Restorer, alpha: np.ndarray, height: int, width: int, options: TaskOptions
    ) -> np.ndarray:
        """Alpha at the output size: bicubic by default, or (``alpha="model"``) the network
        run on alpha as a grey image, so a cut-out's edge is as sharp as the picture's."""
        if self.processor_options.alpha == "bicubic":
            return resize_alpha(alpha, height, width)
        resized, _ = model.restore_array(alpha[:, :, None], **vars(options))
        return resized[:, :, 0]

    def _relative(self, source: Path | None) -> Path | None:
        """``source``'s path under ``root``, as the batch engine mirrors it."""
        if source is None or self.root is None:
            return None
        return Path(source.name) if self.root.is_file() else source.relative_to(self.root)


def _recorded_value(value: Any) -> Any:
    """An option as report.json records it: folders as real paths (URLs as given), numpy
    scalars as numbers."""
    if isinstance(value, ObjectPath):
        return str(value)
    if isinstance(value, Path):
        return os.path.realpath(value)
    return value.item() if isinstance(value, np.generic) else value


def process_folder(task: str, src: str | Path, dst: str | Path, **options: Any) -> BatchReport:
    """Run ``task`` over every image under ``src``, writing the mirrored tree to ``dst``;
    either may be a storage URL (``s3://bucket/prefix/``, docs/scale-out.md).

    ``options``: ``weights`` and ``alpha`` (:class:`ProcessorOptions`), the task's own
    options (its ``options_type``, e.g. ``sigma``), the model settings (device, precision,
    tile, tile_overlap, batch_size, ensemble, compile) and the batch settings (suffix, ext,
    jpeg_quality, overwrite, workers, quiet, max_pixels) and where it runs
    (:class:`~restore.engine.cluster.ClusterSettings`: ``cluster``, the address of a Ray
    cluster, and ``cluster_actors``); any other name is a TypeError that names it. Returns
    the report also saved as ``dst/report.json``; ``report.exit_code`` is 0 when every input
    succeeded. Raises WeightsError, before any image, when the given ``weights`` cannot be
    used, and ClusterError when the cluster cannot be joined."""
    # max_pixels goes to the batch and to a task that reads files (inpainting's masks) or sizes
    # outputs (--outscale) by the same limit
    batch, cluster, *layers = split_options(options, BatchSettings, ClusterSettings, ProcessorOptions,
                                            RestorerSettings, task_class(task).options_type,
                                            where=f"process_folder({task!r})")
    settings = BatchSettings(**batch)
    taken = {name for layer in layers for name in layer}  # passed on in the order given, as report.json lists them
    source, destination = location(src), location(dst)  # a URL is checked here, before weights load
    processor_options = {name: value for name, value in options.items() if name in taken}
    processor = TaskProcessor(task, root=source, **processor_options)
    processor.check_weights()
    recorded = processor.recorded()
    executor = cluster_executor(ClusterSettings(**cluster), partial(TaskProcessor, task, root=source,
                                                                    **processor_options), recorded)
    return run_batch(source, destination, processor, settings, is_input=processor.is_input,
                     recorded=recorded, executor=executor)


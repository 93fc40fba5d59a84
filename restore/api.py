"""Task-level processing for scripts and the CLI: pick the right weights per image, keep
alpha and bit depth, and run whole folders through the batch engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from restore.engine.batch import BatchReport, BatchSettings, Recorded, run_batch
from restore.engine.progress import Progress
from restore.io.image import Image, resize_alpha
from restore.model import RESTORER_SETTINGS, Restorer, recorded_settings
from restore.tasks import get_task
from restore.weights import WeightsError, fingerprint, load_manifest
from restore.weights.manifest import weights_dir

ALPHA_MODES = ("bicubic", "model")  # how alpha follows a task that changes the image size


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
        Restorer's and the task's options; ``alpha`` (``bicubic`` or ``model``) says how
        alpha is resized when the task changes the image size."""
        self.weights = weights
        self.root = Path(root) if root is not None else None
        self.restorer_settings = {k: v for k, v in settings.items() if k in RESTORER_SETTINGS}
        self.options = {k: v for k, v in settings.items() if k not in RESTORER_SETTINGS}
        if self.options.get("alpha", "bicubic") not in ALPHA_MODES:
            raise ValueError(f"alpha must be one of {', '.join(ALPHA_MODES)}, not {self.options['alpha']!r}")
        self.task = get_task(task, self.options)
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
            model = Restorer.from_weights(name, task=self.task.name, **self.restorer_settings)
            if model.task.name != self.task.name:
                raise WeightsError(f"weights {name!r} are for {model.task.name}, not {self.task.name}")
            requested = self.options.get("scale")
            if requested is not None and model.scale != requested:
                raise WeightsError(f"weights {name!r} upscale x{model.scale}, not the x{requested} asked for")
            self._models[name] = model
        return self._models[name]

    def _default_weights(self, channels: int) -> str:
        return default_weights(self.task.name, channels, self.options)

    def recorded(self) -> Recorded:
        """The settings of this processor as report.json records them (see
        :func:`restore.model.recorded_settings`): the task, the weights it may use with their
        sha256 (without ``weights``, the task's default for each channel count that has one
        shipped: which one an image used is in its info), the precision and ensemble, and the
        task's options (folders as real paths)."""
        names = [self.weights] if self.weights is not None else self._shipped_defaults()
        weights = {name: digest for each in names for name, digest in fingerprint(each).items()}
        options = {
            name: os.path.realpath(value) if isinstance(value, Path) else value
            for name, value in self.options.items()
            if name != "max_pixels"  # recorded with the batch's execution settings
        }
        record = recorded_settings(self.restorer_settings, model=self._models.get(self.weights or ""))
        return Recorded({"task": self.task.name, "weights": weights, **record.outputs, **options}, record.execution)

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
        image, options = prepared.image, {**self.options, **prepared.options}
        model = self.model_for(image.channels)
        pixels, info = model.restore_array(image.pixels, progress, **options)
        alpha = image.alpha
        if alpha is not None and alpha.shape != pixels.shape[:2]:
            alpha = self._resize_alpha(model, alpha, pixels.shape[0], pixels.shape[1], options)
        metadata = image.metadata.scaled(pixels.shape[1] / image.width, pixels.shape[0] / image.height)
        output = Image(pixels, alpha, format=image.format, metadata=metadata)
        return output, {"weights": model.name, **prepared.info, **info}

    def _resize_alpha(
        self, model: Restorer, alpha: np.ndarray, height: int, width: int, options: dict[str, Any]
    ) -> np.ndarray:
        """Alpha at the output size: bicubic by default, or (``alpha="model"``) the network
        run on alpha as a grey image, so a cut-out's edge is as sharp as the picture's."""
        if self.options.get("alpha", "bicubic") == "bicubic":
            return resize_alpha(alpha, height, width)
        resized, _ = model.restore_array(alpha[:, :, None], **options)
        return resized[:, :, 0]

    def _relative(self, source: Path | None) -> Path | None:
        """``source``'s path under ``root``, as the batch engine mirrors it."""
        if source is None or self.root is None:
            return None
        return Path(source.name) if self.root.is_file() else source.relative_to(self.root)


def process_folder(task: str, src: str | Path, dst: str | Path, **options: Any) -> BatchReport:
    """Run ``task`` over every image under ``src``, writing the mirrored tree to ``dst``.

    ``options``: ``weights``, the task's own options (e.g. ``sigma``), the model settings
    (device, precision, tile, tile_overlap, batch_size) and the batch settings (suffix,
    ext, overwrite, workers, quiet, max_pixels). Returns the report also saved as
    ``dst/report.json``; ``report.exit_code`` is 0 when every input succeeded. Raises
    WeightsError, before any image, when the given ``weights`` cannot be used."""
    batch_fields = BatchSettings.__dataclass_fields__
    settings = BatchSettings(**{k: v for k, v in options.items() if k in batch_fields})
    rest = {k: v for k, v in options.items() if k not in batch_fields}
    # the task reads files too (inpainting's masks) and sizes outputs (--outscale) by the same limit
    processor = TaskProcessor(task, root=Path(src), max_pixels=settings.max_pixels, **rest)
    processor.check_weights()
    return run_batch(Path(src), Path(dst), processor, settings, is_input=processor.is_input,
                     recorded=processor.recorded())

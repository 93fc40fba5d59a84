"""Task-level processing for scripts and the CLI: pick the right weights per image, keep
alpha and bit depth, and run whole folders through the batch engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from restore.engine.batch import BatchReport, BatchSettings, run_batch
from restore.engine.checkpoint import WeightsError
from restore.io.convert import array_to_tensor, tensor_to_array
from restore.io.image import Image, resize_alpha
from restore.model import Restorer
from restore.tasks import get_task
from restore.weights import load_manifest

RESTORER_SETTINGS = ("device", "precision", "tile", "tile_overlap", "batch_size")


class TaskProcessor:
    """Applies a task to decoded images.

    Without explicit ``weights`` each image gets the task's default for its channel count
    (grey images the grey model, colour the colour model), loaded once on first use."""

    def __init__(self, task: str, weights: str | None = None, **settings: Any) -> None:
        self.task = get_task(task)
        self.weights = weights
        self.restorer_settings = {k: v for k, v in settings.items() if k in RESTORER_SETTINGS}
        self.options = {k: v for k, v in settings.items() if k not in RESTORER_SETTINGS}
        self._models: dict[str, Restorer] = {}

    def model_for(self, channels: int) -> Restorer:
        name = self.weights or self._default_weights(channels)
        if name not in self._models:
            model = Restorer.from_weights(name, **self.restorer_settings)
            if model.task.name != self.task.name:
                raise ValueError(f"weights {name!r} are for {model.task.name}, not {self.task.name}")
            self._models[name] = model
        return self._models[name]

    def _default_weights(self, channels: int) -> str:
        shipped = load_manifest()
        candidates = self.task.default_weights(channels)
        for name in candidates:
            if name in shipped:
                return name
        wanted = ", ".join(candidates) or "none defined"
        raise WeightsError(f"no shipped {self.task.name} weights for {channels}-channel images ({wanted}): pass --weights")

    def __call__(self, image: Image, source: Path | None = None) -> tuple[Image, dict[str, Any]]:
        del source  # tasks that read sidecar files (masks) use it
        model = self.model_for(image.channels)
        output, info = model.run(array_to_tensor(image.pixels), **self.options)
        pixels = tensor_to_array(output, image.pixels.dtype)
        alpha = image.alpha
        if alpha is not None and model.scale != 1:
            alpha = resize_alpha(alpha, pixels.shape[0], pixels.shape[1])
        return Image(pixels, alpha, format=image.format), {"weights": model.name, **info}


def process_folder(task: str, src: str | Path, dst: str | Path, **options: Any) -> BatchReport:
    """Run ``task`` over every image under ``src``, writing the mirrored tree to ``dst``.

    ``options``: ``weights``, the task's own options (e.g. ``sigma``), the model settings
    (device, precision, tile, tile_overlap, batch_size) and the batch settings (suffix,
    ext, overwrite, workers, quiet, max_pixels). Returns the report also saved as
    ``dst/report.json``; ``report.exit_code`` is 0 when every input succeeded."""
    batch_fields = BatchSettings.__dataclass_fields__
    settings = BatchSettings(**{k: v for k, v in options.items() if k in batch_fields})
    rest = {k: v for k, v in options.items() if k not in batch_fields}
    processor = TaskProcessor(task, **rest)
    return run_batch(Path(src), Path(dst), processor, settings)

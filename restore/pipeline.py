"""Several tasks in one pass over a folder (``restore chain``): each image goes from step to
step in memory, through one batch run, so the walk, mirror, resume, atomic writes, worker
threads and report.json are the batch engine's, as for one task.

A step is a task and its options as ``restore TASK`` takes them: the processor's
(``weights``, ``alpha``), the model's (device, precision, tile...) and the task's own
(``sigma``, ``scale``, ``masks_dir``...). The batch's settings (suffix, ext, overwrite,
workers, max_pixels...) belong to the whole chain. Every step sees the original input's
path, so inpainting finds an image's mask beside the input or mirrored under ``masks_dir``,
as ``restore inpaint`` does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restore.api import ProcessorOptions, TaskProcessor
from restore.engine.batch import BatchReport, BatchSettings, ImageUnits, Job, Recorded, failure_reason, run_batch
from restore.engine.progress import Progress
from restore.io.atomic import remove_stale_temps
from restore.io.image import Image
from restore.io.storage import location
from restore.model import RestorerSettings
from restore.schema import option_names, options_of, split_options
from restore.tasks import task_class

STEPS_FOLDER = ".steps"  # under --out; hidden, so a later run with this --out as --in never reads it


class StepError(ValueError):
    """A step of a chain that cannot run (before any image) or that failed on one image;
    the message names the step."""


@dataclass(frozen=True)
class ChainStep:
    """One step: a task and its options (see the module doc)."""

    task: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def where(self, number: int) -> str:
        """The step as messages name it: ``step 2 (inpaint)``."""
        return f"step {number} ({self.task})"


@dataclass
class ChainResult:
    """A chain's output for one image, and the outputs of the steps before the last that
    are kept (``keep_steps``), in order."""

    image: Image
    kept: list[Image] = field(default_factory=list)


class ChainProcessor:
    """Runs the steps one after the other on a decoded image: ``(image, source) -> (result,
    info)`` for :func:`restore.engine.batch.run_batch`. ``info["steps"]`` has each step's
    own info (weights, estimated sigma, mask...) and seconds."""

    def __init__(self, steps: Sequence[ChainStep], root: Path, max_pixels: int, keep_steps: bool = False) -> None:
        """``root``: the ``--in`` file or folder; ``max_pixels``: the batch's, also given to
        the tasks that take it (inpainting's mask files, as ``process_folder`` does)."""
        if not steps:
            raise StepError("a chain needs at least one step")
        self.steps = list(steps)
        self.keep_steps = keep_steps
        self.processors = [_processor(step, number, root, max_pixels) for number, step in enumerate(self.steps, 1)]

    def check_weights(self) -> None:
        """Each step's given weights loaded now: one that cannot be used is an error naming
        the step before any image (see :meth:`TaskProcessor.check_weights`)."""
        for number, (step, processor) in enumerate(zip(self.steps, self.processors), 1):
            try:
                processor.check_weights()
            except ValueError as error:
                raise StepError(f"{step.where(number)}: {error}") from error

    def is_input(self, path: Path) -> bool:
        """A file is an input when every step takes it (inpainting's masks are no input)."""
        return all(processor.is_input(path) for processor in self.processors)

    def recorded(self) -> Recorded:
        """The chain's settings as report.json records them: ``task: chain``, the ``steps``
        in order, ``keep_steps``, and each step's resolved settings (see
        :meth:`TaskProcessor.recorded`) under ``NUMBER.TASK.NAME`` keys, so a rerun with
        another chain is refused naming each setting that differs (``1.denoise.sigma: 15.0 ->
        25.0``)."""
        outputs: dict[str, Any] = {"task": "chain", "steps": [step.task for step in self.steps],
                                   "keep_steps": self.keep_steps}
        defaults: dict[str, Any] = {}
        execution = []
        for number, (step, processor) in enumerate(zip(self.steps, self.processors), 1):
            record, prefix = processor.recorded(), f"{number}.{step.task}."
            outputs.update({prefix + name: value for name, value in record.outputs.items() if name != "task"})
            defaults.update({prefix + name: value for name, value in record.defaults.items()})
            execution.append({"task": step.task, **record.execution})
        return Recorded(outputs, {"steps": execution}, defaults)

    def __call__(
        self, image: Image, source: Path | None = None, progress: Progress | None = None
    ) -> tuple[ChainResult, dict[str, Any]]:
        """The last step's output for ``image`` (read from ``source``), the kept steps'
        outputs, and what each step decided; a step's warning (inpainting: no mask) is
        the image's, named by its step."""
        result, steps, warnings = ChainResult(image), [], []
        last = len(self.steps)
        for number, (step, processor) in enumerate(zip(self.steps, self.processors), 1):
            started = time.perf_counter()
            try:
                result.image, info = processor(result.image, source, progress)
            except Exception as error:  # the batch reports the image as failed, naming the step
                shown = failure_reason(error, source) if source is not None else str(error)
                raise StepError(f"{step.where(number)}: {shown}") from error
            steps.append({"task": step.task, **info, "seconds": round(time.perf_counter() - started, 4)})
            if info.get("warning"):
                warnings.append(f"{step.where(number)}: {info['warning']}")
            if self.keep_steps and number < last:
                result.kept.append(result.image)
        return result, {"steps": steps, **({"warning": "; ".join(warnings)} if warnings else {})}


def _processor(step: ChainStep, number: int, root: Path, max_pixels: int) -> TaskProcessor:
    """The :class:`TaskProcessor` of a step. A batch setting among its options is a
    TypeError naming it (it is the chain's), as is a name no layer takes; a bad value is a
    :class:`StepError` naming the step."""
    where = step.where(number)
    try:
        options_type = task_class(step.task).options_type
    except ValueError as error:
        raise StepError(f"{where}: {error}") from error
    for name in step.options:
        if name in option_names(BatchSettings):
            raise TypeError(f"{where}: {name!r} is a setting of the whole chain, not of one step: give it once, "
                            f"beside the steps")
    split_options(step.options, ProcessorOptions, RestorerSettings, options_type, where=where)
    options = dict(step.options)
    if "max_pixels" in option_names(options_type):
        options["max_pixels"] = max_pixels
    try:
        return TaskProcessor(step.task, root=root, **options)
    except ValueError as error:
        raise StepError(f"{where}: {error}") from error


class ChainUnits(ImageUnits):
    """Image files, as :data:`restore.engine.batch.IMAGES`, plus (``keep_steps``) each
    kept step's output at the final output's path under ``OUT/.steps/N-TASK/``, written
    before the final one: an existing final output still means the whole image is done."""

    def __init__(self, destination: Path, steps: Sequence[ChainStep], keep_steps: bool) -> None:
        kept = steps[:-1] if keep_steps else []
        self.destination = destination
        self.folders = [destination / STEPS_FOLDER / f"{number}-{step.task}" for number, step in enumerate(kept, 1)]

    def plan(self, files: list[tuple[Path, Path]], destination: Path, settings: BatchSettings) -> list[Job]:
        """As images are planned; the temp files a killed run left in the kept steps' folders
        are removed, as the engine does in the output folders."""
        jobs = super().plan(files, destination, settings)
        subfolders = {job.output.parent.relative_to(destination) for job in jobs if job.output is not None}
        remove_stale_temps({folder / subfolder for folder in self.folders for subfolder in subfolders})
        return jobs

    def write(self, output: Path, result: ChainResult, settings: BatchSettings) -> None:
        relative = output.relative_to(self.destination)
        for folder, image in zip(self.folders, result.kept):
            super().write(folder / relative, image, settings)
        super().write(output, result.image, settings)


def run_chain(
    steps: Sequence[ChainStep | tuple[str, Mapping[str, Any]]], src: str | Path, dst: str | Path, *,
    keep_steps: bool = False, **batch: Any,
) -> BatchReport:
    """Run the ``steps`` (``ChainStep`` or ``(task, options)`` pairs) over every image under
    ``src``, one after the other in memory, writing the last step's outputs as the mirrored
    tree in ``dst``; ``keep_steps`` also writes each earlier step's under
    ``dst/.steps/N-TASK/``. ``batch``: the batch settings (suffix, ext, jpeg_quality,
    overwrite, workers, quiet, max_pixels); any other name is a TypeError.

    Returns the report also saved as ``dst/report.json``: one entry per image with each
    step's info. Raises, before any image, :class:`StepError` naming a step that cannot run
    (unknown task, bad option value, weights that cannot be used) and BatchUsageError as
    ``process_folder`` does (a rerun with other settings included)."""
    chain = [step if isinstance(step, ChainStep) else ChainStep(*step) for step in steps]
    settings = options_of(BatchSettings, batch, "chain")
    source, destination = location(src), location(dst)
    processor = ChainProcessor(chain, source, settings.max_pixels, keep_steps)
    processor.check_weights()
    return run_batch(source, destination, processor, settings, is_input=processor.is_input,
                     units=ChainUnits(destination, chain, keep_steps), recorded=processor.recorded())

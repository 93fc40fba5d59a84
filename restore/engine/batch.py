"""The folder batch engine: walk ``--in``, mirror the tree under ``--out``, never lose work.

Guarantees, whatever the task:
- inputs are never written to, and no output may land on an input file;
- each output is written atomically (temp file in the same folder + rename), so an
  interrupted run leaves complete files only, and a re-run skips what exists (resume);
- a bad input is reported with its path and reason and the batch goes on;
- ``report.json`` in ``--out`` lists every input with status, seconds and output path;
- decoding and encoding run in worker threads (OpenCV, zlib and numpy release the GIL) so the model
  does not wait for the disk.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from restore.engine.progress import Progress, StepBar
from restore.io.atomic import atomic_write, remove_stale_temps
from restore.io.image import Image, ImageReadError, read_image, write_image

READABLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"}
WRITABLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
REPORT_NAME = "report.json"

# What a bad input or a failed write raises. Any other exception is reported too, named by
# its type: one input's failure (a decoder's bug on damaged bytes, memory for one huge
# image) must not stop the batch.
_EXPECTED_ERRORS = (ImageReadError, OSError, ValueError, RuntimeError)

# The per-image work of a task: (decoded input, its file, where to report its tiles or slices,
# None under --quiet) -> output image and what was decided for it.
ImageFunction = Callable[[Image, Path, Progress | None], tuple[Image, dict[str, Any]]]


class BatchUsageError(ValueError):
    """The batch cannot start (bad paths or options); maps to exit code 2."""


@dataclass
class BatchSettings:
    suffix: str = ""  # appended to each output file's stem
    ext: str = "same"  # output format: same | png | jpg | tif | bmp | webp
    overwrite: bool = False  # redo outputs that already exist (default: skip = resume)
    workers: int = 2  # decode/encode threads
    quiet: bool = False  # no progress bar
    max_pixels: int = 20000 * 20000  # larger inputs are refused before decoding
    jpeg_quality: int = 95


@dataclass
class Job:
    source: Path
    output: Path | None  # None: not an input we can process
    members: tuple[Path, ...] = ()  # the files of a unit made of several (a DICOM series folder)


class Units(Protocol):
    """What a batch runs on: how the files found under ``--in`` become jobs, how a job's
    input is read and its result written. The default, :data:`IMAGES`, is one image file
    per job; ``restore.volumes`` plugs in scans (a DICOM series folder is one job)."""

    def plan(self, files: list[tuple[Path, Path]], destination: Path, settings: BatchSettings) -> list[Job]:
        """Jobs for ``(path, path relative to --in)`` pairs; ``Job(path, None)`` for files it cannot use."""

    def read(self, job: Job, settings: BatchSettings) -> Any: ...

    def write(self, output: Path, result: Any, settings: BatchSettings) -> None:
        """Write atomically: ``output`` existing means the job is done (resume skips it)."""


class ImageUnits:
    """One image file per job, written in the format ``settings.ext`` asks for."""

    def plan(self, files: list[tuple[Path, Path]], destination: Path, settings: BatchSettings) -> list[Job]:
        return [
            Job(path, output_path(relative, destination, settings) if path.suffix.lower() in READABLE_SUFFIXES else None)
            for path, relative in files
        ]

    def read(self, job: Job, settings: BatchSettings) -> Image:
        return read_image(job.source, settings.max_pixels)

    def write(self, output: Path, result: Image, settings: BatchSettings) -> None:
        write_image(output, result, settings.jpeg_quality)


IMAGES = ImageUnits()


@dataclass
class Outcome:
    input: str
    output: str | None
    status: str  # done | skipped | failed
    seconds: float = 0.0
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchReport:
    source: str
    destination: str
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 = everything done or already there, 1 = some inputs failed."""
        return 1 if self.count("failed") else 0

    def summary(self) -> str:
        return f"{self.count('done')} done, {self.count('skipped')} skipped, {self.count('failed')} failed"

    def to_json(self) -> str:
        return json.dumps(
            {
                "source": self.source,
                "destination": self.destination,
                "summary": {status: self.count(status) for status in ("done", "skipped", "failed")},
                "files": [asdict(outcome) for outcome in self.outcomes],
            },
            indent=2,
        )


def display_path(path: Path) -> str:
    """The path as text for messages and JSON, even when the name is not valid UTF-8."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def output_path(relative: Path, destination: Path, settings: BatchSettings) -> Path:
    suffix = relative.suffix if settings.ext == "same" else "." + settings.ext.lstrip(".")
    if suffix.lower() not in WRITABLE_SUFFIXES:
        suffix = ".png"  # e.g. GIF inputs: readable, not writable
    return destination / relative.parent / f"{relative.stem}{settings.suffix}{suffix}"


def plan_jobs(
    source: Path,
    destination: Path,
    settings: BatchSettings,
    is_input: Callable[[Path], bool] = lambda _: True,
    units: Units = IMAGES,
) -> list[Job]:
    """Every file under ``source`` (or ``source`` itself) with its mirrored output path.

    Hidden files and anything under ``destination`` (when it lies inside ``source``) are
    not inputs; ``is_input`` lets a task exclude more (e.g. inpainting's mask sidecars).
    Refuses a plan in which an output would replace an input."""
    if not source.exists():
        raise BatchUsageError(f"--in {display_path(source)}: no such file or folder")
    if settings.ext != "same" and "." + settings.ext.lstrip(".").lower() not in WRITABLE_SUFFIXES:
        raise BatchUsageError(f"--ext {settings.ext}: use same, png, jpg, tif, bmp or webp")
    destination_resolved = _real_path(destination)
    if source.is_file():
        files = [(source, Path(source.name))]
    else:
        files = [(path, path.relative_to(source)) for path in _walk(source, destination_resolved)]
    inputs = {_real_path(path) for path, _ in files}
    jobs = units.plan([(path, relative) for path, relative in files if is_input(path)], destination, settings)
    for job in jobs:
        output = job.output
        if output is None:
            continue
        if _real_path(output) in inputs:
            raise BatchUsageError(
                f"the output {display_path(output)} would overwrite an input: choose an --out folder "
                f"outside --in or set a --suffix"
            )
    return jobs


def _real_path(path: Path) -> Path:
    """``path`` with every link resolved, like ``Path.resolve()``, except that a link loop
    gives a path instead of raising (Python < 3.13 raises RuntimeError): the loop is then
    reported for that one input when it is read, instead of stopping the whole batch."""
    return Path(os.path.realpath(path))


def _walk(root: Path, skip: Path) -> Iterator[Path]:
    """Files under ``root`` in a stable order, not following directory links (so a link
    loop cannot recurse forever), leaving out hidden entries and the ``skip`` tree."""
    for folder, subfolders, names in os.walk(root, followlinks=False):
        folder_path = Path(folder)
        subfolders[:] = sorted(
            name for name in subfolders if not name.startswith(".") and _real_path(folder_path / name) != skip
        )
        for name in sorted(names):
            if not name.startswith("."):
                yield folder_path / name


def run_batch(
    source: Path,
    destination: Path,
    process: ImageFunction,
    settings: BatchSettings,
    is_input: Callable[[Path], bool] = lambda _: True,
    units: Units = IMAGES,
) -> BatchReport:
    """Process every input under ``source`` into ``destination``; returns the report (also
    written to ``destination/report.json``)."""
    source, destination = Path(source), Path(destination)
    jobs = plan_jobs(source, destination, settings, is_input, units)
    destination.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(destination)
    report = BatchReport(display_path(source), display_path(destination))
    pending = [job for job in jobs if _needs_work(job, settings, report)]
    bar = _progress_bar(len(pending), settings.quiet)
    steps = None if bar is None else StepBar()
    try:
        with ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix="restore-io") as pool:
            _run_pipeline(pending, process, settings, pool, report, bar, units, steps)
    finally:
        if steps is not None:
            steps.close()
        if bar is not None:
            bar.close()
        report.outcomes.sort(key=lambda outcome: outcome.input)
        atomic_write(destination / REPORT_NAME, lambda temp: temp.write_text(report.to_json()))
    return report


def _needs_work(job: Job, settings: BatchSettings, report: BatchReport) -> bool:
    """Record non-images and already-finished outputs; True for jobs left to run."""
    if job.output is None:
        reason = f"not an image file (unsupported extension {job.source.suffix or 'none'!r})"
        report.outcomes.append(Outcome(display_path(job.source), None, "failed", reason=reason))
        return False
    if job.output.exists() and not settings.overwrite:
        report.outcomes.append(
            Outcome(display_path(job.source), display_path(job.output), "skipped", reason="output exists (use --overwrite to redo)")
        )
        return False
    return True


def _run_pipeline(
    jobs: list[Job],
    process: ImageFunction,
    settings: BatchSettings,
    pool: ThreadPoolExecutor,
    report: BatchReport,
    bar,
    units: Units = IMAGES,
    steps: StepBar | None = None,
) -> None:
    """Decode ahead in the pool, run the model here, encode/write in the pool; ``steps``
    shows the progress within each input."""
    reads: deque[tuple[Job, float, Future]] = deque()
    writes: deque[tuple[Outcome, Future]] = deque()
    upcoming = iter(jobs)
    lookahead = 2 * max(1, settings.workers)

    def submit_reads() -> None:
        while len(reads) < lookahead:
            job = next(upcoming, None)
            if job is None:
                return
            reads.append((job, time.perf_counter(), pool.submit(units.read, job, settings)))

    def collect_writes(block: bool) -> None:
        while writes and (block or writes[0][1].done()):
            outcome, future = writes.popleft()
            try:
                future.result()
            except Exception as error:  # see _EXPECTED_ERRORS
                outcome.status, outcome.reason = "failed", f"cannot write output: {_described(error)}"
            report.outcomes.append(outcome)
            if bar is not None:
                bar.update(1)

    submit_reads()
    while reads:
        job, started, future = reads.popleft()
        submit_reads()
        outcome = Outcome(display_path(job.source), display_path(job.output), "done")
        if steps is not None:
            steps.start(job.source.name)
        try:
            image = future.result()
            result, outcome.info = process(image, job.source, steps)
        except Exception as error:  # see _EXPECTED_ERRORS
            outcome.status, outcome.reason, outcome.output = "failed", _reason(error, job.source), None
            outcome.seconds = round(time.perf_counter() - started, 4)
            report.outcomes.append(outcome)
            if bar is not None:
                bar.update(1)
            continue
        write = pool.submit(units.write, job.output, result, settings)
        outcome.seconds = round(time.perf_counter() - started, 4)
        writes.append((outcome, write))
        collect_writes(block=False)
    collect_writes(block=True)


def _reason(error: Exception, source: Path) -> str:
    """The error's message without a repeated path prefix (the report already names it)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return _described(error).removeprefix(f"{display_path(source)}: ")


def _described(error: Exception) -> str:
    """The message of an expected error; other types are named too, as their message
    alone may not say what went wrong (``KeyError: 'x'``)."""
    return str(error) if isinstance(error, _EXPECTED_ERRORS) else f"{type(error).__name__}: {error}"


def _progress_bar(total: int, quiet: bool):
    if quiet or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="restore", dynamic_ncols=True)

"""The folder batch engine: walk ``--in``, mirror the tree under ``--out``, never lose work.

Guarantees, whatever the task:
- inputs are never written to, and no output may land on an input file;
- each output is written atomically (temp file in the same folder + rename), so an
  interrupted run leaves complete files only, and a re-run skips what exists (resume);
- a bad input is reported with its path and reason and the batch goes on;
- ``report.json`` in ``--out`` lists every input with status, seconds and output path, the
  settings the outputs were made with and the input each output was made from; it is
  written when the run starts too, so that a rerun after a kill knows them
  (restore.engine.ledger: a rerun with other settings is refused, not skipped);
- decoding and encoding run in worker threads (OpenCV, zlib and numpy release the GIL) so the model
  does not wait for the disk.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from restore._version import __version__
from restore.engine.ledger import Ledger, RerunError, as_json, previous_outputs, read_report
from restore.engine.progress import InputProgress, Progress, ProgressGroup, StepBar, progress_bar
from restore.io.atomic import atomic_write, remove_stale_temps
from restore.io.files import IMAGE_SUFFIXES, READABLE_SUFFIXES, display_path
from restore.io.image import QUALITY_SUFFIXES, Image, ImageReadError, file_kind, read_image, write_image
from restore.io.limits import MAX_PIXELS
from restore.io.storage import ObjectPath, location

REPORT_NAME = "report.json"
# The report as a page (restore.report writes it beside report.json, its previews in the
# hidden PREVIEWS_FOLDER, which the walk skips like every hidden entry): not an input either.
PAGE_NAME = "report.html"
PAGE_MARK = '<meta name="generator" content="restore report">'
PREVIEWS_FOLDER = ".restore-report"

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
    max_pixels: int = MAX_PIXELS  # larger inputs are refused before decoding
    jpeg_quality: int = 95
    progress: InputProgress | None = None  # also told of the parts of each input (a web request's progress)


@dataclass
class Recorded:
    """What report.json records of how the outputs were made, beside the batch's own settings.

    ``outputs``: the resolved settings that decide what the outputs are (task, weights and
    their sha256, precision, task options): a rerun into the same --out compares them.
    ``execution``: how they were computed (device, tiles, threads), which changes outputs
    by rounding at most: recorded, not compared. ``defaults``: the value of each output
    setting that a report written before the setting existed was made with (a task
    option's default), so adding an option does not stop reruns into older outputs."""

    outputs: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    source: Path
    output: Path | None  # None: not an input we can process
    members: tuple[Path, ...] = ()  # the files of a unit made of several (a DICOM series folder)
    problem: str = ""  # why this input cannot be processed although it may be readable (e.g. a name clash)


class Executor(Protocol):
    """Runs a batch's pending jobs elsewhere than this process's own loop (restore.engine.cluster:
    on a Ray cluster). For each job it calls ``finished(job, outcome)`` once, with the outcome
    of :func:`process_job` and :func:`write_output` (where they ran), so that the report,
    resume and progress stay the driver's."""

    def run(self, jobs: list[Job], units: Units, settings: BatchSettings,
            finished: Callable[[Job, Outcome], None]) -> None: ...


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
        """Outputs keep the input's stem. Where inputs would share an output (``photo.png``
        and ``photo.gif``; ``shot.jpg`` and ``shot.png`` with ``--ext png``), the one
        whose name is the output's keeps it and the others get their whole name as the
        stem (``photo.gif.png``, ``shot.jpg.png``): no output is written twice, and the
        names do not depend on the order files are found in."""
        readable = [(path, relative) for path, relative in files if path.suffix.lower() in READABLE_SUFFIXES]
        outputs = {path: output_path(relative, destination, settings) for path, relative in readable}
        clashes: dict[str, list[Path]] = defaultdict(list)
        for path, relative in readable:
            clashes[_name_key(outputs[path])].append(path)
        for path, relative in readable:
            sharing = clashes[_name_key(outputs[path])]
            owners = [other for other in sharing if outputs[other].suffix == other.suffix]
            if len(sharing) > 1 and path != (owners[0] if owners else None):
                outputs[path] = output_path(relative, destination, settings, stem=relative.name)
        return [Job(path, outputs.get(path)) for path, _ in files]

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
    seconds: float = 0.0  # decoding, processing and writing this input, not waiting for its turn
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchReport:
    source: str
    destination: str
    outcomes: list[Outcome] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # Recorded.outputs and the batch's naming settings
    execution: dict[str, Any] = field(default_factory=dict)
    made_from: dict[str, str] = field(default_factory=dict)  # output (relative to --out) -> real input path
    complete: bool = False  # False in the report written at the start (and left so by a killed run)
    warnings: list[str] = field(default_factory=list)  # about the run as a whole

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
                "restore_version": __version__,
                "source": self.source,
                "destination": self.destination,
                "complete": self.complete,
                "settings": self.settings,
                "execution": self.execution,
                "warnings": self.warnings,
                "summary": {status: self.count(status) for status in ("done", "skipped", "failed")},
                "files": [asdict(outcome) for outcome in sorted(self.outcomes, key=lambda outcome: outcome.input)],
                "made_from": dict(sorted(self.made_from.items())),
            },
            indent=2,
        )


def output_path(relative: Path, destination: Path, settings: BatchSettings, stem: str | None = None) -> Path:
    """Where the input at ``relative`` (under --in) is written: its stem (or ``stem``),
    the --suffix, and the --ext (or its own extension when that format is writable)."""
    suffix = relative.suffix if settings.ext == "same" else "." + settings.ext.lstrip(".")
    if suffix.lower() not in IMAGE_SUFFIXES:
        suffix = ".png"  # e.g. GIF inputs: readable, not writable
    return destination / relative.parent / f"{relative.stem if stem is None else stem}{settings.suffix}{suffix}"


def _name_key(path: Path) -> str:
    """Paths equal under this key are one file on a case-insensitive file system (macOS,
    Windows): clashes are resolved the same way everywhere."""
    return str(path).casefold()


def check_suffix(suffix: str) -> None:
    """A --suffix is part of a file name: it cannot lead out of the output folder."""
    if any(character in suffix for character in ("/", "\\", "\0")) or ".." in suffix:
        raise BatchUsageError(
            f"--suffix {suffix!r}: a suffix is added to file names, so it cannot hold path separators, "
            f"'..' or NUL; use e.g. _clean"
        )


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
    if not _exists(source):
        raise BatchUsageError(f"--in {display_path(source)}: no such file or folder")
    if settings.ext != "same" and "." + settings.ext.lstrip(".").lower() not in IMAGE_SUFFIXES:
        raise BatchUsageError(f"--ext {settings.ext}: use same, png, jpg, tif, bmp or webp")
    check_suffix(settings.suffix)
    source_resolved, destination_resolved = _real_path(source), _real_path(destination)
    if source.is_dir():
        if destination_resolved == source_resolved:
            raise BatchUsageError(
                f"--out {display_path(destination)} is the --in folder: restore never writes among its inputs; "
                f"choose an --out folder outside --in, or a new sub-folder of it (e.g. --out "
                f"{display_path(source / 'restored')})"
            )
        walk = source.walk(destination_resolved) if isinstance(source, ObjectPath) else _walk(source, destination_resolved)
        files = [(path, path.relative_to(source)) for path in walk]
    else:  # a file, or something given directly that is not one (a pipe, a device): reading it says why
        files = [(source, Path(source.name))]
    files = [(path, relative) for path, relative in files if not is_report(path)]
    inputs = {_real_path(path) for path, _ in files}
    jobs = units.plan([(path, relative) for path, relative in files if is_input(path)], destination, settings)
    writes_into_source = source.is_dir() and source_resolved not in destination_resolved.parents
    for job in jobs:
        output = job.output
        if output is None:
            continue
        real = _real_path(output)
        if real in inputs:
            raise BatchUsageError(
                f"the output {display_path(output)} would overwrite an input: choose an --out folder "
                f"outside --in or set a --suffix"
            )
        if not _lies_under(output, destination) or (writes_into_source and source_resolved in real.parents):
            raise BatchUsageError(
                f"the output {display_path(output)} would be written outside --out or into --in: "
                f"choose an --out folder outside --in"
            )
        if _lies_under(output, destination / REPORT_NAME, or_is=True):
            job.problem = (f"its output {display_path(output)} would be inside {REPORT_NAME}, the name of this "
                           f"run's report; rename the folder")
    _refuse_shared_outputs(jobs)
    return jobs


def _exists(source: Path | ObjectPath) -> bool:
    """Whether --in exists; a store that cannot be read (credentials, network) is a usage error."""
    if not isinstance(source, ObjectPath):
        return source.exists()
    try:
        return source.exists()
    except Exception as error:  # whatever the store's client raises
        raise BatchUsageError(f"--in {source}: cannot read there ({error}); check the URL and the credentials") \
            from error


def _lies_under(path: Path, folder: Path, or_is: bool = False) -> bool:
    """Whether ``path`` is inside ``folder`` by name alone (links are not followed: this is
    about the names restore builds)."""
    if isinstance(path, ObjectPath):
        return (or_is and path == folder) or folder in path.parents
    relative = os.path.relpath(os.path.normpath(path), os.path.normpath(folder))
    return (or_is and relative == ".") or (relative != "." and relative != ".." and not relative.startswith(".." + os.sep))


def _refuse_shared_outputs(jobs: list[Job]) -> None:
    """The last guard against two inputs reported done with one file: any job whose output
    another job already writes fails with a reason (units normally plan distinct names)."""
    first: dict[str, Job] = {}
    for job in jobs:
        if job.output is None or job.problem:
            continue
        owner = first.setdefault(_name_key(job.output), job)
        if owner is not job:
            job.problem = (f"its output {display_path(job.output)} is also that of {display_path(owner.source)}; "
                           f"rename one of them")


def is_report(path: Path) -> bool:
    """Whether ``path`` is the report.json of a restore run or its report.html page (not an
    input of the next one: ``restore superres --in denoised/`` after ``restore denoise --out denoised/``)."""
    if path.name == PAGE_NAME:
        return is_report_page(path)
    return path.name == REPORT_NAME and read_report(path) is not None


def is_report_page(path: Path) -> bool:
    """Whether ``path`` is a page restore wrote: a regular file with :data:`PAGE_MARK` in its head."""
    try:
        if not path.is_file():  # a pipe or a device is never opened here
            return False
        if isinstance(path, ObjectPath):
            return PAGE_MARK.encode() in path.read_bytes(1024)
        with open(path, "rb") as handle:
            return PAGE_MARK.encode() in handle.read(1024)
    except OSError:
        return False


def _real_path(path: Path) -> Path:
    """``path`` with every link resolved, like ``Path.resolve()``, except that a link loop
    gives a path instead of raising (Python < 3.13 raises RuntimeError): the loop is then
    reported for that one input when it is read, instead of stopping the whole batch.
    An object in storage is its own real path (keys have no links)."""
    if isinstance(path, ObjectPath):
        return path
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
    recorded: Recorded | None = None,
    executor: Executor | None = None,
) -> BatchReport:
    """Process every input under ``source`` into ``destination``; returns the report (also
    written to ``destination/report.json``, first when the run starts, then when it ends).
    ``executor``: where the pending jobs run (None: here, ``process`` in this thread and
    decoding/encoding in ``settings.workers`` threads).

    An existing output is skipped (resume) only if the previous report says it was made from
    the same input with the same ``recorded.outputs`` settings (or if there is no such record
    at all, as after older restore versions). A previous run with other settings is a usage
    error unless ``settings.overwrite``; an output made from another input is redone when that
    input now has another output name, and fails otherwise (it is that input's result)."""
    source, destination = location(source), location(destination)
    jobs = plan_jobs(source, destination, settings, is_input, units)
    _prepare_destination(destination)
    writes_lossy = any(job.output is not None and job.output.suffix.lower() in QUALITY_SUFFIXES for job in jobs)
    report, ledger = _new_report(source, destination, settings, recorded or Recorded(), writes_lossy)
    remove_stale_temps({destination, *(job.output.parent for job in jobs if job.output is not None)})
    report.made_from = dict(ledger.made_from)
    planned = {_real_input(job) for job in jobs if job.output is not None and not job.problem}
    pending = [job for job in jobs if _needs_work(job, settings, report, ledger, planned, destination)]
    _write_report(report, destination)

    bar = _progress_bar(len(pending), settings.quiet)

    def finished(job: Job, outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        if outcome.status == "done":
            report.made_from[_output_key(job, destination)] = _real_input(job)
        if bar is not None:
            bar.update(1)

    # the parts of each input (tiles, slices) are shown where they are done: here, not on a cluster
    observers = [*([] if bar is None else [StepBar()]), *([] if settings.progress is None else [settings.progress])]
    steps = ProgressGroup(observers) if observers and executor is None else None
    try:
        if executor is None:
            with ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix="restore-io") as pool:
                _run_pipeline(pending, process, settings, pool, units, steps, finished)
        else:
            executor.run(pending, units, settings, finished)
        report.complete = True
    finally:
        if steps is not None:
            steps.close()
        if bar is not None:
            bar.close()
        report.outcomes.sort(key=lambda outcome: outcome.input)
        _write_report(report, destination)
    return report


def _new_report(
    source: Path, destination: Path, settings: BatchSettings, recorded: Recorded, writes_lossy: bool
) -> tuple[BatchReport, Ledger]:
    """This run's report, not yet written, and what the previous report in ``destination``
    says was made with the same settings (a usage error if it was made with others; the JPEG
    quality counts only where ``writes_lossy``: some output is JPEG or WebP)."""
    report = BatchReport(
        display_path(source), display_path(destination),
        settings=as_json({**recorded.outputs, "suffix": settings.suffix, "ext": settings.ext,
                          "jpeg_quality": settings.jpeg_quality}),
        execution=as_json({**recorded.execution, "workers": settings.workers, "max_pixels": settings.max_pixels}),
    )
    try:
        ledger = previous_outputs(read_report(destination / REPORT_NAME), report.settings, settings.overwrite,
                                  destination, display_path(destination), as_json(recorded.defaults),
                                  ignored=() if writes_lossy else ("jpeg_quality",))
    except RerunError as error:
        raise BatchUsageError(str(error)) from error
    if ledger.warning:
        report.warnings.append(ledger.warning)
    return report, ledger


def _write_report(report: BatchReport, destination: Path) -> None:
    atomic_write(destination / REPORT_NAME, lambda temp: temp.write_text(report.to_json()))


def _prepare_destination(destination: Path) -> None:
    """Create --out and check that files can be written there and that its report can be,
    so that a folder restore cannot use is one usage error, not a failure per image."""
    shown = display_path(destination)
    if isinstance(destination, ObjectPath):
        _prepare_object_destination(destination, shown)
        return
    try:
        destination.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=destination):
            pass
    except OSError as error:
        raise BatchUsageError(f"--out {shown}: cannot write there ({error.strerror}); choose another folder") from error
    report = destination / REPORT_NAME
    if report.is_symlink() or (report.exists() and not report.is_file()):
        raise BatchUsageError(f"--out {shown}: {REPORT_NAME} there is not a file restore wrote; move it away")


def _prepare_object_destination(destination: ObjectPath, shown: str) -> None:
    """:func:`_prepare_destination` in object storage: a probe object written and deleted,
    then the prefix listed once (each output's existence is then known without a request)."""
    try:
        destination.check_writable()
        destination.snapshot()
    except Exception as error:  # whatever the store's client raises (OSError, its own types): not usable
        raise BatchUsageError(f"--out {shown}: cannot write there ({error}); check the URL and the "
                              f"credentials, or choose another location") from error
    if (destination / REPORT_NAME).is_dir():
        raise BatchUsageError(f"--out {shown}: {REPORT_NAME} there is not a file restore wrote; move it away")


def _needs_work(
    job: Job, settings: BatchSettings, report: BatchReport, ledger: Ledger, planned: set[str], destination: Path
) -> bool:
    """Record non-images, finished outputs and outputs that belong to another input; True
    for jobs left to run. ``report.made_from`` gets the jobs whose output does not exist yet:
    if this run is killed, whatever exists of them at the next run was made by this one.
    ``planned``: the real paths of every input of this run that has an output."""
    if job.output is None or job.problem:
        reason = job.problem or _not_an_input(job.source)
        report.outcomes.append(Outcome(display_path(job.source), None, "failed", reason=reason))
        return False
    name, shown = _output_key(job, destination), display_path(job.output)
    if not job.output.exists():
        report.made_from[name] = _real_input(job)
        return True
    if settings.overwrite:
        return True
    maker = ledger.made_from.get(name) if ledger.known else _real_input(job)
    if maker == _real_input(job):
        report.made_from[name] = maker
        report.outcomes.append(Outcome(display_path(job.source), shown, "skipped",
                                       reason="output exists (use --overwrite to redo)"))
        return False
    if maker in planned:  # that input's output is now another file: this one is this input's to write
        return True
    if maker is None:
        reason = (f"its output {shown} exists, but {REPORT_NAME} does not list it as made from this input "
                  f"with these settings; move it away, or use --overwrite to replace it")
    else:
        reason = (f"its output {shown} holds the result of {maker} from an earlier run into this --out; "
                  f"use --overwrite to replace it, or choose another --out")
    report.outcomes.append(Outcome(display_path(job.source), None, "failed", reason=reason))
    return False


def _output_key(job: Job, destination: Path) -> str:
    """A job's output as ``made_from`` names it: relative to --out, however --out is spelled."""
    if isinstance(job.output, ObjectPath):
        return str(job.output.relative_to(destination))
    return display_path(Path(os.path.relpath(job.output, destination)))


def _real_input(job: Job) -> str:
    """A job's input as ``made_from`` names it: its real path, however --in is spelled."""
    return display_path(_real_path(job.source))


def _not_an_input(path: Path | ObjectPath) -> str:
    try:
        kind = None if isinstance(path, ObjectPath) else file_kind(path.stat().st_mode)
    except OSError:  # a dangling link, or gone since the walk
        kind = None
    if kind is not None:
        return f"not a regular file but a {kind}; only image files are read"
    return f"not an image file (unsupported extension {path.suffix or 'none'!r})"


def process_job(
    job: Job, decoded: Callable[[], tuple[Any, float]], process: ImageFunction, steps: InputProgress | None = None
) -> tuple[Outcome, Any]:
    """One input through ``process``: its outcome, and the result to write (None when it
    failed, with the reason in the outcome). ``decoded()`` gives the decoded input and the
    seconds its reading took, or raises why it could not be read. The per-input work of
    every batch, wherever it runs (this process, or an actor of restore.engine.cluster)."""
    outcome = Outcome(display_path(job.source), display_path(job.output), "done")
    if steps is not None:
        steps.start(job.source.name)
    try:
        image, outcome.seconds = decoded()
        started = time.perf_counter()
        try:
            result, outcome.info = process(image, job.source, steps)
        finally:
            outcome.seconds += time.perf_counter() - started
    except Exception as error:  # see _EXPECTED_ERRORS
        outcome.status, outcome.reason, outcome.output = "failed", failure_reason(error, job.source), None
        outcome.seconds = round(outcome.seconds, 4)
        return outcome, None
    return outcome, result


def write_output(outcome: Outcome, written: Callable[[], tuple[Any, float]]) -> None:
    """Account for the write of an input's result: ``written()`` writes it (or gives the
    result of a write already under way) and the seconds it took; a failure to write fails
    the input, with the reason."""
    try:
        outcome.seconds = round(outcome.seconds + written()[1], 4)
    except Exception as error:  # see _EXPECTED_ERRORS
        outcome.status, outcome.reason = "failed", f"cannot write output: {_described(error)}"


def _run_pipeline(
    jobs: list[Job],
    process: ImageFunction,
    settings: BatchSettings,
    pool: ThreadPoolExecutor,
    units: Units,
    steps: InputProgress | None,
    finished: Callable[[Job, Outcome], None],
) -> None:
    """Decode ahead in the pool, run the model here, encode/write in the pool; ``steps``
    shows the progress within each input, ``finished`` is told of each input's outcome."""
    reads: deque[tuple[Job, Future]] = deque()
    writes: deque[tuple[Job, Outcome, Future]] = deque()
    upcoming = iter(jobs)
    lookahead = 2 * max(1, settings.workers)

    def submit_reads() -> None:
        while len(reads) < lookahead:
            job = next(upcoming, None)
            if job is None:
                return
            reads.append((job, pool.submit(timed, units.read, job, settings)))

    def collect_writes(block: bool) -> None:
        while writes and (block or writes[0][2].done()):
            job, outcome, future = writes.popleft()
            write_output(outcome, future.result)
            finished(job, outcome)

    submit_reads()
    while reads:
        job, future = reads.popleft()
        submit_reads()
        outcome, result = process_job(job, future.result, process, steps)
        if outcome.status == "failed":
            finished(job, outcome)
            continue
        writes.append((job, outcome, pool.submit(timed, units.write, job.output, result, settings)))
        collect_writes(block=False)
    collect_writes(block=True)


def timed(function: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``function(*args)`` and the seconds it took: an image's time in the report is the
    work done for it (decode, network, encode), not the time it waited in the queue."""
    started = time.perf_counter()
    return function(*args), time.perf_counter() - started


def failure_reason(error: Exception, source: Path) -> str:
    """The error's message without a repeated path prefix (the report already names it), as
    report.json gives it for an input that failed (public for processors that run several
    steps on an input and name the failing one)."""
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
    return progress_bar(total=total, unit="img", desc="restore", dynamic_ncols=True)

"""A request's work, in a worker thread: the upload saved in a temp folder, the engine
function the CLI calls (``process_folder``, ``run_chain`` or ``process_scans``) run on it as
the command would be, and the output file's bytes with the input's report entry. So the
bytes are the CLI's."""

from __future__ import annotations

import dataclasses
import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restore.api import process_folder
from restore.engine.batch import BatchReport
from restore.engine.progress import InputProgress
from restore.pipeline import ChainStep, run_chain
from restore.volumes import process_scans
from restore.web.errors import ApiError
from restore.web.forms import ImageForm, ScanForm, UploadForm
from restore.web.settings import ServeSettings
from restore.web.workspace import Workspace, safe_name

# Settings the command would refuse before any image (exit code 2): bad weights, device, precision...
_USAGE_ERRORS = (ValueError,)
_BATCH = {"quiet": True, "workers": 1}  # one image: no bars, one decode/encode thread (outputs do not depend on it)


@dataclass(frozen=True)
class Output:
    """The output file as the CLI writes it, and the input's entry in report.json."""

    content: bytes
    filename: str
    media_type: str
    report: dict[str, Any]


def restore_image(task: str, settings: dict[str, Any], form: ImageForm, serve: ServeSettings,
                  progress: InputProgress | None = None) -> Output:
    """``restore TASK --in IMAGE --out OUT`` with ``settings`` (the command's parsed options)
    on the uploaded image, the uploaded mask given as ``--masks``."""
    with Workspace(serve.temp_root) as work:
        source, masks = _saved(work, form, serve)
        options = {**settings, **({"masks_dir": masks} if masks is not None else {})}
        return _output(work, lambda: process_folder(task, source, work.path / "out", **options, **_BATCH,
                                                    max_pixels=serve.max_pixels, jpeg_quality=form.jpeg_quality,
                                                    progress=progress))


def restore_chain(steps: Sequence[ChainStep], form: ImageForm, serve: ServeSettings,
                  progress: InputProgress | None = None) -> Output:
    """``restore chain STEPS... --in IMAGE --out OUT`` on the uploaded image, the uploaded
    mask given to each inpaint step as ``--masks``."""
    with Workspace(serve.temp_root) as work:
        source, masks = _saved(work, form, serve)
        if masks is not None:
            steps = [dataclasses.replace(step, options={**step.options, "masks_dir": masks})
                     if step.task == "inpaint" else step for step in steps]
        return _output(work, lambda: run_chain(steps, source, work.path / "out", **_BATCH,
                                               max_pixels=serve.max_pixels, jpeg_quality=form.jpeg_quality,
                                               progress=progress))


def restore_scan(command: str, settings: dict[str, Any], form: ScanForm, serve: ServeSettings,
                 progress: InputProgress | None = None) -> Output:
    """``restore medical COMMAND --in SCAN --out OUT`` with ``settings`` (the command's parsed
    options) on the uploaded scan (one file: DICOM, NIfTI, 16-bit slice or .npy)."""
    with Workspace(serve.temp_root) as work:
        source, _ = _saved(work, form, serve)
        return _output(work, lambda: process_scans(command, source, work.path / "out", **settings, **_BATCH,
                                                   max_voxels=serve.max_voxels, progress=progress))


def _saved(work: Workspace, form: UploadForm, serve: ServeSettings) -> tuple[Path, Path | None]:
    """The image saved under ``in/``, and the folder of its mask (``masks/``, named as the
    image, with the mask's own extension) when one came."""
    name = safe_name(form.image.filename, "image.png")
    source = work.save(form.image, "in", name, serve.max_pixels)
    mask = getattr(form, "mask", None)
    if mask is None:
        return source, None
    suffix = Path(safe_name(mask.filename, "mask.png")).suffix or ".png"
    work.save(mask, "masks", Path(name).stem + suffix, serve.max_pixels)
    return source, work.path / "masks"


def _output(work: Workspace, run: Callable[[], BatchReport]) -> Output:
    """Run the batch; its one outcome as the answer: the output's bytes, or a 422 with the
    reason the report gives (or the usage error the command would stop with)."""
    try:
        report = run()
    except _USAGE_ERRORS as error:
        raise ApiError(422, work.shown(str(error))) from error
    outcome = report.outcomes[0]
    entry = work.shown_json(dataclasses.asdict(outcome))
    if outcome.status != "done" or outcome.output is None:
        raise ApiError(422, entry["reason"] or f"the image was {outcome.status}")
    path = Path(outcome.output)
    entry["input"], entry["output"] = Path(outcome.input).name, path.name
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Output(path.read_bytes(), path.name, media_type, entry)

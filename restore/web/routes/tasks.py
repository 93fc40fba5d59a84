"""``POST /api/v1/{task}`` and ``POST /api/v1/medical/{command}``: one image (or scan)
through a task, as ``restore TASK`` (``restore medical COMMAND``) would run it.

Not ``from __future__ import annotations``: FastAPI reads each handler's annotations, and
the form type of a handler made in a loop is a closure variable."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Response

from restore.engine.progress import InputProgress
from restore.web.errors import ApiError
from restore.web.forms import SCAN_FORMS, TASK_FORMS, ModelForm, ScanForm, TaskForm
from restore.web.registry import check_weights
from restore.web.progress import ProgressQuery, tracked
from restore.web.responses import IMAGE_RESPONSES, Format, image_response
from restore.web.runner import Output, restore_image, restore_scan
from restore.web.state import ServerState, server_state

router = APIRouter(tags=["tasks"])

_SUMMARIES = {
    "denoise": "Remove noise (restore denoise)",
    "superres": "Upscale x2 or x4 (restore superres)",
    "inpaint": "Fill holes, given as the mask field (restore inpaint)",
    "style": "Translate with a pix2pix or CycleGAN generator (restore style)",
    "medical/denoise": "Remove CT/MR noise from a scan (restore medical denoise)",
    "medical/superres": "Increase a MR scan's in-plane resolution (restore medical superres)",
}


def run_task(task: str, form: TaskForm, state: ServerState, progress: InputProgress | None) -> Output:
    """The work of a request, in a worker thread: the options parsed by the command's own
    parser (its message as a 422), then the command's engine function on the image."""
    settings = _parsed(lambda: state.parsers.task_options(task, form.arguments(), state.settings.max_pixels))
    return restore_image(task, settings, form, state.settings, progress)


def run_scan(command: str, form: ScanForm, state: ServerState, progress: InputProgress | None) -> Output:
    """:func:`run_task` for ``restore medical COMMAND`` on a scan."""
    settings = _parsed(lambda: state.parsers.scan_options(command, form.arguments()))
    return restore_scan(command, settings, form, state.settings, progress)


def _parsed(parse: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return parse()
    except ValueError as error:
        raise ApiError(422, str(error)) from error


Run = Callable[[ModelForm, ServerState, InputProgress | None], Output]


def _handler(name: str, form_type: type[ModelForm], run: Run) -> Any:
    async def handler(
        form: Annotated[form_type, Form(media_type="multipart/form-data")],  # type: ignore[valid-type]
        state: Annotated[ServerState, Depends(server_state)],
        answer: Annotated[Format, Query(alias="format", description="file: the bytes; json: bytes and report")] = "file",
        progress: ProgressQuery = None,
    ) -> Response:
        check_weights(form.weights)
        with tracked(state.progress, progress) as observer:
            output = await state.gate.run(lambda: run(form, state, observer))
        return image_response(output, answer)

    handler.__name__ = name.replace("/", "_")
    return handler


def _add(name: str, form_type: type[ModelForm], run: Run) -> None:
    router.add_api_route(f"/{name}", _handler(name, form_type, run), methods=["POST"], summary=_SUMMARIES[name],
                         response_class=Response, responses=IMAGE_RESPONSES)


for _task, _form in TASK_FORMS.items():
    _add(_task, _form, lambda form, state, progress, task=_task: run_task(task, form, state, progress))
for _command, _form in SCAN_FORMS.items():
    _add(f"medical/{_command}", _form,
         lambda form, state, progress, command=_command: run_scan(command, form, state, progress))

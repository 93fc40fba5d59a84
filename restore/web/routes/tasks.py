"""``POST /api/v1/{task}``: one image through a task, as ``restore TASK`` would run it.

Not ``from __future__ import annotations``: FastAPI reads each handler's annotations, and
the form type of a handler made in a loop is a closure variable."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Response

from restore.web.errors import ApiError
from restore.web.forms import TASK_FORMS, TaskForm
from restore.web.registry import check_weights
from restore.web.responses import IMAGE_RESPONSES, Format, image_response
from restore.web.runner import Output, restore_image
from restore.web.state import ServerState, server_state

router = APIRouter(tags=["tasks"])

_SUMMARIES = {
    "denoise": "Remove noise (restore denoise)",
    "superres": "Upscale x2 or x4 (restore superres)",
    "inpaint": "Fill holes, given as the mask field (restore inpaint)",
    "style": "Translate with a pix2pix or CycleGAN generator (restore style)",
}


def run_task(task: str, form: TaskForm, state: ServerState) -> Output:
    """The work of a request, in a worker thread: the options parsed by the command's own
    parser (its message as a 422), then the command's engine function on the image."""
    try:
        settings: dict[str, Any] = state.parsers.task_options(task, form.arguments(), state.settings.max_pixels)
    except ValueError as error:
        raise ApiError(422, str(error)) from error
    return restore_image(task, settings, form, state.settings)


def _handler(task: str, form_type: type[TaskForm]) -> Any:
    async def handler(
        form: Annotated[form_type, Form(media_type="multipart/form-data")],  # type: ignore[valid-type]
        state: Annotated[ServerState, Depends(server_state)],
        answer: Annotated[Format, Query(alias="format", description="file: the bytes; json: bytes and report")] = "file",
    ) -> Response:
        check_weights(form.weights)
        output = await state.gate.run(lambda: run_task(task, form, state))
        return image_response(output, answer)

    handler.__name__ = task
    return handler


for _task, _form in TASK_FORMS.items():
    router.add_api_route(f"/{_task}", _handler(_task, _form), methods=["POST"], summary=_SUMMARIES[_task],
                         response_class=Response, responses=IMAGE_RESPONSES)

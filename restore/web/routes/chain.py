"""``POST /api/v1/chain``: one image through several tasks, as ``restore chain`` would run it."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Response

from restore.engine.progress import InputProgress
from restore.web.errors import ApiError
from restore.web.forms import ChainForm
from restore.web.progress import ProgressQuery, tracked
from restore.web.registry import check_step
from restore.web.responses import IMAGE_RESPONSES, Format, image_response
from restore.web.runner import Output, restore_chain
from restore.web.state import ServerState, server_state

router = APIRouter(tags=["chain"])


def run_steps(form: ChainForm, state: ServerState, progress: InputProgress | None) -> Output:
    """The steps parsed by ``restore chain``'s own parser (its message as a 422), then run."""
    limit = state.settings.max_pixels
    try:
        steps = [state.parsers.step(text, number, limit) for number, text in enumerate(form.steps, 1)]
    except ValueError as error:
        raise ApiError(422, str(error)) from error
    return restore_chain(steps, form, state.settings, progress)


@router.post("/chain", summary="Several tasks in one pass (restore chain)", response_class=Response,
             responses=IMAGE_RESPONSES)
async def chain(
    form: Annotated[ChainForm, Form(media_type="multipart/form-data")],
    state: Annotated[ServerState, Depends(server_state)],
    answer: Annotated[Format, Query(alias="format", description="file: the bytes; json: bytes and report")] = "file",
    progress: ProgressQuery = None,
) -> Response:
    for text in form.steps:
        check_step(text)
    with tracked(state.progress, progress) as observer:
        output = await state.gate.run(lambda: run_steps(form, state, observer))
    return image_response(output, answer)

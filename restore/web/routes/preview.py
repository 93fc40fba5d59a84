"""``POST /api/v1/preview``: an image as an 8-bit PNG the browser can show (16-bit, TIFF),
drawn as the HTML report draws its pictures, at full size and lossless."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Response, UploadFile

from restore.engine.batch import failure_reason
from restore.io.image import ImageReadError
from restore.report.previews import encoded, image_picture
from restore.web.errors import ApiError
from restore.web.state import ServerState, server_state
from restore.web.workspace import Workspace, safe_name

router = APIRouter(tags=["preview"])


def _render(image: UploadFile, state: ServerState) -> bytes:
    with Workspace(state.settings.temp_root) as work:
        path = work.save(image, "in", safe_name(image.filename, "image.png"), state.settings.max_pixels)
        try:
            return encoded(image_picture(path, state.settings.max_pixels), ".png")
        except ImageReadError as error:
            raise ApiError(422, failure_reason(error, path)) from error


@router.post("/preview", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def preview(image: Annotated[UploadFile, File()], state: Annotated[ServerState, Depends(server_state)]) -> Response:
    """The image as an 8-bit PNG (grey, RGB or RGBA) for display; not the restored file."""
    return Response(await state.gate.run(lambda: _render(image, state)), media_type="image/png")

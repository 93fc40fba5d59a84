"""``POST /api/v1/preview``: an image as an 8-bit PNG the browser can show (16-bit, TIFF),
drawn as the HTML report draws its pictures, at full size and lossless; a scan (DICOM,
NIfTI, 16-bit slice) as its middle slice in an intensity window, the same for a scan and
its output when the input is sent as ``reference``."""

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile

from restore.engine.batch import failure_reason
from restore.report.previews import encoded, image_picture, scan_pictures
from restore.web.errors import ApiError
from restore.web.state import ServerState, server_state
from restore.web.workspace import Workspace, safe_name

router = APIRouter(tags=["preview"])


def _render(image: UploadFile, scan: bool, reference: UploadFile | None, state: ServerState) -> bytes:
    settings = state.settings
    with Workspace(settings.temp_root) as work:
        path = work.save(image, "in", safe_name(image.filename, "image.png"), settings.max_pixels)
        try:
            if not scan:
                return encoded(image_picture(path, settings.max_pixels), ".png")
            window_from = path if reference is None else \
                work.save(reference, "reference", safe_name(reference.filename, "scan"), settings.max_pixels)
            return encoded(scan_pictures(window_from, path, settings.max_voxels)[1], ".png")
        except (ValueError, OSError) as error:  # the readers' errors (ImageReadError, MedicalReadError...)
            raise ApiError(422, work.shown(failure_reason(error, path))) from error


@router.post("/preview", response_class=Response, responses={200: {"content": {"image/png": {}}}})
async def preview(
    image: Annotated[UploadFile, File()],
    state: Annotated[ServerState, Depends(server_state)],
    scan: Annotated[bool, Form(description="A scan (restore medical's inputs): its middle slice, windowed")] = False,
    reference: Annotated[UploadFile | None, File(description="With scan: the scan whose window to use (the "
                                                             "input, when the image is its output)")] = None,
) -> Response:
    """The image as an 8-bit PNG (grey, RGB or RGBA) for display; not the restored file."""
    return Response(await state.gate.run(lambda: _render(image, scan, reference, state)), media_type="image/png")

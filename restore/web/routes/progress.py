"""``GET /api/v1/progress/{id}``: how far the request sent with ``?progress=id`` is."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from restore.web.state import ServerState, server_state

router = APIRouter(tags=["progress"])


@router.get("/progress/{request_id}")
async def progress(request_id: str, state: Annotated[ServerState, Depends(server_state)]) -> dict[str, Any]:
    """``{state, input, done, total, unit}``: ``state`` unknown (not arrived, or long gone),
    queued, running or finished; ``done`` of ``total`` parts (tiles of an image, slices of a
    scan; 0 of 0 while it waits or decodes) of the request's image."""
    return state.progress.read(request_id)

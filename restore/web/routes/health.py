"""``GET /api/v1/health``: the server is up, and how loaded it is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from restore._version import __version__
from restore.web.state import ServerState, server_state

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    workers: int
    queue: int
    admitted: int  # requests running or waiting now


@router.get("/health", response_model=Health)
def health(state: Annotated[ServerState, Depends(server_state)]) -> Health:
    return Health(status="ok", version=__version__, workers=state.settings.workers, queue=state.settings.queue,
                  admitted=state.gate.admitted)

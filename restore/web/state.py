"""What every route is handed: the server's settings, its gate, the CLI's parsers and the
progress of running requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from restore.web.gate import Gate
from restore.web.progress import ProgressBoard
from restore.web.settings import Parsers, ServeSettings


@dataclass(frozen=True)
class ServerState:
    settings: ServeSettings
    parsers: Parsers
    gate: Gate
    progress: ProgressBoard = field(default_factory=ProgressBoard)


def server_state(request: Request) -> ServerState:
    """The app's :class:`ServerState` (a FastAPI dependency)."""
    return request.app.state.restore

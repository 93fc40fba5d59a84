"""What every route is handed: the server's settings, its gate and the CLI's parsers."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from restore.web.gate import Gate
from restore.web.settings import Parsers, ServeSettings


@dataclass(frozen=True)
class ServerState:
    settings: ServeSettings
    parsers: Parsers
    gate: Gate


def server_state(request: Request) -> ServerState:
    """The app's :class:`ServerState` (a FastAPI dependency)."""
    return request.app.state.restore

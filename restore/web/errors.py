"""Errors as HTTP answers: the status and the reason text the CLI would give."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class ApiError(Exception):
    """A request the server refuses or an input that failed: ``status`` (413, 422, 503...)
    and ``reason``, the CLI's text; ``headers`` such as Retry-After."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


async def api_error_response(_request: Request, error: Exception) -> JSONResponse:
    """``{"detail": reason}`` with the error's status, as FastAPI answers its own errors."""
    assert isinstance(error, ApiError)
    return JSONResponse({"detail": error.reason}, status_code=error.status, headers=error.headers)

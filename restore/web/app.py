"""The FastAPI app of ``restore serve``: the API under ``/api/v1``, the page at ``/``,
the documentation at ``/docs``, ``ApiError`` as HTTP answers and the body size limit."""

from __future__ import annotations

from fastapi import FastAPI

from restore._version import __version__
from restore.web.body_limit import BodyLimit
from restore.web.errors import ApiError, api_error_response
from restore.web.gate import Gate
from restore.web.routes import chain, health, page, preview, progress, tasks, weights
from restore.web.settings import Parsers, ServeSettings
from restore.web.state import ServerState

API_PREFIX = "/api/v1"

DESCRIPTION = """Restore images over HTTP, with the engine of the `restore` command: the same
options (form fields named as the CLI's), the same output bytes, the same reasons for a failure.

Each task route takes the image as the multipart field `image` (and `mask` for inpainting) and
answers with the output file; its report.json entry is in the `X-Restore-Report` header.
"""


def create_app(settings: ServeSettings, parsers: Parsers) -> FastAPI:
    """The app; ``parsers``: the CLI's option parsers (restore serve hands them in)."""
    app = FastAPI(title="restore", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.restore = ServerState(settings, parsers, Gate(settings.workers, settings.queue, settings.retry_after))
    app.add_exception_handler(ApiError, api_error_response)
    for resource in (health, weights, tasks, chain, preview, progress):
        app.include_router(resource.router, prefix=API_PREFIX)
    app.include_router(page.router)
    page.mount_files(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    return app

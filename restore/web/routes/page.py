"""The page (``/``, its scripts under ``/static``) and the API's documentation (``/docs``),
every file served from this installation: nothing is fetched from another host."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
DOCS_ASSETS = "/docs-assets"

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/docs")
def docs() -> HTMLResponse:
    """Swagger UI from the swagger-ui-bundle package (FastAPI's own /docs loads it from a CDN)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="restore API",
                               swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                               swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                               swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
                               swagger_ui_parameters={"validatorUrl": None})


def mount_files(app: FastAPI) -> None:
    """The page's files and Swagger UI's, as static folders."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

"""One self-contained HTML page: the stylesheet and script inlined from ``assets/``, the
data embedded as JSON, and a Content-Security-Policy under which the browser makes no
request at all except for local pictures (no fonts, scripts or analytics from anywhere)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from restore.engine.batch import PAGE_MARK
from restore.io.atomic import atomic_write

ASSETS = Path(__file__).with_name("assets")
# images only from the page's own folder (file: URLs) or data: URIs; inline style and script only
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
                           "script-src 'unsafe-inline'; form-action 'none'; base-uri 'none'")


def html_page(title: str, body: str, script: str | None = None, data: Any = None) -> str:
    """The page: ``body`` (HTML), then ``data`` as JSON in ``<script id="report-data">`` and
    the script ``assets/<script>`` that renders it."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        PAGE_MARK,
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>\n{asset('report.css')}</style>",
        "</head>",
        "<body>",
        body,
    ]
    if data is not None:
        parts.append(f'<script type="application/json" id="report-data">{embedded_json(data)}</script>')
    if script is not None:
        parts.append(f"<script>\n{asset(script)}</script>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def embedded_json(data: Any) -> str:
    """``data`` as JSON that cannot end its ``<script>`` element early (``<`` escaped)."""
    return json.dumps(data, separators=(",", ":"), default=str).replace("<", "\\u003c")


def write_page(path: Path, text: str) -> None:
    """Write the page atomically: a browser or a rerun reads the old page or the new one."""
    atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))

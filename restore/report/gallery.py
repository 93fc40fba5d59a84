"""The data of a batch's page: each report.json entry as a row, its input and output found
again from ``OUT`` (wherever the run was started from) and given previews.

A row holds what the report says of the image (status, reason, seconds, ``info``: the
sigma estimated, the mask used, the weights...) plus links to both files and the preview
pictures, or ``note`` saying why it has none (failed, output missing, undecodable).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from restore.report.previews import image_picture, scan_pictures
from restore.report.store import PreviewStore, signature

PREVIEWED = ("done", "skipped")  # statuses whose output exists to be looked at


def gallery_data(out: Path, report: dict[str, Any], workers: int = 2) -> dict[str, Any]:
    """The page's data: the run (title, settings, summary) and one row per report entry.
    Previews are written into ``out/.restore-report`` by ``workers`` threads."""
    store = PreviewStore(out)
    scans = str(report.get("settings", {}).get("task", "")).startswith("medical")
    entries = [entry for entry in report.get("files", []) if isinstance(entry, dict)]
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="restore-report") as pool:
        rows = list(pool.map(lambda entry: _row(entry, out, report, store, scans), entries))
    store.finish()
    settings = report.get("settings", {})
    return {
        "title": f"restore {settings.get('task', 'run')}: {report.get('source', '?')} \u2192 {report.get('destination', '?')}",
        "version": report.get("restore_version", ""),
        "complete": bool(report.get("complete", True)),
        "summary": report.get("summary", {}),
        "settings": settings,
        "execution": report.get("execution", {}),
        "warnings": report.get("warnings", []),
        "rows": rows,
    }


def _row(entry: dict[str, Any], out: Path, report: dict[str, Any], store: PreviewStore, scans: bool) -> dict[str, Any]:
    info = entry.get("info") if isinstance(entry.get("info"), dict) else {}
    row: dict[str, Any] = {
        "name": _name(str(entry.get("input", "")), str(report.get("source", ""))),
        "input": entry.get("input", ""),
        "output": entry.get("output"),
        "status": entry.get("status", ""),
        "seconds": entry.get("seconds", 0.0),
        "reason": entry.get("reason", ""),
        "warning": str(info.get("warning", "")),
        "info": info,
    }
    relative = _relative_output(entry, report)
    output = None if relative is None else out / relative
    if output is not None and output.exists():
        row["href_output"] = quote(Path(relative).as_posix())
    source = _input_path(entry, relative, report)
    if source is not None:
        row["href_input"] = source.absolute().as_uri()
    row.update(_previews(row["status"], source, output, relative, store, scans))
    return row


def _previews(status: str, source: Path | None, output: Path | None, relative: str | None, store: PreviewStore,
              scans: bool) -> dict[str, Any]:
    """The row's preview files, or a note saying why it has none."""
    if status not in PREVIEWED:
        return {"note": "no preview: the input failed"}
    if output is None or not output.exists():
        return {"note": "no preview: the output is not in this folder any more"}
    if source is None:
        return {"note": "no preview: the input is not where the report says any more"}
    key = hashlib.sha1(relative.encode("utf-8", "surrogateescape")).hexdigest()[:16]

    def make():
        if scans:
            return scan_pictures(source, output)
        return image_picture(source), image_picture(output)

    try:
        pair = store.pair(key, signature(source, output), make)
    except Exception as error:  # an unreadable file, a scan without pydicom: the row says so, the page goes on
        return {"note": f"no preview: {error}"}
    return {key_: pair[key_] for key_ in ("before", "after", "thumb", "width", "height", "alpha")}


def _name(shown_input: str, source: str) -> str:
    """The input's path under --in (its name when --in was the file itself)."""
    relative = os.path.relpath(shown_input, source) if source else shown_input
    if relative == "." or relative.startswith(".."):
        return Path(shown_input).name
    return Path(relative).as_posix()


def _relative_output(entry: dict[str, Any], report: dict[str, Any]) -> str | None:
    """The output relative to --out, as ``made_from`` names it (None: no output)."""
    output = entry.get("output")
    if not output:
        return None
    relative = os.path.relpath(str(output), str(report.get("destination", "")))
    return None if relative.startswith("..") else relative


def _input_path(entry: dict[str, Any], relative: str | None, report: dict[str, Any]) -> Path | None:
    """The input file: its real path as ``made_from`` records it, else as the report shows it
    (relative to where the run started, which is often where the page is made)."""
    made_from = report.get("made_from", {})
    for candidate in (made_from.get(relative) if relative else None, entry.get("input")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None

"""A request's temp folder: the upload, its mask and the output live there only, and the
folder goes with everything in it when the request ends, whatever happened."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from fastapi import UploadFile

from restore.engine.batch import failure_reason
from restore.io.image import ImageTooLargeError, check_pixel_count
from restore.web.errors import ApiError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(filename: str | None, fallback: str) -> str:
    """An uploaded file's name reduced to a plain name in the folder (no path, no odd
    characters, not hidden); ``fallback`` when nothing is left."""
    name = _UNSAFE.sub("_", Path((filename or "").replace("\\", "/")).name).lstrip(".")
    return name or fallback


class Workspace:
    """``with Workspace(root) as work:`` a fresh folder under ``root`` (None: the system's temp)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    def __enter__(self) -> Workspace:
        self.path = Path(tempfile.mkdtemp(prefix="restore-serve-", dir=self.root))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def save(self, upload: UploadFile, folder: str, name: str, max_pixels: int) -> Path:
        """Copy ``upload`` to ``folder/name`` here; 413 when its header declares more than
        ``max_pixels`` pixels (nothing is decoded)."""
        path = self.path / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        upload.file.seek(0)
        with open(path, "wb") as handle:
            shutil.copyfileobj(upload.file, handle)
        try:
            check_pixel_count(path, max_pixels)
        except ImageTooLargeError as error:
            raise ApiError(413, failure_reason(error, path)) from error  # as report.json gives it
        return path

    def shown(self, text: str) -> str:
        """``text`` with this folder's paths made relative to it (``in/photo.png``): the
        server's folders are not the client's business."""
        return text.replace(str(self.path) + os.sep, "")

    def shown_json(self, value: Any) -> Any:
        """A JSON value with every path in it made relative (see :meth:`shown`)."""
        return json.loads(self.shown(json.dumps(value)))

"""The previews folder of a page (``OUT/.restore-report/``): pictures written atomically,
kept across reruns while their sources are unchanged, and removed once no row uses them.

``previews.json`` there maps each row's key to the signature of its files (path, size and
modification time of input and output) and the pictures made from them, so regenerating
the page of a 1000-image batch after a rerun decodes only what changed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from restore.engine.batch import PREVIEWS_FOLDER
from restore.io.atomic import atomic_write
from restore.io.files import display_path
from restore.report.previews import PREVIEW_SIDE, THUMB_SIDE, encoded, fitted, picture_suffix, resized

MANIFEST = "previews.json"
_PICTURE_NAME = re.compile(r"[0-9a-f]{16}-(before|after|thumb)\.(jpg|png)")

# (before, after) pictures of one row, made only when its cached ones are out of date
PictureMaker = Callable[[], tuple[np.ndarray, np.ndarray]]


class ReportError(ValueError):
    """The page cannot be written (not a report, a folder restore did not make); exit code 2."""


def previews_folder(out: Path) -> Path:
    """``out/.restore-report``, refused if it is a link or a file: a page's pictures are
    written inside ``out`` only."""
    folder = out / PREVIEWS_FOLDER
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ReportError(f"{display_path(folder)} is not a folder restore made (a link or a file); move it away")
    return folder


class PreviewStore:
    """The previews of one page, in ``out/.restore-report``."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = previews_folder(out)
        self.cached = self._read_manifest()
        self.kept: dict[str, dict[str, Any]] = {}

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        try:
            manifest = json.loads((self.folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}
        return manifest if isinstance(manifest, dict) else {}

    def pair(self, key: str, signature: str, make: PictureMaker) -> dict[str, Any]:
        """The before, after and thumbnail files of row ``key`` (paths relative to ``out``)
        and their size: the cached ones if ``signature`` is unchanged, else made anew."""
        cached = self.cached.get(key)
        if (isinstance(cached, dict) and cached.get("signature") == signature
                and all((self.out / cached.get(name, "")).is_file() for name in ("before", "after", "thumb"))):
            self.kept[key] = cached
            return cached
        before, after = make()
        after = fitted(after, PREVIEW_SIDE)
        before = resized(before, *after.shape[:2])
        pictures = {"before": before, "after": after, "thumb": fitted(after, THUMB_SIDE)}
        entry: dict[str, Any] = {"signature": signature, "width": after.shape[1], "height": after.shape[0],
                                 "alpha": before.shape[2] == 4 or after.shape[2] == 4}
        for role, picture in pictures.items():
            name = f"{key}-{role}{picture_suffix(picture)}"
            data = encoded(picture)
            atomic_write(self.folder / name, lambda temp, data=data: temp.write_bytes(data))
            entry[role] = f"{PREVIEWS_FOLDER}/{name}"
        self.kept[key] = entry
        return entry

    def finish(self) -> None:
        """Record the pictures in use and remove the previews no row uses any more."""
        if not self.kept and not self.folder.exists():
            return
        used = {Path(entry[role]).name for entry in self.kept.values() for role in ("before", "after", "thumb")}
        text = json.dumps(dict(sorted(self.kept.items())), indent=1)
        atomic_write(self.folder / MANIFEST, lambda temp: temp.write_text(text))
        for entry in os.scandir(self.folder):
            if _PICTURE_NAME.fullmatch(entry.name) and entry.name not in used and entry.is_file(follow_symlinks=False):
                Path(entry.path).unlink(missing_ok=True)


def signature(*paths: Path) -> str:
    """Path, size and modification time of each of ``paths``: changes when a file is rewritten."""
    parts = []
    for path in paths:
        status = path.stat()
        parts.append(f"{display_path(path)}:{status.st_size}:{status.st_mtime_ns}")
    return "|".join(parts)

"""Atomic file replacement: the one way every output and checkpoint is written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)`` then rename over ``path``.

    The temporary file lives in the destination folder (a rename is only atomic within
    one file system), so readers see the old file or the complete new one, never a partial
    one, even if the process is killed mid-write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_dir(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_folder)`` then move the folder to ``path``: for outputs made of
    several files (a DICOM series), which must appear complete or not at all.

    The temporary folder is ``.NAME.XXXX.tmp`` beside ``path`` (the batch engine removes
    stale ones). An existing ``path`` is renamed aside first and deleted only after the
    new folder is in place, so an interruption never leaves neither."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = None
    try:
        write(temp)
        for written in temp.rglob("*"):
            if written.is_file():
                with open(written, "rb") as handle:
                    os.fsync(handle.fileno())
            os.chmod(written, (0o777 if written.is_dir() else 0o666) & ~_umask())
        os.chmod(temp, 0o777 & ~_umask())
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", suffix=".tmp", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(temp, path)
    finally:
        for leftover in (temp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)

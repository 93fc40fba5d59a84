"""Atomic file replacement: the one way every output and checkpoint is written."""

from __future__ import annotations

import os
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


def remove_stale_temps(folder: str | Path) -> None:
    """Delete the temp files that interrupted :func:`atomic_write` calls left under
    ``folder`` (``.NAME.XXXX.tmp``): never complete outputs. Only for folders no other
    process writes to at the same time (a batch's --out, a training run's folder)."""
    folder = Path(folder)
    if folder.is_dir():
        for stale in folder.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)

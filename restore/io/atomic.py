"""Atomic file replacement: the one way every output and checkpoint is written.

Temp files have names no other program makes (``.restore-tmp-<pid>-<random>.tmp``) and
are locked (``flock``) by their writer until renamed, so the clean-up of what a killed
run left can tell them from a user's files and from the in-flight writes of another
restore process working in the same folder. Temp folders (:func:`temp_folder`: a job's
inputs fetched from object storage) are named and locked the same way."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock, so no temp file can be proven stale (none is removed)
    fcntl = None  # type: ignore[assignment]

TEMP_PREFIX = ".restore-tmp-"
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(rf"{re.escape(TEMP_PREFIX)}(\d+)-[a-z0-9_]+{re.escape(TEMP_SUFFIX)}")
# Files modified before this process started cannot be this process's own in-flight writes.
_PROCESS_STARTED = time.time()


def atomic_write(path: Any, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)`` then rename over ``path``.

    The temporary file lives in the destination folder (a rename is only atomic within
    one file system), so readers see the old file or the complete new one, never a partial
    one, even if the process is killed mid-write. It stays locked until the rename, so
    :func:`remove_stale_temps` in another process leaves it alone."""
    from restore.io.storage import ObjectPath  # not at the top: storage builds on this module

    if isinstance(path, ObjectPath):
        path.write_atomic(write)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = locked_temp_file(path.parent)
    renamed = False
    try:
        write(temp)
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        os.replace(temp, path)
        renamed = True
    finally:
        if not renamed:  # after the rename the name may already be another writer's temp file
            temp.unlink(missing_ok=True)
        os.close(handle)


def locked_temp_file(folder: Path) -> tuple[int, Path]:
    """A new empty temp file in ``folder`` named as :func:`remove_stale_temps` recognises,
    and its descriptor, which holds the file's lock until it is closed (or the process dies)."""
    handle, temp_name = tempfile.mkstemp(**_temp_naming(), dir=folder)
    try:
        _lock(handle)
    except BaseException:
        os.close(handle)
        Path(temp_name).unlink(missing_ok=True)
        raise
    return handle, Path(temp_name)


@contextmanager
def temp_folder(parent: Path) -> Iterator[Path]:
    """A new private folder in ``parent``, deleted with what it holds when the block ends,
    also on failure. It is named and locked as :func:`locked_temp_file`'s files are, so
    :func:`remove_stale_temps` removes it only once its process is dead (killed mid-job)."""
    folder = Path(tempfile.mkdtemp(**_temp_naming(), dir=parent))
    handle = None
    try:
        handle = os.open(folder, os.O_RDONLY)
        _lock(handle)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # before the lock goes: no cleaner races a live folder
        if handle is not None:
            os.close(handle)


def _temp_naming() -> dict[str, str]:
    """The prefix and suffix of temp names, which :func:`remove_stale_temps` recognises."""
    return {"prefix": f"{TEMP_PREFIX}{os.getpid()}-", "suffix": TEMP_SUFFIX}


def _lock(handle: int) -> None:
    """Hold ``handle``'s lock until it is closed: a live temp file or folder (where flock exists)."""
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temps(folders: Iterable[Any]) -> list[Any]:
    """Delete the temp files that interrupted :func:`atomic_write` calls left directly in
    ``folders`` (not in their sub-folders), and the :func:`temp_folder` folders of killed
    processes, and return them.

    A file (or folder) is removed only when it is provably a dead write: its name is one
    :func:`atomic_write` (or :func:`temp_folder`) makes, no process holds its lock, and its writer is gone (no
    process has its PID any more, or it was last modified before this process started,
    so a reused PID cannot keep it forever). Anything else, a user's ``draft.tmp``
    included, is left alone; so are the in-flight writes of other restore processes
    working in the same folder."""
    from restore.io.storage import ObjectPath

    removed = []
    for folder in folders:
        if isinstance(folder, ObjectPath):  # temp keys of this host's dead writers
            removed.extend(folder.remove_stale_temps())
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError:  # missing or unreadable: nothing of ours to clean there
            continue
        for entry in entries:
            match = _TEMP_NAME.fullmatch(entry.name)
            plain = entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False)
            if match and plain and _is_stale(Path(entry.path), int(match.group(1))):
                _delete(entry)
                removed.append(Path(entry.path))
    return removed


def _delete(entry: os.DirEntry) -> None:
    """A stale temp file, or a stale temp folder with what it holds."""
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        Path(entry.path).unlink(missing_ok=True)


def _is_stale(path: Path, pid: int) -> bool:
    if fcntl is None:
        return False
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # locked: a live writer
            return False
        return not process_exists(pid) or os.fstat(descriptor).st_mtime < _PROCESS_STARTED
    finally:
        os.close(descriptor)  # also releases the lock taken to test it


def process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except (ProcessLookupError, OverflowError):  # none has it (or none can: out of range)
        return False
    except PermissionError:  # another user's process
        return True
    return True

"""A local copy of a storage prefix (``s3://bucket/photos/``) for training, which reads its
files once per run and again on every resume: kept in a cache folder and brought up to
date by listing the prefix, so only new or changed objects are downloaded.

An object counts as unchanged while its size and its store's version record (S3's ETag,
else a modification time) match what was downloaded. Each file is written atomically, so
a run killed mid-download leaves no partial file that a later run would take as complete;
files deleted from the store leave the copy too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from restore.io.atomic import atomic_write
from restore.io.storage import ObjectPath, StorageError, check_url

RECORD_NAME = ".restore-mirror.json"  # relative name -> the version downloaded; hidden, so never a training image
_VERSION_FIELDS = ("ETag", "etag", "md5Hash", "mtime", "LastModified", "last_modified", "created")


def local_mirror(url: str, cache_root: Path) -> Path:
    """The folder under ``cache_root`` that holds the files under ``url``, updated now."""
    check_url(url, "--data")
    source = ObjectPath.from_url(url)
    target = cache_root / hashlib.sha256(str(source).encode()).hexdigest()[:24]
    target.mkdir(parents=True, exist_ok=True)
    recorded = _read_record(target / RECORD_NAME)
    listing = source.store.fs.find(source.key, withdirs=False, detail=True)
    current: dict[str, str] = {}
    for key, info in sorted(listing.items()):
        relative = key[len(source.key) + 1:] if key.startswith(source.key + "/") else ""
        if not relative or any(part.startswith(".") for part in relative.split("/")):
            continue
        current[relative] = _version(info)
        local = target / relative
        if recorded.get(relative) != current[relative] or not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(local, lambda temp, key=key: source.store.fs.get_file(key, str(temp)))
            recorded[relative] = current[relative]
            _write_record(target / RECORD_NAME, recorded)  # after each file: a killed run keeps what it fetched
    if not current:
        raise StorageError(f"--data {source}: no files under it; check the URL (a prefix, like s3://bucket/photos/)")
    for relative in set(recorded) - set(current):
        (target / relative).unlink(missing_ok=True)
    _write_record(target / RECORD_NAME, current)
    return target


def _version(info: dict[str, Any]) -> str:
    marks = [str(info[field]) for field in _VERSION_FIELDS if info.get(field) is not None]
    return json.dumps([info.get("size"), *marks[:1]])


def _read_record(path: Path) -> dict[str, str]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(path: Path, record: dict[str, str]) -> None:
    atomic_write(path, lambda temp: temp.write_text(json.dumps(record, sort_keys=True)))

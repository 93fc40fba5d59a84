"""Folders in object storage: ``--in``/``--out`` given as ``s3://``, ``gs://``, ``az://``,
``memory://`` or any other fsspec URL whose package is installed.

An :class:`ObjectPath` stands where a :class:`pathlib.Path` stands in the batch engine: it
has the pure path operations the engine uses (``/``, ``name``, ``suffix``, ``parent``,
``relative_to``...) and the few I/O ones (``exists``, ``is_file``, ``glob``), and
:func:`restore.io.atomic.atomic_write`, :func:`restore.io.image.read_image` and
:func:`restore.io.files.display_path` accept it. It is deliberately not ``os.PathLike``: no
OS call can take an object key for a local file name.

Plain local paths never come here (``file://`` URLs become a :class:`~pathlib.Path`), and
fsspec is imported only when a URL is opened, so local runs neither load it nor change.

Reads: an image object is fetched into memory and decoded from there, as a local file is
read whole. Scan readers (nibabel, pydicom) take files, so a scan's objects (one file, or the
files of a DICOM series) are fetched into a private folder of the staging folder
(:func:`fetched`), read there, and deleted with it when the job's reading ends.

Writes: the output is encoded into a local staging file (a locked temp file that a later run
deletes if its writer died), then sent with one upload. S3, GCS and Azure publish an object
only when its upload is complete (a multipart upload too), so the final key is written
directly; other protocols get a temp key beside it that is moved into place, so a reader
never sees a partial object under a final key. Credentials come the way each file system
takes them (AWS environment variables including ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``,
``FSSPEC_<PROTOCOL>_<OPTION>`` settings); a URL holding any is refused, since URLs are
printed and written to report.json."""

from __future__ import annotations

import fnmatch
import os
import re
import secrets
import socket
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from restore.io.atomic import (TEMP_PREFIX, TEMP_SUFFIX, locked_temp_file, process_exists, remove_stale_temps,
                               temp_folder)

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")
# Protocols whose stores show an object only once its upload has completed.
_ATOMIC_UPLOADS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"
_TEMP_KEY = re.compile(rf"{re.escape(TEMP_PREFIX)}(.+)-(\d+)-[0-9a-f]+{re.escape(TEMP_SUFFIX)}")
CLOUD_EXTRA = "pip install 'restore[cloud]' (s3fs, gcsfs, adlfs)"
# Bytes fetched per request when a header is parsed from the start of an object: a DICOM
# header fits, and a big object is not fetched whole to read it.
HEADER_BLOCK = 1 << 16


class StorageError(ValueError):
    """A storage URL that cannot be used: credentials in it, or no package for its protocol."""


def is_url(location: Any) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and _URL.match(location) is not None


def location(value: str | os.PathLike | ObjectPath) -> Path | ObjectPath:
    """``--in``/``--out``/``--masks`` as given: an :class:`ObjectPath` for a storage URL, a
    :class:`~pathlib.Path` for a local path or a ``file://`` URL."""
    if isinstance(value, ObjectPath):
        return value
    if not is_url(value):
        return Path(value)
    check_url(value)
    parts = urlsplit(value)
    if parts.scheme.lower() == "file":
        return Path(unquote(parts.path if parts.netloc in ("", "localhost") else parts.netloc + parts.path))
    return ObjectPath.from_url(value)


def check_url(url: str, what: str = "") -> None:
    """Refuse a URL with credentials in it (user:password@, a signed query string) and one
    whose protocol has no installed package; ``what`` (e.g. ``--in``) starts the message."""
    parts = urlsplit(url)
    lead = f"{what} " if what else ""
    if "@" in parts.netloc:
        shown = f"{parts.scheme}://***@{parts.netloc.rpartition('@')[2]}{parts.path}"
        raise StorageError(
            f"{lead}{shown}: credentials in a URL are refused (URLs are printed and written to report.json); "
            f"remove them and give them the usual way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
            f"GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_CONNECTION_STRING...)"
        )
    if parts.query:
        raise StorageError(
            f"{lead}{parts.scheme}://{parts.netloc}{parts.path}: a query string is refused (a signature or SAS "
            f"token in a URL is a credential, printed and written to report.json); give credentials the usual way"
        )
    if parts.scheme.lower() != "file":
        _filesystem_class(parts.scheme.lower(), f"{lead}{url}")


def _filesystem_class(scheme: str, shown: str) -> type:
    try:
        import fsspec

        return fsspec.get_filesystem_class(scheme)
    except ImportError as error:
        raise StorageError(f"{shown}: {scheme}:// needs a package that is not installed ({error}); {CLOUD_EXTRA}") \
            from error
    except ValueError as error:
        raise StorageError(f"{shown}: unknown protocol {scheme}:// ({error}); restore reads any fsspec protocol "
                           f"whose package is installed") from error


class Store:
    """One fsspec file system, and what listings of it have shown: after a prefix is listed
    once, whether a key under it exists costs no request (a batch asks it of every output)."""

    def __init__(self, scheme: str, fs: Any, root: str = "", root_url: str = "") -> None:
        """``root``: the key of the URL ``root_url`` the user gave, so keys under it are
        shown as the user spells them (``memory://a`` is key ``/a``; ``sftp://host/p`` is ``/p``)."""
        self.scheme, self.fs = scheme, fs
        self.root, self.root_url = root, root_url.rstrip("/")
        self.atomic_uploads = scheme in _ATOMIC_UPLOADS
        self._listed: list[str] = []  # prefixes listed completely
        self._children: dict[str, set[str]] = defaultdict(set)  # folder key -> names of the files in it
        self._folders: set[str] = set()
        self._lock = threading.Lock()  # outputs are recorded by the batch's writer threads

    def list_tree(self, prefix: str) -> list[str]:
        """Every object key under ``prefix``, sorted, remembered for :meth:`known`."""
        keys = sorted(key for key in self.fs.find(prefix, withdirs=False)
                      if key.startswith(prefix + "/") and not key.endswith("/"))
        self._listed.append(prefix)
        for key in keys:
            self.record(key)
        return keys

    def covers(self, key: str) -> bool:
        return any(key == prefix or key.startswith(prefix + "/") for prefix in self._listed)

    def record(self, key: str) -> None:
        folder, _, name = key.rpartition("/")
        with self._lock:
            self._children[folder].add(name)
            while folder and folder not in self._folders:
                self._folders.add(folder)
                folder = folder.rpartition("/")[0]

    def forget(self, key: str) -> None:
        folder, _, name = key.rpartition("/")
        with self._lock:
            self._children[folder].discard(name)

    def kind(self, key: str) -> str | None:
        """``file``, ``folder`` or None (nothing there), from the listings where they cover
        ``key``, else asked of the store."""
        if self.covers(key):
            folder, _, name = key.rpartition("/")
            with self._lock:
                if name in self._children.get(folder, ()):
                    return "file"
                return "folder" if key in self._folders else None
        if self.fs.isfile(key):
            return "file"
        return "folder" if self.fs.isdir(key) else None

    def files_in(self, folder: str) -> list[str]:
        """The names of the objects directly in ``folder``."""
        if self.covers(folder):
            with self._lock:
                return sorted(self._children.get(folder, ()))
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return []
        return sorted(entry["name"].rstrip("/").rpartition("/")[2] for entry in entries if entry["type"] == "file")


class ObjectPath:
    """An object, or a prefix of objects (a folder), in a :class:`Store`."""

    __slots__ = ("store", "key")

    def __init__(self, store: Store, key: str) -> None:
        self.store, self.key = store, key.rstrip("/")

    @classmethod
    def from_url(cls, url: str) -> ObjectPath:
        scheme = urlsplit(url).scheme.lower()
        filesystem = _filesystem_class(scheme, url)
        import fsspec

        key = filesystem._strip_protocol(url).rstrip("/")
        fs = fsspec.filesystem(scheme)
        fs.invalidate_cache()  # fsspec keeps listings per instance: a run sees the store as it is now
        return cls(Store(scheme, fs, key, url), key)

    # -- pure path operations, as pathlib has them ------------------------------------------

    def __str__(self) -> str:
        root = self.store.root
        if self.store.root_url and (self.key == root or self.key.startswith(root + "/")):
            return self.store.root_url + self.key[len(root):]
        return f"{self.store.scheme}://{self.key}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __reduce__(self) -> tuple[Callable[[str], Path | ObjectPath], tuple[str]]:
        """Pickled as its URL (a batch's jobs travel to the workers of a Ray cluster): the
        store is opened again where it is unpickled, with that machine's credentials."""
        return location, (str(self),)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectPath):
            return NotImplemented
        return (self.store.scheme, self.key) == (other.store.scheme, other.key) and self.store.fs is other.store.fs

    def __hash__(self) -> int:
        return hash((self.store.scheme, self.key))

    def __lt__(self, other: ObjectPath) -> bool:
        """Key order: callers sort paths (inpainting's mask candidates)."""
        return self.key < other.key

    def __truediv__(self, other: str | PurePosixPath) -> ObjectPath:
        parts = PurePosixPath(other).parts
        if not parts:
            return self
        if parts[0] == "/":
            raise ValueError(f"{other}: not a path under {self}")
        return ObjectPath(self.store, "/".join((self.key, *parts)))

    @property
    def name(self) -> str:
        return self.key.rpartition("/")[2]

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def parent(self) -> ObjectPath:
        """The folder this key is in; a bucket (a key without ``/``) is its own parent."""
        return ObjectPath(self.store, self.key.rpartition("/")[0]) if "/" in self.key else self

    @property
    def parents(self) -> list[ObjectPath]:
        found, path = [], self
        while path.parent is not path and "/" in path.key:
            path = path.parent
            found.append(path)
        return found

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def relative_to(self, other: ObjectPath) -> PurePosixPath:
        if not isinstance(other, ObjectPath) or other.store.scheme != self.store.scheme:
            raise ValueError(f"{self} is not under {other}")
        if self.key == other.key:
            return PurePosixPath(".")
        if not self.key.startswith(other.key + "/"):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self.key[len(other.key) + 1:])

    def resolve(self) -> ObjectPath:
        """Itself: object keys have no links to follow."""
        return self

    # -- reading ----------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.store.kind(self.key) is not None

    def is_file(self) -> bool:
        return self.store.kind(self.key) == "file"

    def is_dir(self) -> bool:
        return self.store.kind(self.key) == "folder"

    def read_bytes(self, limit: int | None = None) -> bytes:
        """The object's bytes (the first ``limit`` of them, where given)."""
        return self.store.fs.cat_file(self.key, start=None if limit is None else 0, end=limit)

    def open(self) -> BinaryIO:
        """The object as a read-only file fetched :data:`HEADER_BLOCK` bytes at a time as it
        is read, for parsers that read a header and stop."""
        return self.store.fs.open(self.key, "rb", block_size=HEADER_BLOCK)

    def walk(self, skip: Any = None) -> Iterator[ObjectPath]:
        """The objects under this prefix in key order, without hidden ones (a name starting
        with ``.`` in any part, as restore's temp keys) and without the ``skip`` tree: what
        the local walk yields of a folder."""
        for key in self.store.list_tree(self.key):
            if any(part.startswith(".") for part in key[len(self.key) + 1:].split("/")):
                continue
            path = ObjectPath(self.store, key)
            if skip is None or (path != skip and skip not in path.parents):
                yield path

    def glob(self, pattern: str) -> list[ObjectPath]:
        """The objects directly in this folder whose names match ``pattern`` (no ``/``)."""
        return [self / name for name in self.store.files_in(self.key) if fnmatch.fnmatchcase(name, pattern)]

    def snapshot(self) -> None:
        """List this prefix once, so that existence checks under it cost no request."""
        self.store.list_tree(self.key)

    # -- writing ----------------------------------------------------------------------------

    def write_atomic(self, write: Callable[[Path], None]) -> None:
        """``write(local_file)``, then the file uploaded under this key so that no reader
        ever sees part of it there (module doc)."""
        staging = staging_folder()
        handle, temp = locked_temp_file(staging)
        try:
            write(temp)
            fs = self.store.fs
            if self.store.atomic_uploads:
                fs.put_file(str(temp), self.key)
            else:
                moving = self.with_name(_temp_key_name())
                fs.makedirs(self.parent.key, exist_ok=True)
                fs.put_file(str(temp), moving.key)
                try:
                    fs.mv(moving.key, self.key)
                except BaseException:
                    fs.rm_file(moving.key)
                    raise
            self.store.record(self.key)
        finally:
            temp.unlink(missing_ok=True)
            os.close(handle)

    def check_writable(self) -> None:
        """Write and delete a temp object here: raises OSError where this store refuses."""
        probe = self / _temp_key_name()
        self.store.fs.pipe_file(probe.key, b"")
        self.store.fs.rm_file(probe.key)

    def remove_stale_temps(self) -> list[ObjectPath]:
        """Delete the temp keys directly in this folder that a writer of this host left and
        that are provably dead (its process is gone); those of other hosts, which may be
        writing now, are left alone. Also clears this host's staging folder likewise."""
        remove_stale_temps([staging_folder()])
        removed = []
        for name in self.store.files_in(self.key):
            match = _TEMP_KEY.fullmatch(name)
            if match and match.group(1) == _HOST and not process_exists(int(match.group(2))):
                stale = self / name
                self.store.fs.rm_file(stale.key)
                self.store.forget(stale.key)
                removed.append(stale)
        return removed


def _temp_key_name() -> str:
    """A hidden key name that says which host and process wrote it."""
    return f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-{secrets.token_hex(6)}{TEMP_SUFFIX}"


def staging_folder() -> Path:
    """Where outputs bound for object storage are encoded before their upload."""
    folder = Path(tempfile.gettempdir()) / "restore-staging"
    folder.mkdir(exist_ok=True)
    return folder


def open_binary(path: Path | ObjectPath) -> BinaryIO:
    """``path`` opened for reading: a local file, or an object (:meth:`ObjectPath.open`)."""
    return path.open() if isinstance(path, ObjectPath) else open(path, "rb")


@contextmanager
def fetched(objects: Sequence[ObjectPath]) -> Iterator[Path]:
    """A private local folder holding a copy of each of ``objects`` under its own name (the
    objects of one folder: a scan file, or a DICOM series' files), for readers that take
    only files. The copies are streamed to disk, concurrently where the store's client can
    (S3, GCS, Azure: a series' hundreds of files are not fetched one after another). The
    folder is deleted with them when the block ends, also on failure, so a worker holds one
    job's files at a time; a killed run's is removed by the next fetch (or the next run into
    object storage), whatever its output location."""
    remove_stale_temps([staging_folder()])
    with temp_folder(staging_folder()) as folder:
        if objects:  # the objects of one folder: one store
            objects[0].store.fs.get([source.key for source in objects],
                                    [str(folder / source.name) for source in objects])
        yield folder

"""Which files are images, listing a folder's images, and paths as printable text.

The suffix sets say what each kind of caller takes from a folder; anything else in the
folder is passed over without a word, so a set decides what a user's folder *is*.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from restore.io.storage import ObjectPath

# The formats restore.io.image both reads and writes: training folders, and an output's
# format (--ext, or the input's own when it is one of these).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
# What a batch takes as input: GIF is read as well, and written as PNG.
READABLE_SUFFIXES = (*IMAGE_SUFFIXES, ".gif")
# What a benchmark folder is scored from. Netpbm is not decoded: a .ppm/.pgm file in an
# evaluation folder stops the run with the reader's "convert it" advice instead of being
# left out of the scores unseen.
EVALUATION_SUFFIXES = (*IMAGE_SUFFIXES, ".ppm", ".pgm")
# The image formats that keep 16-bit samples (medical slices are stored in them).
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")


def image_files(folder: Path, suffixes: Collection[str]) -> list[Path]:
    """The files with ``suffixes`` (any case) under ``folder``, recursively, in path order;
    names starting with a dot (hidden files, atomic-write temporaries) are left out."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith(".")
    )


def display_path(path: Path | ObjectPath) -> str:
    """The path as text for messages and JSON, even when the name is not valid UTF-8: bytes
    that are not UTF-8 appear as ``\\xNN`` escapes instead of making the text fail to print.
    An object in storage is shown as its URL."""
    if isinstance(path, ObjectPath):
        return str(path)
    return os.fsencode(path).decode("utf-8", "backslashreplace")

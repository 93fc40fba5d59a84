"""Giving freed memory back to the operating system between the tile rows of a huge image.

Tiled inference frees blocks of many sizes (tile outputs, the blender's segments and
overlap strips) that glibc's malloc keeps resident on its heap between live blocks, so
without ``malloc_trim(0)`` after each tile row a process's peak memory grows with the
image's width beyond its input and output; ``python bench/memory.py`` measures that peak.
Elsewhere (macOS, Windows, musl) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Return the heap's free pages to the operating system, where glibc can."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

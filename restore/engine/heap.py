"""Giving freed memory back to the operating system between the tile rows of a huge image.

glibc's malloc serves blocks under its mmap threshold from a heap, and it raises that
threshold (up to 32 MiB) each time a larger block is freed. Tiled inference frees blocks of
many sizes: tile outputs, the blender's segments, its overlap strips. After the first tile
row most of them come from the heap, and the freed ones stay resident where live blocks sit
between them, so a process's peak memory grew with the image's width beyond its input and
output: with x4 super-resolution, 1500x1500 -> 3000x3000 added 0.32 GiB of input and output
and 0.19 GiB more on top. ``malloc_trim(0)`` after each tile row returns the free pages; the
extra is now 0.05 GiB (``python bench/memory.py``, bench/README.md). In a one-off comparison,
fixing glibc's mmap threshold at 1-8 MiB instead flattened it too but made the run 13-33 %
slower, as every large tensor became a fresh mapping; trimming cost nothing measurable.
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

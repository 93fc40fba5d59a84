"""Packages only the benchmarks use, installed with the ``[bench]`` extra.

BM3D (the ``bm3d`` package) is licensed for non-commercial use only, so restore does not
depend on it: only ``restore eval`` rows that compare against BM3D need it.
"""

from __future__ import annotations

from types import ModuleType


class MissingExtra(ValueError):
    """A benchmark method whose package is not installed; says which extra installs it."""


def import_bm3d() -> ModuleType:
    """The ``bm3d`` module, or :class:`MissingExtra` saying how to get it or do without."""
    try:
        import bm3d  # slow to import and only needed here
    except ImportError as error:
        raise MissingExtra(
            "the BM3D baseline needs the bm3d package, which is licensed for non-commercial use only "
            "and so not installed with restore: pip install 'restore[bench]', or leave bm3d out of "
            "the methods (restore eval denoise --methods ours,nlmeans,noisy)"
        ) from error
    return bm3d

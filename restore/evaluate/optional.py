"""Packages only the benchmarks use, installed with the ``[bench]`` extra.

BM3D and BM4D (the ``bm3d`` and ``bm4d`` packages) are licensed for non-commercial use only,
so restore does not depend on them: only ``restore eval`` rows that compare against them
need them.
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


def import_bm4d() -> ModuleType:
    """The ``bm4d`` module, or :class:`MissingExtra` saying how to get it or do without."""
    try:
        import bm4d  # slow to import and only needed here
    except ImportError as error:
        raise MissingExtra(
            "the BM4D baseline needs the bm4d package, which is licensed for non-commercial use only "
            "and so not installed with restore: pip install 'restore[bench]', or leave bm4d and "
            "bm4d_vst out of the methods (restore eval medical --methods ours,bm3d,noisy)"
        ) from error
    return bm4d

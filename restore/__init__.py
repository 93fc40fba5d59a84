"""restore: repair and restyle images with conditional GANs.

The public API is imported lazily, so ``import restore`` (and ``restore --help``) stays
instant and does not load torch until a model is used::

    import restore
    model = restore.load("denoise-color", device="auto")
    clean = model(noisy_array, sigma=25)
    report = restore.process_folder("denoise", "photos/", "clean/", sigma="auto")
    report = restore.process_scans("denoise", "scans/", "clean/", modality="ct")   # DICOM, NIfTI...
    report = restore.chain(["denoise --sigma auto", "superres --scale 4"], "photos/", "big/")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from restore._lazy import lazy_exports
from restore._version import __version__

if TYPE_CHECKING:
    from restore.api import TaskProcessor, process_folder
    from restore.cli.chain import chain
    from restore.engine.batch import BatchReport
    from restore.model import Restorer, load
    from restore.volumes import process_scans
    from restore.weights import WeightsEntry, load_manifest

__all__ = [
    "BatchReport",
    "Restorer",
    "TaskProcessor",
    "WeightsEntry",
    "__version__",
    "chain",
    "load",
    "load_manifest",
    "process_folder",
    "process_scans",
]

_LAZY = {
    "load": "restore.model",
    "Restorer": "restore.model",
    "process_folder": "restore.api",
    "process_scans": "restore.volumes",
    "chain": "restore.cli.chain",
    "TaskProcessor": "restore.api",
    "BatchReport": "restore.engine.batch",
    "WeightsEntry": "restore.weights",
    "load_manifest": "restore.weights",
}


__getattr__ = lazy_exports(__name__, _LAZY)

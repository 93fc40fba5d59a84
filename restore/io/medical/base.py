"""What every scan format provides (:class:`VolumeFormat`), what its writer is told
(:class:`WriteOptions`), and the error and size limit all readers share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from restore.io.medical.volume import Volume


class MedicalReadError(ValueError):
    """A scan that cannot be used, with the file and what to do about it."""


@dataclass(frozen=True)
class WriteOptions:
    """How a processed volume is written back. ``name_suffix``: added to the names of a
    series' files; the rest say what makes a DICOM output a derived image
    (restore.io.medical.dicom.derived) and whether it stays compressed
    (restore.io.medical.dicom.compression). Formats without such fields ignore them."""

    name_suffix: str = ""
    description_suffix: str = " restored"
    keep_compression: bool = False
    derivation: str = "processed"


class VolumeFormat(Protocol):
    """One scan format: which paths it reads, and how it writes back a volume it read.

    ``name`` is the :attr:`Volume.format <restore.io.medical.volume.Volume.format>` of
    the volumes it reads, by which :func:`~restore.io.medical.registry.write_volume`
    finds the writer. ``suffixes``: the endings of its file names (lower case), so that
    output names keep them. ``folder``: it reads a folder of files (a DICOM series),
    not one file."""

    name: str
    suffixes: tuple[str, ...]
    folder: bool

    def claims(self, path: Path) -> bool:
        """Whether ``path`` is in this format (by name, or by a look at the file)."""
        ...

    def read(self, path: Path, max_voxels: int, files: list[Path] | None = None) -> Volume:
        """The scan at ``path``, refused (:class:`MedicalReadError`) before its pixels are
        decoded if its header declares more than ``max_voxels`` voxels. ``files``: a
        folder's member files, when the caller has listed them (file formats have none)."""
        ...

    def write(self, path: Path, volume: Volume, options: WriteOptions) -> None:
        """``volume`` (read by this format) to ``path``, each file atomically."""
        ...


def check_size(voxels: int, max_voxels: int, path: Path) -> None:
    if voxels > max_voxels:
        raise MedicalReadError(f"{path}: {voxels} voxels, more than the limit {max_voxels}; "
                               f"raise it with --max-voxels if the file is trusted")

"""NumPy ``.npy`` arrays: 2-D (one slice, written back 2-D) to 4-D, without a header:
no rescale, spacing or geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from restore.io.atomic import atomic_write
from restore.io.medical.base import MedicalReadError, WriteOptions, check_size
from restore.io.medical.volume import Volume, integer_range

NUMPY_SUFFIXES = (".npy",)


class NumpyFormat:
    name = "npy"
    suffixes = NUMPY_SUFFIXES
    folder = False

    def claims(self, path: Path) -> bool:
        return path.name.lower().endswith(self.suffixes)

    def read(self, path: Path, max_voxels: int, files: list[Path] | None = None) -> Volume:
        try:
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # the header only, for the size check
            check_size(int(mapped.size), max_voxels, path)
            voxels = np.array(mapped)
        except (OSError, ValueError) as error:
            raise MedicalReadError(f"{path}: not a readable .npy array ({error})") from error
        squeezed = voxels.ndim == 2
        if squeezed:
            voxels = voxels[None]
        if voxels.ndim not in (3, 4) or voxels.dtype.kind not in "uif":
            raise MedicalReadError(f"{path}: a {voxels.ndim}-D {voxels.dtype} array; 2-D to 4-D numeric arrays are supported")
        return Volume(voxels=voxels, format=self.name, value_range=integer_range(voxels.dtype), files=[path],
                      squeezed=squeezed)

    def write(self, path: Path, volume: Volume, options: WriteOptions) -> None:
        atomic_write(path, lambda temp: _save_npy(temp, volume.voxels[0] if volume.squeezed else volume.voxels))


NPY = NumpyFormat()


def _save_npy(temp: Path, voxels: np.ndarray) -> None:
    with open(temp, "wb") as handle:
        np.save(handle, voxels, allow_pickle=False)

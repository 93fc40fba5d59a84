"""NIfTI (``.nii``, ``.nii.gz``): read with its header as stored, written back with that
header byte for byte except the dimensions, and after super-resolution the voxel sizes
and the q/s-form affines. nibabel (the ``[medical]`` extra) is imported when a file is
opened."""

from __future__ import annotations

import contextlib
import gzip
from pathlib import Path
from typing import BinaryIO

import numpy as np

from restore.io.atomic import atomic_write
from restore.io.medical.base import MedicalReadError, WriteOptions, check_size
from restore.io.medical.volume import Volume, integer_range

NIFTI_SUFFIXES = (".nii", ".nii.gz")


class NiftiFormat:
    name = "nifti"
    suffixes = NIFTI_SUFFIXES
    folder = False

    def claims(self, path: Path) -> bool:
        return path.name.lower().endswith(self.suffixes)

    def read(self, path: Path, max_voxels: int, files: list[Path] | None = None) -> Volume:
        nibabel = _nibabel()
        from nibabel.openers import ImageOpener

        try:
            image = nibabel.load(path)
            check_size(int(np.prod(image.shape)), max_voxels, path)
            with ImageOpener(path) as handle:  # the header as stored (nibabel resets scl_* on load)
                header = type(image.header).from_fileobj(handle)
            voxels = np.asanyarray(image.dataobj.get_unscaled())
        except (nibabel.filebasedimages.ImageFileError, OSError, ValueError, EOFError) as error:
            raise MedicalReadError(f"{path}: not a readable NIfTI file ({error})") from error
        if voxels.ndim not in (2, 3, 4):
            raise MedicalReadError(f"{path}: {voxels.ndim}-D NIfTI; 2-D, 3-D and 4-D volumes are supported")
        if voxels.ndim == 2:
            voxels = voxels[:, :, None]
        slope, intercept = header.get_slope_inter()
        zooms = tuple(float(z) for z in header.get_zooms()[:3])
        return Volume(
            voxels=voxels,
            format=self.name,
            slope=1.0 if slope is None else float(slope),
            intercept=0.0 if intercept is None else float(intercept),
            value_range=integer_range(voxels.dtype),
            spacing=zooms + (1.0,) * (3 - len(zooms)),
            affine=image.affine,
            slice_axis=2,
            header=header,
            files=[path],
        )

    def write(self, path: Path, volume: Volume, options: WriteOptions) -> None:
        atomic_write(path, lambda temp: _write_nifti(temp, volume, gzipped=path.name.lower().endswith(".gz")))


NIFTI = NiftiFormat()


def _nibabel():
    try:
        import nibabel
    except ImportError as error:
        raise MedicalReadError("NIfTI needs nibabel: pip install 'restore[medical]'") from error
    return nibabel


def _write_nifti(temp: Path, volume: Volume, gzipped: bool) -> None:
    from nibabel.volumeutils import array_to_file

    header = volume.header.copy()
    voxels = volume.voxels
    flat = len(header.get_data_shape()) == 2  # a 2-D NIfTI is read as one slice and written back 2-D
    shape = voxels.shape[:2] if flat else voxels.shape
    if tuple(header.get_data_shape()) != shape:
        pixdim = header["pixdim"].copy()  # set_data_shape resets the voxel sizes it does not know
        header.set_data_shape(shape)
        header["pixdim"] = pixdim
    if volume.upscaled is not None:
        axes, factor = volume.upscaled
        zooms = list(header.get_zooms())
        for axis in axes:
            zooms[axis] /= factor
        header.set_zooms(zooms)
        for form in ("sform", "qform"):
            affine, code = getattr(header, f"get_{form}")(coded=True)
            if code:
                getattr(header, f"set_{form}")(upscaled_affine(affine, axes, factor), code=int(code))
    with open(temp, "wb") as raw, _gzip_stream(raw) if gzipped else contextlib.nullcontext(raw) as handle:
        header.write_to(handle)
        array_to_file(voxels, handle, header.get_data_dtype(), offset=int(header["vox_offset"]), order="F")


def _gzip_stream(raw: BinaryIO) -> gzip.GzipFile:
    """A gzip writer whose header holds no file name and no time (gzip.open records the
    temp file's name and the clock): the same volume gives the same bytes on every run."""
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)


def upscaled_affine(affine: np.ndarray, axes: tuple[int, ...], factor: int) -> np.ndarray:
    """The voxel-to-world affine after ``axes`` were upsampled ``factor`` times with the
    voxel-centre convention (pixel shuffle, bicubic with ``align_corners=False``): new
    voxel ``i`` sits at old index ``(i + 0.5) / factor - 0.5``."""
    result = np.array(affine, dtype=np.float64)
    for axis in axes:
        result[:3, 3] += affine[:3, axis] * (0.5 / factor - 0.5)
        result[:3, axis] = affine[:3, axis] / factor
    return result

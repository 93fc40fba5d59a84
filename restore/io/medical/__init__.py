"""Medical scans in and out: DICOM (file, series folder, enhanced multi-frame), NIfTI,
16-bit PNG/TIFF and ``.npy``, behind one :class:`Volume`.

A scan's numbers are data, not pictures, so a volume keeps the *stored* values in their
stored dtype, with what turns them into physical units (slope/intercept, the stored
type's valid range) and geometry (spacing, affine) next to them, and the source header
it came from. Writers put a processed volume back in its input's format: every DICOM
tag and NIfTI header field is kept except those that must change (see
:func:`write_volume`).

Each format is a :class:`~restore.io.medical.base.VolumeFormat` (a reader/writer pair)
in a module of its own, registered below (restore.io.medical.registry); a new format is
one new module and one :func:`register` call.

pydicom and nibabel (the ``[medical]`` extra) are imported when a scan is opened, so the
rest of ``restore`` never needs them.
"""

from restore.io.medical.base import MedicalReadError, VolumeFormat, WriteOptions
from restore.io.medical.dicom.compression import DECODERS
from restore.io.medical.dicom.formats import DICOM_FILE, DICOM_SERIES, DICOM_SUFFIXES, is_dicom
from restore.io.medical.dicom.read import IMAGE_PIXEL_TAGS
from restore.io.medical.nifti import NIFTI, NIFTI_SUFFIXES, upscaled_affine
from restore.io.medical.npy import NPY, NUMPY_SUFFIXES
from restore.io.medical.registry import output_name, read_volume, register, volume_kind, write_volume
from restore.io.medical.slice_image import SLICE_IMAGE
from restore.io.medical.volume import Volume, VolumeHeader, stored_range

# Each registered format is consulted before the earlier ones: DICOM files first, so
# that the others, which go by suffix alone, are asked before DICOM sniffs the file.
for _format in (DICOM_FILE, NIFTI, SLICE_IMAGE, NPY, DICOM_SERIES):
    register(_format)

__all__ = [
    "DECODERS",
    "DICOM_SUFFIXES",
    "IMAGE_PIXEL_TAGS",
    "NIFTI_SUFFIXES",
    "NUMPY_SUFFIXES",
    "MedicalReadError",
    "Volume",
    "VolumeFormat",
    "VolumeHeader",
    "WriteOptions",
    "is_dicom",
    "output_name",
    "read_volume",
    "register",
    "stored_range",
    "upscaled_affine",
    "volume_kind",
    "write_volume",
]

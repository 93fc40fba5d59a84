"""What makes a restored DICOM file a conformant *derived* image of its input.

The DICOM standard (PS3.3 C.7.6.1.1.2, C.7.6.1) asks of an image computed from another:
ImageType value 1 DERIVED and value 2 SECONDARY (enhanced multi-frame files: DERIVED in
the image and frame types, value 2 stays PRIMARY as their IODs require), a DerivationDescription saying how, a SourceImageSequence
referencing the input's SOP instance, and new SOP Instance and Series Instance UIDs, so
that a PACS keeps the input and the output side by side instead of one replacing the
other. Everything else is the input's (see restore.io.medical.registry.write_volume).
"""

from __future__ import annotations

from typing import Any

from restore._version import __version__

SERIES_DESCRIPTION_LIMIT = 64  # VR LO
DERIVATION_DESCRIPTION_LIMIT = 1024  # VR ST


def new_series_uid() -> str:
    """One Series Instance UID for all the files restored from one input series."""
    from pydicom.uid import generate_uid

    return generate_uid()


def mark_derived(dataset: Any, source: Any, series_uid: str, description_suffix: str, derivation: str) -> None:
    """Turn ``dataset`` (a copy of ``source`` holding the restored pixels) into a derived
    image of ``source`` in the new series ``series_uid``; ``derivation`` says what was done."""
    from pydicom.dataset import Dataset
    from pydicom.uid import UID, generate_uid

    sop_uid = generate_uid()
    dataset.SOPInstanceUID = sop_uid
    dataset.file_meta.MediaStorageSOPInstanceUID = sop_uid
    dataset.SeriesInstanceUID = series_uid
    description = str(dataset.get("SeriesDescription", "")) + description_suffix
    dataset.SeriesDescription = description[-SERIES_DESCRIPTION_LIMIT:].strip()
    enhanced = "Enhanced" in UID(str(dataset.get("SOPClassUID", ""))).name or "SharedFunctionalGroupsSequence" in dataset
    dataset.ImageType = _derived_type(dataset.get("ImageType"), enhanced)
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in dataset.get(groups, []):
            for sequence in ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence", "FrameTypeSequence"):
                for item in group.get(sequence, []):
                    if "FrameType" in item:
                        item.FrameType = _derived_type(item.FrameType, enhanced)
    text = f"{derivation} with restore {__version__}"
    previous = str(source.get("DerivationDescription", ""))
    dataset.DerivationDescription = (f"{previous}; {text}" if previous else text)[-DERIVATION_DESCRIPTION_LIMIT:]
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    dataset.SourceImageSequence = [reference]


def _derived_type(image_type: Any, enhanced: bool) -> list[str]:
    """ImageType (or FrameType) with value 1 DERIVED; value 2 SECONDARY, except in
    enhanced multi-frame files whose value 2 is always PRIMARY (PS3.3 C.8.16.1.1)."""
    values = [str(v) for v in image_type] if image_type is not None else []
    second = "PRIMARY" if enhanced else "SECONDARY"
    return ["DERIVED", second, *values[2:]]

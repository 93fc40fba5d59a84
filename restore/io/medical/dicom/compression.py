"""The transfer syntax a restored DICOM file is written in, and its pixel data encoded for
it; which package decodes a compressed input.

Compressed inputs (JPEG, JPEG-LS, JPEG 2000, RLE) are decoded by pydicom's pixel-data
plugins (pylibjpeg with -libjpeg, -openjpeg and -rle, pyjpegls; the ``[medical]``
extra). By default the output is uncompressed (Explicit VR Little Endian): every viewer
and PACS reads it, and nothing restore computed is lost. With ``keep_compression`` a
compressed input's output is compressed again, always losslessly (restored values are
not to be degraded by a lossy codec): in the input's codec family where an encoder is
installed, else RLE Lossless (pydicom encodes it itself), and :func:`output_syntax` says
which and why, for report.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"

# Compressed transfer syntaxes -> the package that lets pydicom decode them (RLE and
# Deflate it decodes itself).
DECODERS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.70": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.80": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.81": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg + pylibjpeg-openjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg + pylibjpeg-openjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg + pylibjpeg-openjpeg >= 2.0",
    "1.2.840.10008.1.2.4.202": "pylibjpeg + pylibjpeg-openjpeg >= 2.0",
    "1.2.840.10008.1.2.4.203": "pylibjpeg + pylibjpeg-openjpeg >= 2.0",
}

# input syntax -> the lossless syntax of its codec family
LOSSLESS_IN_FAMILY = {
    **dict.fromkeys(("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                     JPEG_LOSSLESS_SV1), JPEG_LOSSLESS_SV1),
    **dict.fromkeys(("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"), JPEG_LS_LOSSLESS),
    **dict.fromkeys(("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"), JPEG_2000_LOSSLESS),
    RLE_LOSSLESS: RLE_LOSSLESS,
}


def output_syntax(syntax: str, keep_compression: bool = False) -> tuple[str, str]:
    """(the output's transfer syntax UID, what to say about it) for an input in ``syntax``."""
    from pydicom.uid import UID

    source = UID(str(syntax))
    if not source.is_compressed:
        return EXPLICIT_LITTLE if source.is_deflated or not source.is_little_endian else str(source), "uncompressed"
    if not keep_compression:
        return EXPLICIT_LITTLE, f"input {source.name}: written uncompressed (Explicit VR Little Endian)"
    family = LOSSLESS_IN_FAMILY.get(str(source))
    for target in (family, RLE_LOSSLESS):
        if target is not None and _can_encode(target):
            name = UID(target).name
            if target == str(source):
                return target, f"kept as {name}"
            why = "no encoder for its codec here" if target != family else "lossless in the same codec"
            return target, f"input {source.name}: re-encoded as {name} ({why})"
    return EXPLICIT_LITTLE, f"input {source.name}: no lossless encoder here, written uncompressed"


def _can_encode(syntax: str) -> bool:
    from pydicom.pixels import get_encoder

    try:
        return bool(get_encoder(syntax).is_available)
    except NotImplementedError:  # pydicom has no encoder for this syntax at all
        return False


def can_decode(syntax: str) -> bool:
    """Whether a pydicom plugin that decodes ``syntax`` is installed."""
    from pydicom.pixels import get_decoder

    try:
        return bool(get_decoder(syntax).is_available)
    except NotImplementedError:
        return False


def set_pixels(dataset: Any, pixels: np.ndarray, syntax: str) -> None:
    """Put stored values ``pixels`` (one frame ``(rows, columns)`` or ``(frames, rows,
    columns)``) into ``dataset`` in transfer syntax ``syntax`` (one of :func:`output_syntax`)."""
    from pydicom.uid import UID

    pixels = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder("<")))
    if pixels.ndim == 3 and pixels.shape[0] == 1:  # the encoders take a single frame as (rows, columns)
        pixels = pixels[0]
    if UID(syntax).is_compressed:
        dataset.compress(syntax, pixels, generate_instance_uid=False)
        return
    dataset.file_meta.TransferSyntaxUID = syntax
    dataset.PixelData = pixels.tobytes()
    dataset["PixelData"].VR = "OW" if pixels.dtype.itemsize > 1 else "OB"
    dataset["PixelData"].is_undefined_length = False

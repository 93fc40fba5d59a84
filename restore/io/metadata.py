"""What an image file says about its pixels besides their values, carried from input to output.

Three things a photographer or an archivist relies on: the ICC profile (without it, a
wide-gamut or grey-calibrated scan is shown with the wrong colours), EXIF (camera, date,
GPS: what photo libraries sort and search by) and the resolution in dots per inch (what a
scan's print size and a layout program's placement follow). OpenCV, which encodes the
pixels, writes none of them, so they are read here from the header Pillow parses anyway,
and written into the encoded file: PNG chunks (iCCP, pHYs, eXIf), JPEG segments (APP1,
APP2, the JFIF density), WebP chunks (ICCP, EXIF, in the extended VP8X layout) and TIFF
tags (ICC, resolution, the descriptive tags and the EXIF and GPS sub-IFDs).

What is changed on the way, because the output's pixels are not the input's:
- the EXIF orientation is set to 1 where :func:`restore.io.image.read_image` turned the
  pixels upright (JPEG, WebP, TIFF), as a viewer applying the tag again would turn them
  twice (a PNG's pixels are read as stored, so its tag is kept);
- the EXIF pixel dimensions and resolution follow the output (see :meth:`Metadata.scaled`);
- the EXIF thumbnail is dropped: it shows the unrestored picture;
- tags that describe the stored layout of a TIFF (strips, compression, sample format)
  are dropped: they describe the input file, not the output;
- an ICC profile whose colour space does not match the output (a CMYK JPEG's profile, a
  grey profile on an image written as RGB) is dropped, as readers refuse or misapply it.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import PIL.Image
import tifffile
from PIL.TiffImagePlugin import ImageFileDirectory_v2

_ORIENTATION = 0x0112
_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT = 0x011A, 0x011B, 0x0128
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
_PIXEL_X_DIMENSION, _PIXEL_Y_DIMENSION = 0xA002, 0xA003
_ICC_PROFILE = 34675  # the TIFF tag
_INCH, _CENTIMETRE = 2, 3
_METRES_PER_INCH = 0.0254
# IFD0 tags that describe how a TIFF stores its pixels (and the EXIF thumbnail's place), not
# the picture: they would be wrong in any output, and the writer sets its own.
_LAYOUT_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 269, 273, 277, 278, 279, 280, 281, 284, 285, 286, 287,
    317, 318, 319, 320, 321, 322, 323, 324, 325, 330, 332, 338, 339, 340, 341, 347, 513, 514, 529, 530, 531, 532,
    _ICC_PROFILE,  # carried as such, not as EXIF
})
# IFD0 text tags a TIFF output keeps in its own IFD0 (the EXIF and GPS sub-IFDs are added whole)
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)  # description, make, model, software, date, artist, copyright
_ICC_SPACES = {1: b"GRAY", 3: b"RGB "}  # output channels -> the profile's colour space (header bytes 16-20)
_JPEG_SEGMENT_MAX = 65533  # payload bytes of one JPEG marker segment
_ICC_JPEG_CHUNK = _JPEG_SEGMENT_MAX - 14  # "ICC_PROFILE\0" + sequence number + count
# WebP extended-format (VP8X) flags
_WEBP_ICC, _WEBP_ALPHA, _WEBP_EXIF = 0x20, 0x10, 0x08
# the raw samples above which tifffile may write a BigTIFF, whose 8-byte offsets the EXIF
# sub-IFD appended by _append_tiff_exif does not use: such outputs keep no EXIF sub-IFD
_CLASSIC_TIFF_BYTES = 2**31


@dataclass(frozen=True)
class Metadata:
    """``icc_profile``: the ICC profile's bytes. ``exif``: EXIF as a TIFF-structured block
    (what a PNG eXIf chunk holds) describing the pixels as read, no thumbnail. ``dpi``: dots per
    inch across and down. Each None when the file has none."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None

    def scaled(self, across: float, down: float) -> Metadata:
        """The metadata of the same picture resampled ``across`` x ``down`` times (super-
        resolution): the DPI is multiplied, so the picture keeps its physical size. An
        upscaled 300 DPI scan prints as large as the original, now with 4x the detail,
        as a scanner's higher DPI setting gives; keeping 300 DPI would make the print 4x
        larger instead, which a page layout silently picks up."""
        if self.dpi is None or (across, down) == (1, 1):
            return self
        return replace(self, dpi=(self.dpi[0] * across, self.dpi[1] * down))


def read_metadata(header: PIL.Image.Image, upright: bool) -> Metadata:
    """The metadata of a file Pillow has opened (lazily: headers only); ``upright``: the
    reader applied the EXIF orientation to the pixels. A damaged EXIF block or resolution
    is left out: the pixels are still good."""
    icc = header.info.get("icc_profile") or None
    exif = _loaded_exif(header)
    dpi = _dpi_from(header.info.get("dpi")) or (_exif_dpi(exif) if exif is not None else None)
    return Metadata(icc, _cleaned_exif_bytes(exif, upright) if exif is not None else None, dpi)


def read_tiff_metadata(data: bytes) -> Metadata:
    """The metadata in a TIFF's first IFD, parsed as EXIF is (it has TIFF's structure):
    Pillow cannot open every sample layout restore reads (16-bit grey + alpha), but it can
    parse any TIFF's tags. The orientation tag is reset, as the reader applies it."""
    try:
        exif = PIL.Image.Exif()
        exif.load(data)
    except Exception:  # damaged tags: tifffile's reading of the pixels decides about the file
        return Metadata()
    profile = exif.get(_ICC_PROFILE)
    return Metadata(profile if isinstance(profile, bytes) and profile else None,
                    _cleaned_exif_bytes(exif, upright=True), _exif_dpi(exif))


def _loaded_exif(header: PIL.Image.Image) -> PIL.Image.Exif | None:
    try:
        exif = header.getexif()
        return exif if len(exif) else None
    except Exception:  # damaged EXIF fails in Pillow with many types
        return None


def _dpi_from(value: object) -> tuple[float, float] | None:
    """``(x, y)`` DPI, each snapped to a whole number within half a pixel per metre of it:
    PNG stores pixels per metre, so a 300 DPI file reads back as 299.9994."""
    try:
        x, y = (float(item) for item in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if not (x > 0 and y > 0):
        return None
    return tuple(float(round(item)) if abs(item - round(item)) <= _METRES_PER_INCH / 2 else item for item in (x, y))


def _exif_dpi(exif: PIL.Image.Exif) -> tuple[float, float] | None:
    """The resolution EXIF states (WebP has no field of its own for it)."""
    unit = exif.get(_RESOLUTION_UNIT, _INCH)
    dpi = _dpi_from((exif.get(_X_RESOLUTION), exif.get(_Y_RESOLUTION)))
    if dpi is None or unit not in (_INCH, _CENTIMETRE):
        return None
    return dpi if unit == _INCH else (dpi[0] * 2.54, dpi[1] * 2.54)


def _cleaned_exif_bytes(exif: PIL.Image.Exif, upright: bool) -> bytes | None:
    """EXIF without layout tags and thumbnail (orientation 1 if ``upright``), as a
    TIFF-structured block."""
    if not len(exif):
        return None
    try:
        cleaned = PIL.Image.Exif()
        for tag, value in exif.items():
            if tag in (_EXIF_IFD, _GPS_IFD):
                sub_ifd = {key: item for key, item in exif.get_ifd(tag).items() if key != _INTEROP_IFD}
                if sub_ifd:
                    cleaned[tag] = sub_ifd
            elif tag not in _LAYOUT_TAGS:
                cleaned[tag] = value
        if upright and _ORIENTATION in cleaned:
            cleaned[_ORIENTATION] = 1
        return cleaned.tobytes()[6:] if len(cleaned) else None  # without the "Exif\0\0" of JPEG's APP1
    except Exception:  # a value Pillow cannot write back: keep the pixels, drop EXIF
        return None


def _output_exif(metadata: Metadata, width: int, height: int, holds_dpi: bool = False) -> PIL.Image.Exif | None:
    """The EXIF to write for a ``width`` x ``height`` output: its pixel dimensions and
    resolution made to match what the file says elsewhere. ``holds_dpi``: the format has
    no resolution field of its own (WebP), so EXIF carries the DPI, made for it if need be."""
    if metadata.exif is None and not (holds_dpi and metadata.dpi is not None):
        return None
    exif = PIL.Image.Exif()
    if metadata.exif is not None:
        exif.load(metadata.exif)
    exif_ifd = exif.get_ifd(_EXIF_IFD)
    if _PIXEL_X_DIMENSION in exif_ifd or _PIXEL_Y_DIMENSION in exif_ifd:
        exif_ifd[_PIXEL_X_DIMENSION], exif_ifd[_PIXEL_Y_DIMENSION] = width, height
    if metadata.dpi is not None and (holds_dpi or _X_RESOLUTION in exif or _Y_RESOLUTION in exif):
        exif[_X_RESOLUTION], exif[_Y_RESOLUTION] = (float(value) for value in metadata.dpi)
        exif[_RESOLUTION_UNIT] = _INCH
    return exif


def _exif_bytes(exif: PIL.Image.Exif | None) -> bytes | None:
    if exif is None:
        return None
    try:
        return exif.tobytes()[6:]
    except Exception:  # as in _cleaned_exif_bytes
        return None


def _matching_profile(metadata: Metadata, channels: int) -> bytes | None:
    """The ICC profile, if its colour space is the output's (1 grey or 3 colour channels)."""
    profile = metadata.icc_profile
    if profile is None or len(profile) < 20 or profile[16:20] != _ICC_SPACES.get(channels):
        return None
    return profile


# --- PNG -----------------------------------------------------------------------------------


def png_chunks(metadata: Metadata, channels: int, width: int, height: int) -> list[tuple[bytes, bytes]]:
    """``(type, payload)`` of the iCCP, pHYs and eXIf chunks, to go before the image data."""
    chunks = []
    if (profile := _matching_profile(metadata, channels)) is not None:
        chunks.append((b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(profile)))
    if metadata.dpi is not None:
        per_metre = (round(value / _METRES_PER_INCH) for value in metadata.dpi)
        chunks.append((b"pHYs", struct.pack(">IIB", *per_metre, 1)))
    if (exif := _exif_bytes(_output_exif(metadata, width, height))) is not None:
        chunks.append((b"eXIf", exif))
    return chunks


# --- JPEG ----------------------------------------------------------------------------------


def jpeg_with_metadata(encoded: bytes, metadata: Metadata, channels: int, width: int, height: int) -> bytes:
    """OpenCV's JPEG with the DPI in its JFIF header and EXIF (APP1) and the ICC profile
    (APP2, split into chunks as the ICC specification's annex B says) after it."""
    data = bytearray(encoded)
    jfif = data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\x00"
    if metadata.dpi is not None and jfif:
        x, y = (min(65535, max(1, round(value))) for value in metadata.dpi)
        struct.pack_into(">BHH", data, 13, 1, x, y)  # units = dots per inch
    segments = []
    exif = _exif_bytes(_output_exif(metadata, width, height))
    if exif is not None and len(exif) + 6 <= _JPEG_SEGMENT_MAX:
        segments.append(_jpeg_segment(0xE1, b"Exif\x00\x00" + exif))
    if (profile := _matching_profile(metadata, channels)) is not None:
        chunks = [profile[start : start + _ICC_JPEG_CHUNK] for start in range(0, len(profile), _ICC_JPEG_CHUNK)]
        if len(chunks) <= 255:
            for number, chunk in enumerate(chunks, 1):
                segments.append(_jpeg_segment(0xE2, b"ICC_PROFILE\x00" + bytes([number, len(chunks)]) + chunk))
    insert = 4 + struct.unpack(">H", data[4:6])[0] if jfif else 2  # after the JFIF segment, else after SOI
    return bytes(data[:insert] + b"".join(segments) + data[insert:])


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


# --- WebP ----------------------------------------------------------------------------------


def webp_with_metadata(encoded: bytes, metadata: Metadata, channels: int, width: int, height: int) -> bytes:
    """OpenCV's WebP rewritten in the extended layout (VP8X, ICCP, image chunks, EXIF) when
    there is a profile or EXIF to add. WebP stores the DPI in EXIF only."""
    profile = _matching_profile(metadata, channels)
    exif = _exif_bytes(_output_exif(metadata, width, height, holds_dpi=True))
    if profile is None and exif is None:
        return encoded
    chunks = _riff_chunks(encoded)
    flags = chunks[0][1][0] if chunks and chunks[0][0] == b"VP8X" else 0
    image = [(kind, payload) for kind, payload in chunks if kind in (b"ALPH", b"VP8 ", b"VP8L")]
    if any(kind == b"ALPH" for kind, _ in image) or any(kind == b"VP8L" and payload[4] & 0x10 for kind, payload in image):
        flags |= _WEBP_ALPHA  # a lossless image's header has its alpha-is-used bit in byte 4
    flags |= (_WEBP_ICC if profile is not None else 0) | (_WEBP_EXIF if exif is not None else 0)
    header = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    ordered = [(b"VP8X", header)]
    ordered += [(b"ICCP", profile)] if profile is not None else []
    ordered += image
    ordered += [(b"EXIF", exif)] if exif is not None else []
    body = b"WEBP" + b"".join(_riff_chunk(kind, payload) for kind, payload in ordered)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 12  # after "RIFF", the size and "WEBP"
    while position + 8 <= len(data):
        kind, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        chunks.append((kind, data[position + 8 : position + 8 + size]))
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    return chunks


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


# --- TIFF ----------------------------------------------------------------------------------


def tiff_options(metadata: Metadata, channels: int, raw_bytes: int) -> dict:
    """Keyword arguments of ``tifffile.imwrite`` carrying the profile, resolution and the
    descriptive text tags; a placeholder tag marks where :func:`append_tiff_exif` links the
    EXIF and GPS sub-IFDs (tifffile refuses to write those tags itself)."""
    options: dict = {"iccprofile": _matching_profile(metadata, channels)}
    if metadata.dpi is not None:
        options.update(resolution=metadata.dpi, resolutionunit="INCH")
    if metadata.exif is None:
        return options
    exif = PIL.Image.Exif()
    exif.load(metadata.exif)
    texts = {tag: exif[tag] for tag in _TIFF_TEXT_TAGS if isinstance(exif.get(tag), str) and exif[tag].isascii()}
    extratags = [(tag, "s", 0, text, True) for tag, text in texts.items() if tag not in (270, 305)]
    if 270 in texts:
        options.update(description=texts[270], metadata=None)  # instead of tifffile's shape note
    if 305 in texts:
        options["software"] = texts[305]
    placeholders = [tag for tag in (_EXIF_IFD, _GPS_IFD) if exif.get_ifd(tag)] if raw_bytes < _CLASSIC_TIFF_BYTES else []
    extratags += [(_placeholder(tag), "I", 1, 0, True) for tag in placeholders]
    options["extratags"] = extratags
    return options


def _placeholder(tag: int) -> int:
    """A private tag number just below ``tag``, so the IFD's tag order holds once it is renamed."""
    return tag - 1


def append_tiff_exif(path: Path, metadata: Metadata, width: int, height: int) -> None:
    """Append the EXIF and GPS sub-IFDs to the TIFF at ``path`` written with
    :func:`tiff_options`, and turn each placeholder entry into the tag pointing at it."""
    exif = _output_exif(metadata, width, height)
    if exif is None:
        return
    with tifffile.TiffFile(path) as tiff:
        tags = tiff.pages[0].tags
        entries = {tag: tags[_placeholder(tag)].offset for tag in (_EXIF_IFD, _GPS_IFD) if _placeholder(tag) in tags}
        little = tiff.byteorder == "<"
    if not entries:
        return
    order = "<" if little else ">"
    with open(path, "r+b") as handle:
        for tag, entry in entries.items():
            end = handle.seek(0, io.SEEK_END)
            end += end & 1  # IFDs start on a word boundary
            directory = ImageFileDirectory_v2(ifh=(b"II*\x00" if little else b"MM\x00*") + b"\x00" * 4)
            for key, value in exif.get_ifd(tag).items():
                directory[key] = value
            handle.seek(end)
            handle.write(directory.tobytes(end))
            handle.seek(entry)
            handle.write(struct.pack(order + "HHII", tag, 4, 1, end))  # type LONG, one value: the IFD's offset

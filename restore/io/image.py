"""Reading and writing image files (8/16-bit, float, grey, colour, alpha).

OpenCV decodes and encodes the pixels (fast, and it keeps 16-bit depth); Pillow only
parses headers, for the size check and the EXIF orientation, because OpenCV reports
neither before decoding. TIFF goes through tifffile first, because OpenCV drops the
alpha of grey+alpha TIFFs and refuses more exotic sample layouts; OpenCV (libtiff) is
the fallback for the compressions and colour models tifffile cannot decode on its own.
"""

from __future__ import annotations

import io
import itertools
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import tifffile

from restore.io.atomic import atomic_write
from restore.io.convert import dtype_scale
from restore.io.files import display_path as _shown
from restore.io.metadata import (
    Metadata,
    append_tiff_exif,
    jpeg_with_metadata,
    png_chunks,
    read_metadata,
    read_tiff_metadata,
    tiff_options,
    webp_with_metadata,
)
from restore.io.limits import MAX_PIXELS
from restore.io.png_stream import write_png
from restore.io.storage import ObjectPath

# A progressive JPEG is decoded once more per scan, so thousands of tiny scans make a small
# file cost minutes (the libjpeg-turbo attack in Cure53's audit). Encoders write about 10;
# 256 is NVIDIA nvImageCodec's default limit for the same reason.
MAX_JPEG_SCANS = 256

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PILLOW_FORMATS = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp", "WEBP": "webp", "GIF": "gif"}
_EXIF_ORIENTATION = 0x0112
_PNG_GREY_COLOUR_TYPES = (0, 4)  # IHDR colour types "grey" and "grey + alpha"
_TIFFFILE_DTYPES = {"uint8", "uint16", "float16", "float32", "float64"}
_PIXEL_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
_SPECIAL_FILES = ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe"), (stat.S_ISCHR, "character device"),
                  (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))

# Per output extension: whether it keeps alpha. PNG and TIFF also keep 16-bit samples
# (written by _write_png, _write_tiff); the others are 8-bit (_encode).
_WRITE_KEEPS_ALPHA = {
    ".png": True,
    ".tif": True,
    ".tiff": True,
    ".jpg": False,
    ".jpeg": False,
    ".bmp": False,
    ".webp": True,
}
QUALITY_SUFFIXES = (".jpg", ".jpeg", ".webp")  # the lossy outputs, whose encoder takes write_image's quality


class ImageReadError(ValueError):
    """An input that cannot be used, with a reason a user can act on (a ValueError: a
    command that takes images as settings, such as `restore eval`, reports it as a usage error)."""


class ImageTooLargeError(ImageReadError):
    """An image whose header declares more pixels than the limit: refused before decoding."""


@dataclass
class Image:
    """Pixels as read from a file: ``pixels`` is ``(H, W, C)`` with C = 1 (grey) or 3 (RGB),
    in the file's dtype (uint8, uint16 or float32); ``alpha`` is ``(H, W)`` in the same
    dtype, or None.

    ``format`` is the format the bytes were in, as a lowercase extension without the dot
    (``png``, ``jpg``, ``tif``, ``bmp``, ``webp``, ``gif``), so a writer can keep it; it
    follows the content, not the file name. None for images made in memory.

    ``metadata``: the ICC profile, EXIF and DPI of the file, written into the output
    (:mod:`restore.io.metadata`); empty for images made in memory."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    format: str | None = None
    metadata: Metadata = field(default_factory=Metadata)

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]


def read_image(path: str | os.PathLike | bytes | ObjectPath, max_pixels: int = MAX_PIXELS) -> Image:
    """Read an image file, keeping bit depth, grey/colour and alpha; RGB channel order.

    PNG, JPEG, TIFF, BMP, WebP and still GIF. The EXIF orientation of JPEG, WebP and
    TIFF files is applied, so pixels come back the way viewers show them (the metadata
    read with them says orientation 1). The size in the header is checked against ``max_pixels``
    before any pixel is decoded, so a small file claiming a huge size (a decompression
    bomb) cannot exhaust memory. ``path`` may be bytes, for names that are not valid
    UTF-8, or an object in storage (:class:`~restore.io.storage.ObjectPath`: its bytes are
    fetched and decoded from memory, as a local file's are read whole and decoded). Every
    problem raises ImageReadError naming the file and the reason."""
    if isinstance(path, ObjectPath):
        data = _read_object(path)
    else:
        path = _as_path(path)
        data = _read_regular_file(path)
    if not data:
        raise ImageReadError(f"{_shown(path)}: file is empty (0 bytes)")
    if data[:4] in _TIFF_MAGIC:
        return _read_tiff(data, path, max_pixels)
    return _read_with_pillow_header(data, path, max_pixels)


def write_image(path: str | os.PathLike | bytes | ObjectPath, image: Image, quality: int = 95) -> None:
    """Encode ``image`` by the extension of ``path`` and write it atomically.

    PNG and TIFF keep everything: 8/16-bit, grey, alpha (TIFF also float32; float is
    written to PNG as 16-bit). Other formats get what they can hold: JPEG and BMP are
    8-bit without alpha (16-bit and float samples are scaled to 8 bits, alpha is
    dropped); WebP is 8-bit and keeps alpha (grey is stored as RGB, WebP has no grey).
    The image's metadata (ICC profile, EXIF, DPI) goes into PNG, JPEG, TIFF and WebP files.
    ``quality`` (1-100) applies to JPEG and WebP. The file is written under a temporary
    name and renamed into place, so a crash never leaves a half-written image. PNG and TIFF
    are encoded straight into that file (PNG band by band, :mod:`restore.io.png_stream`),
    so a huge output never has its whole encoded file in memory; the other formats are
    encoded in memory first."""
    path = path if isinstance(path, ObjectPath) else _as_path(path)
    extension = path.suffix.lower()
    if extension not in _WRITE_KEEPS_ALPHA:
        supported = ", ".join(sorted(_WRITE_KEEPS_ALPHA))
        raise ValueError(f"{_shown(path)}: cannot write {extension or 'files without an extension'}; use {supported}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, not {quality}")
    _check_image(image)
    if extension == ".png":
        atomic_write(path, lambda temp: _write_png(temp, image))
    elif extension in (".tif", ".tiff"):
        atomic_write(path, lambda temp: _write_tiff(temp, image))
    else:
        encoded = _encode(image, extension, quality, path)
        atomic_write(path, lambda temp: temp.write_bytes(encoded))


def resize_alpha(alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an ``(H, W)`` alpha channel for tasks that change the image size.

    Cubic, like the usual upsampling of the colour channels, so edges stay aligned;
    clipped because cubic overshoots, and alpha outside [0, max] has no meaning."""
    resized = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(resized, 0, dtype_scale(alpha.dtype)).astype(alpha.dtype)


def _read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, which must be a regular file. It is opened without blocking
    and checked on the open descriptor: reading a named pipe would wait forever for a
    writer, and a device (``/dev/zero`` linked as ``x.png``) never ends."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ImageReadError(f"{_shown(path)}: cannot read the file ({error.strerror})") from error
    try:
        mode = os.fstat(descriptor).st_mode
        if (kind := file_kind(mode)) is not None:
            raise ImageReadError(f"{_shown(path)}: not a regular file but a {kind}; only image files are read")
        with open(descriptor, "rb", closefd=False) as handle:
            return handle.read()
    except OSError as error:
        raise ImageReadError(f"{_shown(path)}: cannot read the file ({error.strerror})") from error
    finally:
        os.close(descriptor)


def _read_object(path: ObjectPath) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageReadError(f"{_shown(path)}: cannot read the object ({error.strerror or error})") from error


def file_kind(mode: int) -> str | None:
    """What a file of ``os.stat`` mode ``mode`` is when it is not a regular file (e.g.
    ``named pipe``), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _SPECIAL_FILES if test(mode)), "special file")


def _as_path(path: str | os.PathLike | bytes) -> Path:
    # fsdecode keeps undecodable bytes as surrogates, which the OS maps back to the same bytes.
    return Path(os.fsdecode(path))


def check_pixel_count(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> None:
    """Raise :class:`ImageTooLargeError` when the header of the image file at ``path``
    declares more than ``max_pixels`` pixels; nothing is decoded (a server's upload gate).
    Any other problem is left to :func:`read_image`, which reports it."""
    path = _as_path(path)
    data = _read_regular_file(path)
    try:
        if data[:4] in _TIFF_MAGIC:
            with tifffile.TiffFile(io.BytesIO(data)) as tiff:
                width, height = tiff.pages[0].imagewidth, tiff.pages[0].imagelength
        else:
            with _without_pillow_pixel_limit:
                width, height = PIL.Image.open(io.BytesIO(data)).size  # lazy: parses the header only
    except Exception:  # damaged or no image: read_image says why
        return
    _check_pixel_count(width, height, max_pixels, path)


def _check_pixel_count(width: int, height: int, max_pixels: int, path: Path) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{_shown(path)}: image is too large ({width}x{height} = {width * height} pixels, "
            f"limit {max_pixels}); raise the limit with --max-pixels if the file is trusted"
        )


class _PillowPixelLimitLifted:
    """Lifts Pillow's process-wide ``MAX_IMAGE_PIXELS`` while restore parses or decodes with
    Pillow: read_image checks every header against its own ``max_pixels`` instead, and
    Pillow's limit would refuse (or warn about) files the user allowed. Concurrent decodes
    (the batch's worker threads) share one lifting, and the last to finish puts the limit
    back unless someone else changed it meanwhile, so the rest of the process keeps its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0  # restore's Pillow calls in progress, in any thread
        self._saved: int | None = None  # the process's own limit

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved = PIL.Image.MAX_IMAGE_PIXELS
                PIL.Image.MAX_IMAGE_PIXELS = None
            self._users += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and PIL.Image.MAX_IMAGE_PIXELS is None:
                PIL.Image.MAX_IMAGE_PIXELS = self._saved


_without_pillow_pixel_limit = _PillowPixelLimitLifted()


def _read_with_pillow_header(data: bytes, path: Path, max_pixels: int) -> Image:
    # Pillow fails on damaged headers with many exception types (struct.error, IndexError,
    # SyntaxError...): every one of them means the file cannot be used.
    try:
        with _without_pillow_pixel_limit:
            header = PIL.Image.open(io.BytesIO(data))  # lazy: parses the header only
    except PIL.UnidentifiedImageError as error:
        raise ImageReadError(
            f"{_shown(path)}: not an image (unrecognised content; PNG, JPEG, TIFF, BMP, WebP and GIF are supported)"
        ) from error
    except Exception as error:
        raise ImageReadError(f"{_shown(path)}: corrupt image header ({error})") from error
    file_format = _PILLOW_FORMATS.get(header.format or "")
    if file_format is None:
        raise ImageReadError(
            f"{_shown(path)}: unsupported format {header.format}; convert it to PNG, JPEG, TIFF, BMP or WebP"
        )
    _check_pixel_count(header.width, header.height, max_pixels, path)
    try:
        with _without_pillow_pixel_limit:
            frames = getattr(header, "n_frames", 1)  # GIF and WebP walk every frame's header to count them
    except Exception as error:
        raise ImageReadError(f"{_shown(path)}: corrupt or truncated {header.format} ({error})") from error
    if frames > 1:
        raise ImageReadError(
            f"{_shown(path)}: animated {header.format} with {frames} frames; only still images are "
            f"supported, extract the frames first (e.g. ffmpeg -i in.{file_format} frame_%04d.png)"
        )
    orientation = _exif_orientation(header) if file_format in ("jpg", "webp") else 1
    if file_format == "jpg" and _jpeg_is_truncated(data):  # checked first: the more precise reason
        raise ImageReadError(f"{_shown(path)}: truncated JPEG (the data stops before its end-of-image marker)")
    if file_format == "jpg" and (scans := _jpeg_scan_count(data)) > MAX_JPEG_SCANS:
        raise ImageReadError(
            f"{_shown(path)}: JPEG with {scans} scans (limit {MAX_JPEG_SCANS}): each scan is decoded over the "
            f"whole image, so this file would take far longer than its size suggests; re-encode it if it is trusted"
        )
    if file_format == "gif":
        samples = _decode_gif(header, path)
    else:
        samples = _decode_with_opencv(data, path, header.format)
        if file_format == "png" and data[25] in _PNG_GREY_COLOUR_TYPES and samples.ndim == 3:
            samples = _grey_from_expanded(samples)
    metadata = read_metadata(header, upright=file_format in ("jpg", "webp"))
    return _to_image(samples, file_format, orientation, path, metadata)


def _exif_orientation(header: PIL.Image.Image) -> int:
    """The EXIF orientation (1-8), or 1 when the EXIF block is damaged: the pixels are still
    good, and viewers show such an image as stored."""
    try:
        return int(header.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:
        return 1


def _decode_with_opencv(data: bytes, path: Path, format_name: str) -> np.ndarray:
    """Decoded samples in RGB(A) order; ``format_name`` (e.g. PNG) names the failure."""
    try:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # some damaged headers fail OpenCV's own checks instead of returning None
        decoded = None
    if decoded is None:
        raise ImageReadError(f"{_shown(path)}: corrupt or truncated {format_name} data (could not decode the pixels)")
    if decoded.ndim == 3 and decoded.shape[2] in (3, 4):
        return np.concatenate([decoded[:, :, 2::-1], decoded[:, :, 3:]], axis=2)
    return decoded


def _decode_gif(header: PIL.Image.Image, path: Path) -> np.ndarray:
    """GIF goes through Pillow: OpenCV only decodes it from version 4.11 on."""
    mode = "RGBA" if "transparency" in header.info else "RGB"
    try:
        with _without_pillow_pixel_limit:
            return np.asarray(header.convert(mode))
    except Exception as error:  # as for the header: damaged data fails with many types
        raise ImageReadError(f"{_shown(path)}: corrupt or truncated GIF data ({error})") from error


def _jpeg_is_truncated(data: bytes) -> bool:
    """True when no end-of-image marker follows the last start-of-scan marker.

    OpenCV 4.x decodes a truncated JPEG without error, filling the missing part with
    grey; markers cannot occur inside entropy-coded data (0xFF is stuffed), so this
    byte search is exact, and an EXIF thumbnail's own markers come before the scan."""
    return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")


def _jpeg_scan_count(data: bytes) -> int:
    """The number of start-of-scan segments, found by walking the marker segments (so an
    EXIF thumbnail inside APP1 is not counted) and skipping each scan's entropy-coded data,
    where 0xFF is always followed by 0x00 (stuffing) or a restart marker."""
    position, scans = 2, 0  # after SOI
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:
            scans += 1
            position = _end_of_entropy_data(data, position)
    return scans


def _end_of_entropy_data(data: bytes, position: int) -> int:
    """Where the marker after the entropy-coded data starting at ``position`` begins."""
    while (position := data.find(b"\xff", position)) != -1 and position + 1 < len(data):
        following = data[position + 1]
        if following != 0x00 and not 0xD0 <= following <= 0xD7:
            return position
        position += 2
    return len(data)


def _grey_from_expanded(samples: np.ndarray) -> np.ndarray:
    """OpenCV expands grey+alpha PNGs to RGBA; the file is grey, so keep one channel."""
    if samples.shape[2] == 4:
        return samples[:, :, [0, 3]]
    return samples[:, :, :1]


def _read_tiff(data: bytes, path: Path, max_pixels: int) -> Image:
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page = tiff.pages[0]
            _check_pixel_count(page.imagewidth, page.imagelength, max_pixels, path)
            if _has_second_full_page(tiff):
                raise ImageReadError(f"{_shown(path)}: multi-page TIFF; split it into single images first")
            orientation_tag = page.tags.get(274)
            orientation = int(orientation_tag.value) if orientation_tag is not None else 1
            samples = _decode_tiff_page(page)
    except ImageReadError:
        raise
    except Exception as error:  # damaged tags or strips fail in tifffile with any type (IndexError, zlib.error...)
        raise ImageReadError(f"{_shown(path)}: corrupt or truncated TIFF ({error})") from error
    if samples is None:
        samples = _decode_with_opencv(data, path, "TIFF")
    return _to_image(samples, "tif", orientation, path, read_tiff_metadata(data))


def _has_second_full_page(tiff: tifffile.TiffFile, pages_scanned: int = 16) -> bool:
    """Whether the file holds more than one full-resolution page (reduced-size previews do
    not count). Looks at the first ``pages_scanned`` pages only: a damaged next-page offset
    can chain through thousands of bogus pages, and walking them all made one bad file
    take minutes."""
    full_pages = 0
    for page in itertools.islice(tiff.pages, pages_scanned):
        full_pages += not page.is_reduced
        if full_pages > 1:
            return True
    return False


def _decode_tiff_page(page: tifffile.TiffPage) -> np.ndarray | None:
    """Samples as ``(H, W)`` or ``(H, W, S)`` for grey and RGB pages; None where OpenCV
    should decode instead (palette, CMYK, YCbCr, or a codec that needs imagecodecs)."""
    if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
        return None
    if str(page.dtype) not in _TIFFFILE_DTYPES:  # bilevel, signed: libtiff converts or we refuse
        return None
    try:
        samples = page.asarray()
    except ValueError:  # e.g. "COMPRESSION.LZW requires the 'imagecodecs' package", or damage
        return None
    if page.axes.startswith("S"):  # planar configuration: one plane per sample
        samples = np.moveaxis(samples, 0, -1)
    return samples


def _to_image(samples: np.ndarray, file_format: str, orientation: int, path: Path, metadata: Metadata) -> Image:
    """RGB(A)-ordered samples -> Image: checked dtype and channels, orientation applied,
    alpha split off."""
    if samples.ndim == 2:
        samples = samples[:, :, None]
    if samples.ndim != 3:
        raise ImageReadError(f"{_shown(path)}: unsupported {samples.ndim}-dimensional image data")
    if samples.dtype.kind == "f":
        samples = samples.astype(np.float32, copy=False)
    if samples.dtype not in _PIXEL_DTYPES:
        raise ImageReadError(
            f"{_shown(path)}: unsupported sample type {samples.dtype}; convert it to 8-bit, 16-bit or float32"
        )
    channels = samples.shape[2]
    if channels > 4:
        raise ImageReadError(
            f"{_shown(path)}: unsupported channel count {channels}; grey, grey+alpha, RGB and RGBA are supported"
        )
    samples = _apply_orientation(samples, orientation)
    colour = 1 if channels <= 2 else 3
    alpha = np.ascontiguousarray(samples[:, :, colour]) if channels in (2, 4) else None
    return Image(np.ascontiguousarray(samples[:, :, :colour]), alpha, file_format, metadata)


def _apply_orientation(samples: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``(H, W, C)`` samples stored with EXIF/TIFF orientation 1-8 upright."""
    if orientation in (5, 6, 7, 8):
        samples = samples.transpose(1, 0, 2)  # 5 = transpose; 6, 7, 8 add a flip to it
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    if orientation in (2, 3):
        samples = samples[:, ::-1]
    if orientation in (3, 4):
        samples = samples[::-1]
    return samples


def _check_image(image: Image) -> None:
    pixels, alpha = image.pixels, image.alpha
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"pixels must be (H, W, 1) or (H, W, 3), not {pixels.shape}")
    if pixels.dtype not in _PIXEL_DTYPES:
        raise ValueError(f"pixels must be uint8, uint16 or float32, not {pixels.dtype}")
    if alpha is not None and (alpha.shape != pixels.shape[:2] or alpha.dtype != pixels.dtype):
        raise ValueError(
            f"alpha must be {pixels.shape[:2]} {pixels.dtype} like the pixels, not {alpha.shape} {alpha.dtype}"
        )


def _write_png(temp: Path, image: Image) -> None:
    """8-bit stays 8-bit; 16-bit and float become 16-bit. Each band is converted and joined
    with its alpha on its own, so no full-size converted copy exists."""
    depth = np.dtype(np.uint8 if image.pixels.dtype == np.uint8 else np.uint16)

    def band(top: int, bottom: int) -> np.ndarray:
        pixels = _convert_depth(image.pixels[top:bottom], depth)
        if image.alpha is None:
            return pixels
        return np.dstack([pixels, _convert_depth(image.alpha[top:bottom], depth)])

    channels = image.channels + (image.alpha is not None)
    chunks = png_chunks(image.metadata, image.channels, image.width, image.height)
    with open(temp, "wb") as handle:
        write_png(handle, image.height, image.width, channels, depth, band, chunks)


def _encode(image: Image, extension: str, quality: int, path: Path) -> bytes | memoryview:
    """The encoded JPEG, BMP or WebP file with the image's metadata (BMP: a view of the
    encoder's buffer, not a copy)."""
    pixels = _convert_depth(image.pixels, np.dtype(np.uint8))
    keeps_alpha = _WRITE_KEEPS_ALPHA[extension] and image.alpha is not None
    alpha = _convert_depth(image.alpha, np.dtype(np.uint8)) if keeps_alpha else None
    if alpha is not None and pixels.shape[2] == 1:  # WebP has no grey+alpha mode
        pixels = np.repeat(pixels, 3, axis=2)
    samples = pixels[:, :, ::-1] if pixels.shape[2] == 3 else pixels[:, :, 0]
    if alpha is not None:
        samples = np.dstack([samples, alpha])
    params = {
        ".jpg": [cv2.IMWRITE_JPEG_QUALITY, quality],
        ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, quality],
        ".webp": [cv2.IMWRITE_WEBP_QUALITY, quality],
    }.get(extension, [])
    ok, encoded = cv2.imencode(extension, np.ascontiguousarray(samples), params)
    if not ok:
        raise ValueError(
            f"{_shown(path)}: OpenCV could not encode a {samples.shape} {samples.dtype} image as {extension}"
        )
    written_channels = samples.shape[2] - (alpha is not None) if samples.ndim == 3 else 1
    embed = {".jpg": jpeg_with_metadata, ".jpeg": jpeg_with_metadata, ".webp": webp_with_metadata}.get(extension)
    if embed is None:
        return memoryview(encoded.reshape(-1))
    return embed(encoded.tobytes(), image.metadata, written_channels, image.width, image.height)


def _convert_depth(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Rescale to ``dtype``'s full range, rounding (e.g. 16 -> 8 bit divides by 257)."""
    if array.dtype == dtype:
        return array
    scaled = array.astype(np.float64) * (dtype_scale(dtype) / dtype_scale(array.dtype))
    return np.clip(np.rint(scaled), 0, dtype_scale(dtype)).astype(dtype)


def _write_tiff(temp: Path, image: Image) -> None:
    grey = image.channels == 1
    if image.alpha is None:
        samples = image.pixels[:, :, 0] if grey else image.pixels
    else:
        samples = np.dstack([image.pixels, image.alpha])
    tifffile.imwrite(
        temp,
        samples,
        photometric="minisblack" if grey else "rgb",
        planarconfig="contig" if samples.ndim == 3 else None,
        extrasamples=["unassalpha"] if image.alpha is not None else None,
        compression="zlib",  # lossless, and read by every TIFF reader
        **tiff_options(image.metadata, image.channels, samples.nbytes),
    )
    append_tiff_exif(temp, image.metadata, image.width, image.height)

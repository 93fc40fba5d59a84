"""The band-by-band PNG encoder: files other decoders read back exactly, in bands of any
height, about the size of OpenCV's, built without a whole-image copy."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import pytest

from restore.io import Image, png_stream, write_image
from restore.io.png_stream import up_filter, write_png

SAMPLES = Path(__file__).resolve().parents[1] / "datasets" / "samples" / "clean"
RNG = np.random.default_rng(7)


def encoded(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    height, width, channels = samples.shape
    write_png(buffer, height, width, channels, samples.dtype, lambda top, bottom: samples[top:bottom])
    return buffer.getvalue()


def opencv_decode(data: bytes) -> np.ndarray:
    """OpenCV's (libpng's) reading, in our channel order (RGB/RGBA, not BGR/BGRA)."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded.ndim == 2:
        return decoded[:, :, None]
    return decoded[:, :, [2, 1, 0, 3][: decoded.shape[2]]]


def test_up_filter_inverts_by_adding_the_row_above() -> None:
    rows = RNG.integers(0, 256, (6, 12), dtype=np.uint8)
    above = RNG.integers(0, 256, 12, dtype=np.uint8)
    filtered = up_filter(rows, above)
    rebuilt = (np.cumsum(filtered.astype(np.int64), axis=0) + above) % 256
    np.testing.assert_array_equal(rebuilt, rows)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_every_layout_decodes_exactly_across_many_bands(
    channels: int, dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(png_stream, "BAND_BYTES", 1)  # one row per band: every band boundary is tested
    samples = RNG.integers(0, np.iinfo(dtype).max, (9, 7, channels), endpoint=True).astype(dtype)
    data = encoded(samples)
    if channels == 2:  # OpenCV turns grey + alpha into BGRA; Pillow keeps 8-bit LA as it is
        if dtype == np.uint8:
            np.testing.assert_array_equal(np.asarray(PIL.Image.open(io.BytesIO(data))), samples)
        decoded = opencv_decode(data)
        np.testing.assert_array_equal(decoded[:, :, 0], samples[:, :, 0])
        np.testing.assert_array_equal(decoded[:, :, 3], samples[:, :, 1])
        return
    np.testing.assert_array_equal(opencv_decode(data), samples)


def test_a_photo_is_about_the_size_opencv_writes() -> None:
    bgr = cv2.imread(str(SAMPLES / "astronaut.png"))
    ours = len(encoded(np.ascontiguousarray(bgr[:, :, ::-1])))
    opencv = len(cv2.imencode(".png", bgr)[1])
    assert ours < 1.1 * opencv, (ours, opencv)


def test_a_band_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="band 0:2"):
        write_png(io.BytesIO(), 2, 3, 3, np.dtype(np.uint8), lambda top, bottom: np.zeros((2, 3, 1), np.uint8))


def test_write_image_builds_one_band_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No band handed to the encoder is bigger than its budget: the whole-image copies the
    old encoder made (BGR order, depth conversion, alpha stacking) are gone."""
    monkeypatch.setattr(png_stream, "BAND_BYTES", 4 * 64 * 2 * 4)
    seen: list[int] = []
    original = png_stream.up_filter

    def spy(rows: np.ndarray, above: np.ndarray) -> np.ndarray:
        seen.append(rows.nbytes)
        return original(rows, above)

    monkeypatch.setattr(png_stream, "up_filter", spy)
    pixels = RNG.random((40, 64, 3), dtype=np.float32)
    write_image(tmp_path / "a.png", Image(pixels, RNG.random((40, 64), dtype=np.float32)))
    assert len(seen) == 10 and max(seen) <= png_stream.BAND_BYTES

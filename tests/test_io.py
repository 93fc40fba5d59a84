"""Image file reading and writing: exact round-trips, orientation, and every bad input."""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
import tifffile

from restore.io import Image, ImageReadError, read_image, resize_alpha, write_image

RNG = np.random.default_rng(1234)


def random_samples(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return RNG.random(shape, dtype=np.float32)
    return RNG.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def encode_png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()


# --- round-trips ------------------------------------------------------------------------

LOSSLESS_CASES = {
    "rgb8": ((7, 5, 3), np.uint8, False),
    "rgb16": ((7, 5, 3), np.uint16, False),
    "grey8": ((7, 5, 1), np.uint8, False),
    "grey16": ((7, 5, 1), np.uint16, False),
    "rgba8": ((7, 5, 3), np.uint8, True),
    "rgba16": ((7, 5, 3), np.uint16, True),
    "grey_alpha8": ((7, 5, 1), np.uint8, True),
    "grey_alpha16": ((7, 5, 1), np.uint16, True),
}


@pytest.mark.parametrize("extension", [".png", ".tif"])
@pytest.mark.parametrize("case", sorted(LOSSLESS_CASES))
def test_png_and_tiff_round_trip_exactly(tmp_path: Path, extension: str, case: str) -> None:
    shape, dtype, with_alpha = LOSSLESS_CASES[case]
    original = Image(random_samples(shape, dtype), random_samples(shape[:2], dtype) if with_alpha else None)
    path = tmp_path / f"image{extension}"
    write_image(path, original)
    loaded = read_image(path)
    assert loaded.pixels.dtype == dtype and loaded.pixels.shape == shape
    np.testing.assert_array_equal(loaded.pixels, original.pixels)
    if with_alpha:
        np.testing.assert_array_equal(loaded.alpha, original.alpha)
    else:
        assert loaded.alpha is None
    assert loaded.format == extension[1:]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_float_tiff_round_trips_exactly(tmp_path: Path, channels: int, with_alpha: bool) -> None:
    pixels = random_samples((6, 9, channels), np.float32) * 4 - 1  # float TIFF may leave [0, 1]
    original = Image(pixels, random_samples((6, 9), np.float32) if with_alpha else None)
    write_image(tmp_path / "float.tiff", original)
    loaded = read_image(tmp_path / "float.tiff")
    assert loaded.pixels.dtype == np.float32
    np.testing.assert_array_equal(loaded.pixels, original.pixels)
    if with_alpha:
        np.testing.assert_array_equal(loaded.alpha, original.alpha)


def smooth_rgb(height: int, width: int) -> np.ndarray:
    """A gradient: lossy codecs keep it close, unlike noise."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=2).astype(
        np.uint8
    )


def test_jpeg_round_trip_is_close(tmp_path: Path) -> None:
    original = smooth_rgb(32, 48)
    write_image(tmp_path / "a.jpg", Image(original), quality=95)
    loaded = read_image(tmp_path / "a.jpg")
    assert loaded.pixels.shape == (32, 48, 3) and loaded.pixels.dtype == np.uint8
    assert loaded.format == "jpg"
    assert np.abs(loaded.pixels.astype(int) - original).mean() < 3


def test_jpeg_quality_changes_the_file(tmp_path: Path) -> None:
    image = Image(random_samples((32, 32, 3), np.uint8))
    write_image(tmp_path / "high.jpg", image, quality=95)
    write_image(tmp_path / "low.jpg", image, quality=10)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size


@pytest.mark.parametrize("extension", [".jpg", ".bmp"])
def test_8bit_formats_get_scaled_16bit_and_no_alpha(tmp_path: Path, extension: str) -> None:
    pixels16 = smooth_rgb(16, 16).astype(np.uint16) * 257
    write_image(tmp_path / f"a{extension}", Image(pixels16, np.full((16, 16), 65535, np.uint16)), quality=100)
    loaded = read_image(tmp_path / f"a{extension}")
    assert loaded.pixels.dtype == np.uint8 and loaded.alpha is None
    error = np.abs(loaded.pixels.astype(int) - pixels16 // 257)
    assert error.max() == 0 if extension == ".bmp" else error.mean() < 3  # JPEG: codec noise only


def test_webp_keeps_alpha_and_stores_grey_as_rgb(tmp_path: Path) -> None:
    grey = smooth_rgb(16, 16)[:, :, :1].astype(np.uint16) * 257
    alpha = np.tile(np.array([0, 65535], np.uint16), (16, 8))
    write_image(tmp_path / "a.webp", Image(grey, alpha), quality=100)
    loaded = read_image(tmp_path / "a.webp")
    assert loaded.pixels.shape == (16, 16, 3) and loaded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(loaded.alpha, alpha // 257)


def test_float_png_is_written_as_16bit(tmp_path: Path) -> None:
    pixels = np.array([[[0.0], [0.5], [1.0], [1.5]]], np.float32)
    write_image(tmp_path / "a.png", Image(pixels))
    loaded = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(loaded.pixels[0, :, 0], [0, 32768, 65535, 65535])


def test_grey_alpha_png_written_by_pillow_reads_as_grey_alpha(tmp_path: Path) -> None:
    samples = random_samples((5, 4, 2), np.uint8)
    PIL.Image.fromarray(samples, "LA").save(tmp_path / "la.png")
    loaded = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(loaded.pixels[:, :, 0], samples[:, :, 0])
    np.testing.assert_array_equal(loaded.alpha, samples[:, :, 1])


def test_grey_alpha_png_we_write_is_a_valid_png_for_pillow(tmp_path: Path) -> None:
    grey, alpha = random_samples((5, 4, 1), np.uint8), random_samples((5, 4), np.uint8)
    write_image(tmp_path / "la.png", Image(grey, alpha))
    with PIL.Image.open(tmp_path / "la.png") as reread:
        assert reread.mode == "LA"
        np.testing.assert_array_equal(np.asarray(reread), np.dstack([grey, alpha]))


# --- inputs that must load correctly -----------------------------------------------------


def test_palette_png_loads_as_rgb_and_transparency_as_alpha(tmp_path: Path) -> None:
    rgb = smooth_rgb(8, 8)
    palette = PIL.Image.fromarray(rgb).quantize(16)
    palette.save(tmp_path / "p.png")
    palette.save(tmp_path / "p_transparent.png", transparency=0)
    expected = np.asarray(palette.convert("RGB"))
    loaded = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(loaded.pixels, expected)
    assert loaded.alpha is None
    transparent = read_image(tmp_path / "p_transparent.png")
    with PIL.Image.open(tmp_path / "p_transparent.png") as reference:
        expected_alpha = np.asarray(reference.convert("RGBA"))[:, :, 3]
    assert expected_alpha.min() == 0 and expected_alpha.max() == 255
    np.testing.assert_array_equal(transparent.pixels, expected)
    np.testing.assert_array_equal(transparent.alpha, expected_alpha)


def test_cmyk_jpeg_loads_as_rgb(tmp_path: Path) -> None:
    PIL.Image.fromarray(smooth_rgb(16, 16)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    loaded = read_image(tmp_path / "cmyk.jpg")
    with PIL.Image.open(tmp_path / "cmyk.jpg") as reference:
        expected = np.asarray(reference.convert("RGB")).astype(int)
    assert loaded.pixels.shape == (16, 16, 3)
    assert np.abs(loaded.pixels.astype(int) - expected).max() <= 2


@pytest.mark.parametrize("extension", [".png", ".jpg", ".bmp", ".webp", ".tif"])
def test_one_pixel_images_load(tmp_path: Path, extension: str) -> None:
    write_image(tmp_path / f"dot{extension}", Image(np.array([[[10, 200, 90]]], np.uint8)), quality=100)
    loaded = read_image(tmp_path / f"dot{extension}")
    assert loaded.pixels.shape == (1, 1, 3)
    assert np.abs(loaded.pixels.astype(int) - [10, 200, 90]).max() <= 8


def test_lzw_tiff_loads_in_rgb_order(tmp_path: Path) -> None:
    """OpenCV writes LZW, which tifffile cannot decode without imagecodecs: the libtiff
    fallback must still give RGB, not OpenCV's BGR."""
    rgb = random_samples((5, 7, 3), np.uint16)
    (tmp_path / "lzw.tif").write_bytes(cv2.imencode(".tif", rgb[:, :, ::-1].copy())[1].tobytes())
    loaded = read_image(tmp_path / "lzw.tif")
    np.testing.assert_array_equal(loaded.pixels, rgb)
    assert loaded.format == "tif"


def test_still_gif_loads_first_and_only_frame(tmp_path: Path) -> None:
    frame = PIL.Image.fromarray(smooth_rgb(6, 10)).quantize(8)
    frame.save(tmp_path / "still.gif")
    loaded = read_image(tmp_path / "still.gif")
    np.testing.assert_array_equal(loaded.pixels, np.asarray(frame.convert("RGB")))
    assert loaded.format == "gif"


def test_format_follows_content_not_name(tmp_path: Path) -> None:
    (tmp_path / "really_a_png.jpg").write_bytes(encode_png(smooth_rgb(4, 4)))
    assert read_image(tmp_path / "really_a_png.jpg").format == "png"


# --- orientation ---------------------------------------------------------------------------


def asymmetric_rgb() -> np.ndarray:
    """Blocky and asymmetric, so every flip/rotation differs and JPEG keeps it well."""
    image = np.zeros((24, 40, 3), np.uint8)
    image[:8, :16] = (255, 0, 0)
    image[8:, 24:] = (0, 0, 255)
    image[16:, :8] = (0, 255, 0)
    return image


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("file_format", ["JPEG", "WEBP"])
def test_exif_orientation_is_applied_like_pillow(tmp_path: Path, orientation: int, file_format: str) -> None:
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.{file_format.lower()}"
    PIL.Image.fromarray(asymmetric_rgb()).save(path, file_format, quality=100, exif=exif.tobytes())
    with PIL.Image.open(path) as stored:
        expected = np.asarray(PIL.ImageOps.exif_transpose(stored).convert("RGB")).astype(int)
    loaded = read_image(path)
    assert loaded.pixels.shape == expected.shape
    assert np.abs(loaded.pixels.astype(int) - expected).max() <= 16  # codec noise; a wrong turn is ~255


def test_tiff_orientation_tag_is_applied(tmp_path: Path) -> None:
    stored = asymmetric_rgb()
    tifffile.imwrite(tmp_path / "o6.tif", stored, extratags=[(274, "H", 1, 6, True)])
    np.testing.assert_array_equal(read_image(tmp_path / "o6.tif").pixels, np.rot90(stored, k=-1))


# --- metadata: ICC profile, EXIF, DPI ---------------------------------------------------------


@functools.cache  # once: the profile's header records when it was made, to the second
def srgb_profile() -> bytes:
    import PIL.ImageCms

    return PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile("sRGB")).tobytes()


def camera_exif(orientation: int = 1) -> PIL.Image.Exif:
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera maker"
    exif[0x011A], exif[0x011B], exif[0x0128] = 300.0, 300.0, 2
    exif.get_ifd(0x8769)[0x9003] = "2021:06:01 12:00:00"  # DateTimeOriginal, in the EXIF sub-IFD
    exif.get_ifd(0x8825)[0x0001] = "N"  # GPSLatitudeRef, in the GPS sub-IFD
    return exif


def written_metadata(path: Path) -> tuple[bytes | None, PIL.Image.Exif, tuple | None]:
    with PIL.Image.open(path) as stored:
        exif = stored.getexif()
        exif.get_ifd(0x8769), exif.get_ifd(0x8825)  # read now: a TIFF's sub-IFDs are read from the open file
        return stored.info.get("icc_profile"), exif, stored.info.get("dpi")


@pytest.mark.parametrize("output", [".jpg", ".png", ".tif", ".webp"])
@pytest.mark.parametrize("file_format", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_icc_exif_and_dpi_survive_every_output_format(tmp_path: Path, file_format: str, output: str) -> None:
    source = tmp_path / f"in.{file_format.lower()}"
    PIL.Image.fromarray(asymmetric_rgb()).save(source, file_format, exif=camera_exif().tobytes(),
                                               icc_profile=srgb_profile(), dpi=(300, 300))
    image = read_image(source)
    write_image(tmp_path / f"out{output}", image)
    profile, exif, dpi = written_metadata(tmp_path / f"out{output}")
    assert profile == srgb_profile()
    assert exif[0x010F] == "Camera maker"
    assert exif.get_ifd(0x8769)[0x9003] == "2021:06:01 12:00:00" and exif.get_ifd(0x8825)[0x0001] == "N"
    if output != ".webp":  # WebP has no resolution field: its DPI is EXIF's
        assert dpi == pytest.approx((300, 300), abs=0.01)
    assert (exif[0x011A], exif[0x011B]) == (300, 300)
    assert read_image(tmp_path / f"out{output}").metadata.dpi == (300, 300)


@pytest.mark.parametrize("file_format", ["JPEG", "WEBP", "TIFF"])
def test_applied_orientation_is_reset_to_1(tmp_path: Path, file_format: str) -> None:
    source = tmp_path / f"in.{file_format.lower()}"
    PIL.Image.fromarray(asymmetric_rgb()).save(source, file_format, quality=100, exif=camera_exif(orientation=6).tobytes())
    upright = read_image(source)
    assert upright.pixels.shape[:2] == (40, 24)
    write_image(tmp_path / "out.jpg", upright)
    assert written_metadata(tmp_path / "out.jpg")[1][0x0112] == 1
    assert read_image(tmp_path / "out.jpg").pixels.shape[:2] == (40, 24)  # a viewer turns it no further


def test_png_orientation_is_kept_as_its_pixels_are_read_as_stored(tmp_path: Path) -> None:
    PIL.Image.fromarray(asymmetric_rgb()).save(tmp_path / "in.png", exif=camera_exif(orientation=6).tobytes())
    write_image(tmp_path / "out.png", read_image(tmp_path / "in.png"))
    assert written_metadata(tmp_path / "out.png")[1][0x0112] == 6


def test_scaled_metadata_keeps_the_physical_size_and_updates_exif(tmp_path: Path) -> None:
    exif = camera_exif()
    exif.get_ifd(0x8769)[0xA002], exif.get_ifd(0x8769)[0xA003] = 40, 24  # PixelXDimension, PixelYDimension
    PIL.Image.fromarray(asymmetric_rgb()).save(tmp_path / "in.jpg", exif=exif.tobytes(), dpi=(300, 300))
    image = read_image(tmp_path / "in.jpg")
    big = cv2.resize(image.pixels, (160, 96))
    write_image(tmp_path / "out.jpg", Image(big, metadata=image.metadata.scaled(4, 4)))
    _, written, dpi = written_metadata(tmp_path / "out.jpg")
    assert dpi == (1200, 1200) and (written[0x011A], written[0x011B]) == (1200, 1200)
    assert (written.get_ifd(0x8769)[0xA002], written.get_ifd(0x8769)[0xA003]) == (160, 96)


def test_profile_of_another_colour_space_is_dropped(tmp_path: Path) -> None:
    """An RGB profile on a grey output would be refused or misapplied by colour-managed readers."""
    PIL.Image.fromarray(asymmetric_rgb()).save(tmp_path / "in.png", icc_profile=srgb_profile())
    image = read_image(tmp_path / "in.png")
    write_image(tmp_path / "grey.png", Image(image.pixels[:, :, :1], metadata=image.metadata))
    write_image(tmp_path / "rgb.png", image)
    assert written_metadata(tmp_path / "grey.png")[0] is None
    assert written_metadata(tmp_path / "rgb.png")[0] == srgb_profile()


def test_metadata_of_16bit_alpha_and_grey_outputs_keeps_their_samples(tmp_path: Path) -> None:
    metadata = read_image(_saved_with_metadata(tmp_path)).metadata
    for extension in (".png", ".tif"):
        for case in ("rgba16", "grey_alpha16", "grey8"):
            shape, dtype, with_alpha = LOSSLESS_CASES[case]
            original = Image(random_samples(shape, dtype), random_samples(shape[:2], dtype) if with_alpha else None,
                             metadata=metadata)
            write_image(tmp_path / f"{case}{extension}", original)
            loaded = read_image(tmp_path / f"{case}{extension}")
            np.testing.assert_array_equal(loaded.pixels, original.pixels)
            if with_alpha:
                np.testing.assert_array_equal(loaded.alpha, original.alpha)
            assert loaded.metadata.dpi == (300, 300)


def _saved_with_metadata(tmp_path: Path) -> Path:
    path = tmp_path / "source.jpg"
    PIL.Image.fromarray(asymmetric_rgb()).save(path, exif=camera_exif().tobytes(), dpi=(300, 300))
    return path


# --- bad inputs --------------------------------------------------------------------------


def read_error(path: Path, **kwargs: int) -> str:
    with pytest.raises(ImageReadError) as caught:
        read_image(path, **kwargs)
    message = str(caught.value)
    assert os.fsencode(path).decode("utf-8", "backslashreplace") in message
    return message


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty" in read_error(tmp_path / "empty.png")


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in read_error(tmp_path / "missing.png")


def test_text_named_png(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("these are not pixels\n")
    assert "not an image" in read_error(tmp_path / "notes.png")


def test_truncated_png(tmp_path: Path) -> None:
    data = encode_png(random_samples((64, 64, 3), np.uint8))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert "truncated" in read_error(tmp_path / "cut.png")


@pytest.mark.parametrize("kept", ["half", "all_but_end_marker"])
def test_truncated_jpeg(tmp_path: Path, kept: str) -> None:
    data = cv2.imencode(".jpg", random_samples((64, 64, 3), np.uint8))[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2] if kept == "half" else data[:-2])
    assert "truncated" in read_error(tmp_path / "cut.jpg")


def test_truncated_jpeg_is_caught_even_where_opencv_decodes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV 4.x returns a grey-filled image for a truncated JPEG instead of failing."""
    data = cv2.imencode(".jpg", random_samples((16, 16, 3), np.uint8))[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[:-2])
    monkeypatch.setattr(cv2, "imdecode", lambda *args: np.full((16, 16, 3), 128, np.uint8))
    assert "truncated" in read_error(tmp_path / "cut.jpg")


def test_jpeg_with_thumbnail_and_trailing_bytes_is_not_truncated(tmp_path: Path) -> None:
    thumbnail = cv2.imencode(".jpg", random_samples((8, 8, 3), np.uint8))[1].tobytes()
    main = cv2.imencode(".jpg", smooth_rgb(16, 16)[:, :, ::-1])[1].tobytes()
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumbnail) + 2) + thumbnail  # a thumbnail, as in EXIF
    complete = main[:2] + app1 + main[2:] + b"\x00" * 7  # some cameras pad after the end marker
    (tmp_path / "thumb.jpg").write_bytes(complete)
    assert read_image(tmp_path / "thumb.jpg").pixels.shape == (16, 16, 3)
    (tmp_path / "thumb_cut.jpg").write_bytes(main[:2] + app1 + main[2:-40])
    assert "truncated" in read_error(tmp_path / "thumb_cut.jpg")


def test_truncated_tiff(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, random_samples((64, 64, 3), np.uint8))
    (tmp_path / "cut.tif").write_bytes(buffer.getvalue()[:2000])
    assert "truncated" in read_error(tmp_path / "cut.tif")


def test_multi_page_tiff_is_refused_but_a_reduced_preview_is_not(tmp_path: Path) -> None:
    stack = random_samples((3, 16, 16), np.uint8)
    with tifffile.TiffWriter(tmp_path / "stack.tif") as writer:
        for page in stack:
            writer.write(page)
    assert "multi-page" in read_error(tmp_path / "stack.tif")
    with tifffile.TiffWriter(tmp_path / "preview.tif") as writer:
        writer.write(stack[0])
        writer.write(stack[1][:8, :8], subfiletype=1)  # a reduced-resolution preview page
    assert read_image(tmp_path / "preview.tif").pixels.shape == (16, 16, 1)


def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read_image, pipe)
        try:
            error = reading.exception(timeout=20)
        except TimeoutError:
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))  # lets the blocked reader finish
            pytest.fail("read_image waited for a writer on a named pipe")
    assert isinstance(error, ImageReadError) and "not a regular file but a named pipe" in str(error)


@pytest.mark.parametrize("target, kind", [("/dev/zero", "character device"), (".", "folder")])
def test_devices_and_folders_are_not_read(tmp_path: Path, target: str, kind: str) -> None:
    os.symlink(target, tmp_path / "x.png")  # /dev/zero would never end
    assert f"not a regular file but a {kind}" in read_error(tmp_path / "x.png")


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid small PNG whose IHDR is patched to claim ``width`` x ``height``."""
    data = bytearray(encode_png(np.zeros((2, 2, 3), np.uint8)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(png_claiming_size(50000, 50000))
    message = read_error(tmp_path / "bomb.png")
    assert "50000x50000" in message and str(20000 * 20000) in message and "--max-pixels" in message


def test_pillow_limit_is_lifted_only_while_restore_decodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """read_image's own max_pixels decides, also in worker threads; the rest of the process
    keeps Pillow's limit (here 10 pixels, so Pillow itself refuses a 64x64 image)."""
    import warnings

    assert PIL.Image.MAX_IMAGE_PIXELS is not None  # importing restore left Pillow's default alone
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 10)
    rgb = random_samples((64, 64, 3), np.uint8)
    PIL.Image.fromarray(rgb).save(tmp_path / "a.png")
    PIL.Image.fromarray(rgb).quantize(8).save(tmp_path / "a.gif")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
        with ThreadPoolExecutor(4) as pool:
            images = list(pool.map(read_image, [tmp_path / "a.png", tmp_path / "a.gif"] * 8))
    assert all(image.pixels.shape == (64, 64, 3) for image in images)
    assert PIL.Image.MAX_IMAGE_PIXELS == 10
    with pytest.raises(PIL.Image.DecompressionBombError):
        PIL.Image.open(tmp_path / "a.png")
    assert "64x64" in read_error(tmp_path / "a.png", max_pixels=4095)


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    write_image(tmp_path / "a.tif", Image(np.zeros((10, 10, 1), np.uint8)))
    assert "10x10" in read_error(tmp_path / "a.tif", max_pixels=99)
    assert read_image(tmp_path / "a.tif", max_pixels=100).pixels.shape == (10, 10, 1)


def test_more_than_four_channels_is_unsupported(tmp_path: Path) -> None:
    samples = random_samples((4, 4, 5), np.uint8)
    tifffile.imwrite(tmp_path / "five.tif", samples, photometric="rgb", planarconfig="contig")
    assert "channel count 5" in read_error(tmp_path / "five.tif")


def test_animated_gif_is_refused_with_a_reason(tmp_path: Path) -> None:
    frames = [PIL.Image.fromarray(random_samples((8, 8, 3), np.uint8)).quantize(8) for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    message = read_error(tmp_path / "anim.gif")
    assert "animated" in message and "3 frames" in message


def test_unsupported_format_is_named(tmp_path: Path) -> None:
    PIL.Image.fromarray(smooth_rgb(16, 16)).save(tmp_path / "icon.ico")
    assert "unsupported format ICO" in read_error(tmp_path / "icon.ico")


def test_writing_an_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.gif"):
        write_image(tmp_path / "a.gif", Image(np.zeros((2, 2, 3), np.uint8)))


# --- file names and atomicity ---------------------------------------------------------------


def test_non_utf8_file_name(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9.png"  # Latin-1 byte, invalid as UTF-8
    pixels = random_samples((3, 4, 3), np.uint8)
    try:
        write_image(name, Image(pixels))
    except OSError as error:
        pytest.skip(f"file system refuses non-UTF-8 names: {error}")
    assert b"caf\xe9.png" in os.listdir(os.fsencode(tmp_path))
    np.testing.assert_array_equal(read_image(name).pixels, pixels)
    os.remove(name)
    assert "caf\\xe9.png" in read_error(Path(os.fsdecode(name)))  # printable, not a crash


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.png"
    write_image(target, Image(np.zeros((2, 2, 3), np.uint8)))
    write_image(target, Image(np.full((2, 2, 3), 7, np.uint8)))
    assert os.listdir(tmp_path / "out") == ["a.png"]
    assert (read_image(target).pixels == 7).all()


def test_failed_encode_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    write_image(target, Image(np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(ValueError):
        write_image(target, Image(np.zeros((2, 2, 3), np.int32)))
    assert os.listdir(tmp_path) == ["a.png"]
    assert read_image(target).pixels.shape == (2, 2, 3)


# --- alpha resizing --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_resize_alpha_keeps_dtype_and_range(dtype: type) -> None:
    top = 1.0 if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max
    alpha = np.zeros((8, 8), dtype)
    alpha[:, 4:] = top  # a hard edge: cubic overshoots on both sides of it
    resized = resize_alpha(alpha, 16, 24)
    assert resized.shape == (16, 24) and resized.dtype == dtype
    assert resized.min() == 0 and resized.max() == top
    assert resized[:, 0].max() == 0 and resized[:, -1].min() == top



def test_jpeg_scans_are_counted_segment_by_segment(tmp_path: Path) -> None:
    """A comment full of start-of-scan bytes is no scan: only real scans count to the limit."""
    pixels = np.random.default_rng(4).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    path = tmp_path / "commented.jpg"
    PIL.Image.fromarray(pixels).save(path, "JPEG", progressive=True, comment=b"\xff\xda" * 1000)
    assert read_image(path).pixels.shape == (40, 48, 3)

"""Property-based input fuzzing: any image shape, dtype, channel count and tiling, and
damaged bytes in every supported file format.

Small examples only (sides of 1-64 pixels, a few dozen examples per property) so the
file stays fast; hypothesis shrinks any failure to the smallest input that shows it."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from restore.api import TaskProcessor
from restore.engine.tiling import tiled_forward
from restore.io.image import Image, ImageReadError, read_image, write_image
from restore.model import Restorer
from tiny_weights import write_tiny_denoise_weights

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RADIUS = 2  # receptive-field radius of local_net: two 3x3 convolutions

sides = st.integers(1, 64)
dtypes = st.sampled_from([np.uint8, np.uint16, np.float32])


@st.composite
def tilings(draw: st.DrawFn) -> tuple[int, int]:
    """(tile, overlap) with the overlap's outer quarter covering the receptive field, which
    is when tiling is exact (see restore.engine.tiling)."""
    tile = draw(st.integers(16, 48))
    return tile, draw(st.integers(4 * RADIUS, tile // 2))


def local_net(in_channels: int, out_channels: int, scale: int = 1, multiple: int = 1, seed: int = 0) -> nn.Module:
    """A random network that only looks RADIUS input pixels around each output pixel;
    ``scale`` 2 adds a pixel-shuffle head, ``multiple`` the size granularity a U-Net has."""
    torch.manual_seed(seed)
    head = nn.Conv2d(8, out_channels * scale**2, 3, padding=1)
    layers = [nn.Conv2d(in_channels, 8, 3, padding=1), nn.Tanh(), head]
    net = nn.Sequential(*layers, nn.PixelShuffle(scale)).eval()
    net.size_multiple = multiple
    return net


def random_pixels(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def assert_close(tiled: np.ndarray, whole: np.ndarray) -> None:
    """Equal up to float rounding: 1e-5, or one step of an integer dtype (a value at .5
    may round either way)."""
    assert tiled.shape == whole.shape and tiled.dtype == whole.dtype
    tolerance = 1e-5 if tiled.dtype.kind == "f" else 1
    assert np.abs(tiled.astype(np.float64) - whole.astype(np.float64)).max() <= tolerance


# -- the tiling engine ------------------------------------------------------------------------


@FUZZ
@given(height=sides, width=sides, channels=st.sampled_from([1, 3, 4]), tiling=tilings(),
       scale=st.sampled_from([1, 2]), multiple=st.sampled_from([1, 4, 8]), batch_size=st.integers(1, 4))
def test_tiled_equals_untiled(height: int, width: int, channels: int, tiling: tuple[int, int], scale: int,
                              multiple: int, batch_size: int) -> None:
    tile, overlap = tiling
    net = local_net(channels, channels, scale)
    image = torch.rand(1, channels, height, width, generator=torch.Generator().manual_seed(height * 100 + width))
    whole = tiled_forward(net, image, scale=scale, multiple=multiple)
    tiled = tiled_forward(net, image, tile=tile, overlap=overlap, scale=scale, multiple=multiple, batch_size=batch_size)
    assert tiled.shape == whole.shape == (1, channels, height * scale, width * scale)
    assert tiled.dtype == torch.float32
    assert (tiled - whole).abs().max() <= 1e-5


# -- arrays through the Restorer (denoise: image + noise-level map in, image out) -----------------


@FUZZ
@given(height=sides, width=sides, dtype=dtypes, grey=st.booleans(), flat=st.booleans(), tiling=tilings(),
       multiple=st.sampled_from([1, 4]))
def test_restorer_keeps_layout_and_dtype_and_tiles_invisibly(
    height: int, width: int, dtype: type, grey: bool, flat: bool, tiling: tuple[int, int], multiple: int
) -> None:
    """Grey arrays may come as ``(H, W)``: they go through the colour model and come back
    grey, in the same layout. Flat images exercise ``--sigma auto`` with no detail at all."""
    shape = (height, width) if grey else (height, width, 3)
    pixels = random_pixels(np.random.default_rng(height * 100 + width), shape, dtype)
    if flat:
        pixels[...] = pixels.flat[0]
    net = local_net(4, 3, multiple=multiple)
    metadata = {"task": "denoise", "network": {"in_channels": 3}}
    whole = Restorer(net, metadata, device="cpu")(pixels, sigma="auto")
    tile, overlap = tiling
    tiled = Restorer(net, metadata, device="cpu", tile=tile, tile_overlap=overlap)(pixels, sigma="auto")
    assert whole.shape == pixels.shape and whole.dtype == pixels.dtype
    if dtype == np.float32:
        assert 0 <= whole.min() and whole.max() <= 1
    assert_close(tiled, whole)


# -- decoded images through the task processor and the write path --------------------------------


@pytest.fixture(scope="module")
def processors(tmp_path_factory: pytest.TempPathFactory) -> dict[int, TaskProcessor]:
    """The tiny real denoise U-Net from a weights file, untiled (0) and with 16-px tiles."""
    weights = write_tiny_denoise_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")
    return {tile: TaskProcessor("denoise", weights=str(weights), device="cpu", tile=tile, tile_overlap=8, sigma=25.0)
            for tile in (0, 16)}


@FUZZ
@given(height=sides, width=sides, dtype=dtypes, channels=st.sampled_from([1, 2, 3, 4]),
       tile=st.sampled_from([0, 16]), extension=st.sampled_from([".png", ".tif"]))
def test_processed_images_keep_size_depth_and_alpha_through_the_file(
    processors: dict[int, TaskProcessor], tmp_path_factory: pytest.TempPathFactory,
    height: int, width: int, dtype: type, channels: int, tile: int, extension: str
) -> None:
    """``channels`` as in a file: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA."""
    rng = np.random.default_rng(height * 100 + width)
    colour = 1 if channels <= 2 else 3
    alpha = random_pixels(rng, (height, width), dtype) if channels in (2, 4) else None
    image = Image(random_pixels(rng, (height, width, colour), dtype), alpha, format=extension[1:])
    output, info = processors[tile](image)
    assert output.pixels.shape == image.pixels.shape and output.pixels.dtype == image.pixels.dtype
    assert info["sigma"] == 25.0
    if alpha is None:
        assert output.alpha is None
    else:
        np.testing.assert_array_equal(output.alpha, alpha)  # alpha is not the network's business

    path = tmp_path_factory.mktemp("written") / f"out{extension}"
    write_image(path, output)
    reread = read_image(path)
    # PNG holds 8 or 16 bits, so float is written as 16-bit; TIFF keeps float32
    stored = np.dtype(np.uint16) if extension == ".png" and dtype == np.float32 else np.dtype(dtype)
    assert reread.pixels.shape == output.pixels.shape and reread.pixels.dtype == stored
    assert (reread.alpha is None) == (alpha is None)
    if stored == output.pixels.dtype:
        np.testing.assert_array_equal(reread.pixels, output.pixels)
        if alpha is not None:
            np.testing.assert_array_equal(reread.alpha, alpha)



# -- damaged files --------------------------------------------------------------------------------


def pillow_bytes(image: PIL.Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, file_format, **options)
    return buffer.getvalue()


def tiff_bytes(samples: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, samples, **options)
    return buffer.getvalue()


def valid_files() -> dict[str, bytes]:
    """One small file per format and variant the reader handles differently."""
    rgba = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (12, 10, 4), dtype=np.uint8), (0, 0), 1)
    rgb = PIL.Image.fromarray(rgba[:, :, :3])
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # orientation: the reader parses EXIF
    return {
        "png": cv2.imencode(".png", rgba)[1].tobytes(),
        "png16": cv2.imencode(".png", rgba[:, :, :3].astype(np.uint16) * 257)[1].tobytes(),
        "palette.png": pillow_bytes(rgb.quantize(8), "PNG", transparency=0),
        "jpg": pillow_bytes(rgb, "JPEG", exif=exif.tobytes()),
        "cmyk.jpg": pillow_bytes(rgb.convert("CMYK"), "JPEG"),
        "bmp": cv2.imencode(".bmp", rgba[:, :, :3])[1].tobytes(),
        "webp": pillow_bytes(PIL.Image.fromarray(rgba), "WEBP", exif=exif.tobytes()),
        "gif": pillow_bytes(rgb.quantize(8), "GIF", transparency=0),
        "rgba.tif": tiff_bytes(rgba, photometric="rgb", extrasamples=["unassalpha"]),
        "zlib.tif": tiff_bytes(rgba[:, :, 0], compression="zlib", extratags=[(274, "H", 1, 6, True)]),
        "lzw.tif": cv2.imencode(".tif", rgba[:, :, :3])[1].tobytes(),  # decoded by OpenCV's libtiff
    }


VALID_FILES = valid_files()


@st.composite
def damaged_files(draw: st.DrawFn) -> bytes:
    """A valid file with a few bytes overwritten, inserted or the rest cut off."""
    data = bytearray(VALID_FILES[draw(st.sampled_from(sorted(VALID_FILES)))])
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        change = draw(st.sampled_from(["overwrite", "insert", "cut"]))
        if change == "cut":
            del data[max(position, 4):]
        else:
            new = draw(st.binary(min_size=1, max_size=4))
            data[position : position + (len(new) if change == "overwrite" else 0)] = new
    return bytes(data)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("damaged") / "file"


@settings(FUZZ, max_examples=300)
@given(data=damaged_files())
def test_damaged_files_are_read_or_refused_never_crash(scratch: Path, data: bytes) -> None:
    """Decoders fail on damaged bytes with all sorts of exception types (IndexError,
    zlib.error, struct.error...); the reader must turn each into ImageReadError, which the
    batch reports for that one file."""
    scratch.write_bytes(data)
    try:
        image = read_image(scratch)
    except ImageReadError as error:
        assert str(scratch) in str(error)
        return
    assert image.pixels.ndim == 3 and image.channels in (1, 3)
    assert image.pixels.dtype in (np.uint8, np.uint16, np.float32)

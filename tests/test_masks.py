"""Inpainting masks the way users have them: --masks DIR, sidecars, alpha, a colour."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from restore.io.image import Image
from restore.tasks.masks import (
    MaskError,
    MaskOptions,
    alpha_hole,
    binarise,
    colour_hole,
    dilate,
    find_mask,
    is_sidecar,
    read_mask,
)


def box_mask(height: int, width: int, top: int, left: int, size: int, value: int = 255) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + size, left : left + size] = value
    return mask


def test_binarise_threshold_is_127_on_the_8bit_scale() -> None:
    assert binarise(np.array([[127, 128]], np.uint8)).tolist() == [[False, True]]
    assert binarise(np.array([[127 * 257, 128 * 257]], np.uint16)).tolist() == [[False, True]]
    colour = np.array([[[200, 0, 0], [100, 100, 100]]], np.uint8)  # any channel counts
    assert binarise(colour).tolist() == [[True, False]]
    white_on_transparent = np.full((1, 2, 3), 255, np.uint8)
    assert binarise(white_on_transparent, np.array([[255, 0]], np.uint8)).tolist() == [[True, False]]


def test_read_mask_file(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "m.png"), box_mask(8, 10, 2, 3, 4, value=200))
    hole = read_mask(tmp_path / "m.png")
    assert hole.shape == (8, 10) and hole.dtype == bool and hole.sum() == 16


def test_alpha_transparent_is_hole() -> None:
    assert alpha_hole(np.array([[0, 127, 128, 255]], np.uint8)).tolist() == [[True, True, False, False]]
    assert alpha_hole(np.array([[0, 65535]], np.uint16)).tolist() == [[True, False]]


def test_colour_with_tolerance_8bit_16bit_and_grey() -> None:
    pixels = np.array([[[255, 0, 255], [250, 5, 250], [200, 0, 255]]], np.uint8)
    assert colour_hole(pixels, (255, 0, 255), 0).tolist() == [[True, False, False]]
    assert colour_hole(pixels, (255, 0, 255), 10).tolist() == [[True, True, False]]
    assert colour_hole(pixels.astype(np.uint16) * 257, (255, 0, 255), 10).tolist() == [[True, True, False]]
    grey = np.array([[[0], [255]]], np.uint8)
    assert colour_hole(grey, (255, 255, 255), 0).tolist() == [[False, True]]


def test_dilate_grows_by_n_pixels() -> None:
    hole = np.zeros((11, 11), bool)
    hole[5, 5] = True
    grown = dilate(hole, 2)
    assert grown[5, 3] and grown[3, 5] and not grown[5, 2] and not grown[3, 3]  # a disc, not a square
    assert dilate(hole, 0) is hole


def test_sidecars_are_recognised_only_next_to_their_image(tmp_path: Path) -> None:
    names = ("photo.jpg", "photo_mask.png", "photo_mask001.png", "holiday_masks.png", "a_mask_b.png",
             "a_mask_b_mask.png")
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert is_sidecar(tmp_path / "photo_mask.png")
    assert is_sidecar(tmp_path / "photo_mask001.png")
    assert not is_sidecar(tmp_path / "holiday_masks.png")  # no image called "holiday"
    assert not is_sidecar(tmp_path / "photo.jpg")
    assert not is_sidecar(tmp_path / "a_mask_b.png")  # no image "a"
    assert is_sidecar(tmp_path / "a_mask_b_mask.png")  # the sidecar of a_mask_b.png


@pytest.fixture
def image_file(tmp_path: Path) -> tuple[Image, Path]:
    pixels = np.random.default_rng(0).integers(0, 200, (12, 16, 3), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 255)
    folder = tmp_path / "in" / "sub"
    folder.mkdir(parents=True)
    path = folder / "a.png"
    cv2.imwrite(str(path), pixels[:, :, ::-1])
    alpha = np.full((12, 16), 255, np.uint8)
    alpha[11, 15] = 0
    return Image(pixels, alpha, "png"), path


def test_sources_are_tried_in_order(image_file: tuple[Image, Path], tmp_path: Path) -> None:
    image, path = image_file
    relative = Path("sub/a.png")
    options = MaskOptions(masks_dir=tmp_path / "masks", mask_color=(255, 0, 255))
    found = find_mask(image, path, relative, options)
    assert found.source == "alpha" and found.from_alpha and found.hole.sum() == 1 and found.hole[11, 15]

    no_alpha = Image(image.pixels, None)
    found = find_mask(no_alpha, path, relative, options)
    assert found.source.startswith("colour") and found.hole.sum() == 1 and found.hole[0, 0]

    cv2.imwrite(str(path.with_name("a_mask1.png")), box_mask(12, 16, 0, 0, 2))
    cv2.imwrite(str(path.with_name("a_mask2.png")), box_mask(12, 16, 8, 8, 2))
    found = find_mask(image, path, relative, options)
    assert found.hole.sum() == 8 and "a_mask1.png" in found.source and "a_mask2.png" in found.source  # united

    cv2.imwrite(str(path.with_name("a_mask.png")), box_mask(12, 16, 4, 4, 3))
    assert find_mask(image, path, relative, options).hole.sum() == 9  # the exact name wins

    (tmp_path / "masks" / "sub").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "masks" / "sub" / "a.bmp"), box_mask(12, 16, 1, 1, 5))
    found = find_mask(image, path, relative, options)
    assert found.hole.sum() == 25 and found.source.endswith("masks/sub/a.bmp")

    assert find_mask(no_alpha, path, relative, MaskOptions(dilate=1)).hole.sum() > 9  # dilated after reading


def test_no_mask_anywhere_is_none(image_file: tuple[Image, Path]) -> None:
    image, path = image_file
    assert find_mask(Image(image.pixels, None), path, Path("sub/a.png"), MaskOptions()) is None
    opaque = Image(image.pixels, np.full((12, 16), 255, np.uint8))
    assert find_mask(opaque, path, Path("sub/a.png"), MaskOptions()) is None  # opaque alpha is no mask


def test_wrong_size_names_both_sizes(image_file: tuple[Image, Path]) -> None:
    image, path = image_file
    cv2.imwrite(str(path.with_name("a_mask.png")), box_mask(20, 30, 0, 0, 4))
    with pytest.raises(MaskError, match=r"a_mask\.png is 30x20 but the image is 16x12"):
        find_mask(image, path, Path("sub/a.png"), MaskOptions())


def test_unreadable_mask_names_the_mask(image_file: tuple[Image, Path]) -> None:
    image, path = image_file
    path.with_name("a_mask.png").write_bytes(b"not a png")
    with pytest.raises(MaskError, match="cannot use mask .*a_mask.png"):
        find_mask(image, path, Path("sub/a.png"), MaskOptions())

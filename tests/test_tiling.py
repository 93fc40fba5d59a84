"""Tiled inference: tiles must be invisible in the result."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from restore.engine import tiling
from restore.engine.tiling import (
    auto_batch_size,
    auto_tile_size,
    stream_tiles,
    tile_blend_weights,
    tile_starts,
    tiled_forward,
)


def gradient_image(channels: int, height: int, width: int) -> torch.Tensor:
    y = torch.linspace(0, 1, height).view(1, 1, height, 1)
    x = torch.linspace(0, 1, width).view(1, 1, 1, width)
    return torch.cat([(y * (c + 1) + x * (channels - c)) / (channels + 1) for c in range(channels)], dim=1)


def identity_conv(channels: int) -> nn.Module:
    """A 3x3 conv that copies its input: its tile borders see replicated pixels, so a
    tiling bug shows up as a value that is not the input's."""
    conv = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate", bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        for c in range(channels):
            conv.weight[c, c, 1, 1] = 1
    return conv


def random_net(channels: int, seed: int = 0) -> nn.Module:
    """Two 3x3 convs: receptive-field radius 2, well inside a quarter of the overlap."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, channels, 3, padding=1)).eval()


@pytest.mark.parametrize("model", [nn.Identity(), identity_conv(3)], ids=["identity", "identity_conv"])
@pytest.mark.parametrize("make_image", [lambda: torch.full((1, 3, 45, 37), 0.3), lambda: gradient_image(3, 45, 37)])
def test_identity_models_reproduce_the_input(model: nn.Module, make_image) -> None:
    image = make_image()
    result = tiled_forward(model, image, tile=16, overlap=6, batch_size=3)
    assert result.shape == image.shape and result.dtype == torch.float32
    assert (result - image).abs().max() < 1e-4


def test_upscaling_model_tiled_equals_untiled() -> None:
    model = nn.Upsample(scale_factor=2, mode="nearest")
    image = gradient_image(3, 30, 41)
    whole = tiled_forward(model, image, scale=2)
    tiled = tiled_forward(model, image, tile=16, overlap=8, scale=2)
    assert tiled.shape == (1, 3, 60, 82)
    assert (tiled - whole).abs().max() < 1e-4


@pytest.mark.parametrize("multiple", [1, 4])
def test_receptive_field_within_overlap_tiled_equals_untiled(multiple: int) -> None:
    model = random_net(3)
    image = torch.rand(1, 3, 50, 43, generator=torch.Generator().manual_seed(1))
    whole = tiled_forward(model, image, multiple=multiple)
    tiled = tiled_forward(model, image, tile=20, overlap=8, multiple=multiple, batch_size=2)
    assert (tiled - whole).abs().max() < 1e-5


def test_plain_hard_cut_tiling_would_differ() -> None:
    """Guards the test above: without overlap the same net does show tile seams."""
    model = random_net(3)
    image = torch.rand(1, 3, 50, 43, generator=torch.Generator().manual_seed(1))
    whole = tiled_forward(model, image)
    assert (tiled_forward(model, image, tile=20, overlap=0) - whole).abs().max() > 1e-3


def test_upscaling_conv_net_tiled_equals_untiled() -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.PixelShuffle(2), nn.Conv2d(1, 1, 3, padding=1)).eval()
    image = torch.rand(1, 1, 33, 27)
    whole = tiled_forward(model, image, scale=2)
    tiled = tiled_forward(model, image, tile=16, overlap=12, scale=2)
    assert (tiled - whole).abs().max() < 1e-5


class RequiresMultiple(nn.Module):
    """Refuses sizes the network could not take, like a U-Net with ``multiple`` = 8."""

    def __init__(self, multiple: int) -> None:
        super().__init__()
        self.multiple = multiple

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        assert tiles.shape[2] % self.multiple == 0 and tiles.shape[3] % self.multiple == 0, tiles.shape
        return tiles * 2


@pytest.mark.parametrize(
    "height, width, tile",
    [(45, 37, 16), (10, 12, 64), (1, 40, 16), (40, 1, 16), (1, 1, 16), (3, 50, 0)],
    ids=["not_multiple", "smaller_than_tile", "one_row", "one_column", "one_pixel", "whole"],
)
def test_odd_sizes_are_padded_for_the_model_and_cropped_back(height: int, width: int, tile: int) -> None:
    image = gradient_image(2, height, width)
    result = tiled_forward(RequiresMultiple(8), image, tile=tile, overlap=4, multiple=8)
    assert result.shape == image.shape
    assert (result - 2 * image).abs().max() < 1e-6


@pytest.mark.parametrize("length, tile, overlap", [(100, 32, 8), (33, 32, 8), (64, 16, 15), (50, 10, 0), (7, 32, 4)])
def test_tiles_cover_the_axis_with_at_least_the_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    assert all(nxt - prev <= size - overlap or size == length for prev, nxt in zip(starts, starts[1:]))


@pytest.mark.parametrize(
    "length, tile, overlap, scale", [(100, 32, 8, 1), (33, 32, 8, 2), (64, 16, 15, 1), (45, 12, 5, 3)]
)
def test_blend_weight_sum_is_at_least_one_everywhere(length: int, tile: int, overlap: int, scale: int) -> None:
    total = torch.zeros(length * scale)
    for start in tile_starts(length, tile, overlap):
        total[start * scale : (start + tile) * scale] += tile_blend_weights(start, tile, length, overlap, scale)
    assert total.min() >= 1 - 1e-6


def test_blend_weights_are_zero_at_inner_edges_and_one_at_image_borders() -> None:
    inner = tile_blend_weights(16, 32, 100, 16, 1)
    assert inner[0] == 0 and inner[-1] == 0 and inner[16] == 1
    first = tile_blend_weights(0, 32, 100, 16, 1)
    assert first[0] == 1 and first[-1] == 0


def test_tiles_go_to_the_device_in_batches_and_come_back() -> None:
    seen: list[tuple[int, ...]] = []

    def model(tiles: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(tiles.shape))
        return tiles.to(torch.bfloat16)  # what an autocast model may return

    result = tiled_forward(model, torch.rand(1, 3, 40, 40), tile=16, overlap=4, batch_size=4)
    assert result.dtype == torch.float32 and result.device.type == "cpu"
    assert seen == [(4, 3, 16, 16), (4, 3, 16, 16), (1, 3, 16, 16)]  # starts 0, 12, 24: 3 x 3 tiles


@pytest.mark.parametrize("scale", [1, 2])
def test_blocks_leave_as_soon_as_final_and_cover_the_output_once(scale: int) -> None:
    """What keeps memory flat on wide images: the output of a tile's column leaves before
    the next tile of the row is read, so no full-width band of a tile's height is held."""
    image = gradient_image(2, 37, 70)
    events: list[str] = []
    coverage = torch.zeros(37 * scale, 70 * scale)

    def read(top: int, bottom: int, left: int, right: int) -> torch.Tensor:
        events.append("read")
        return image[:, :, top:bottom, left:right]

    def sink(top: int, left: int, block: torch.Tensor) -> None:
        events.append("block")
        coverage[top : top + block.shape[2], left : left + block.shape[3]] += 1

    model = nn.Upsample(scale_factor=scale) if scale > 1 else nn.Identity()
    stream_tiles(model, read, 37, 70, sink, tile=16, overlap=4, scale=scale, batch_size=1)
    assert torch.equal(coverage, torch.ones_like(coverage))
    assert events[:4] == ["read", "block", "read", "block"]  # row 0: tile, its segment, next tile, ...
    assert events.count("read") == events.count("block") == 3 * 6  # starts 0, 12, 21 x 0, 12, 24, 36, 48, 54


@pytest.mark.parametrize("batch_size", [1, 4])
def test_progress_counts_the_tiles_done(batch_size: int) -> None:
    reports: list[tuple[int, int, str]] = []
    stream_tiles(nn.Identity(), lambda top, bottom, left, right: torch.rand(1, 1, bottom - top, right - left),
                 37, 70, lambda *_: None, tile=16, overlap=4, batch_size=batch_size,
                 progress=lambda done, total, unit: reports.append((done, total, unit)))
    done = [report[0] for report in reports]
    assert {report[1:] for report in reports} == {(18, "tile")}  # 3 x 6 tiles, as above
    assert done == sorted(done) and done[-1] == 18 and len(done) == -(-18 // batch_size)


@pytest.mark.parametrize(("height", "batch_size", "expected"), [(37, 1, 2), (37, 4, 2), (16, 1, 0)])
def test_free_memory_goes_back_after_each_tile_row_but_the_last(
    monkeypatch: pytest.MonkeyPatch, height: int, batch_size: int, expected: int
) -> None:
    """restore/engine/heap.py: between tile rows, not after a one-row image (a folder of
    small images would only pay for re-faulting the pages)."""
    calls: list[int] = []
    monkeypatch.setattr(tiling, "release_free_memory", lambda: calls.append(1))
    stream_tiles(nn.Identity(), lambda top, bottom, left, right: torch.rand(1, 1, bottom - top, right - left),
                 height, 40, lambda *_: None, tile=16, overlap=4, batch_size=batch_size)
    assert len(calls) == expected  # 37 rows: tile rows at 0, 12, 21


def test_autocast_wraps_every_forward_pass() -> None:
    entered: list[bool] = []

    @contextlib.contextmanager
    def autocast() -> Iterator[None]:
        entered.append(torch.is_inference_mode_enabled())
        yield

    tiled_forward(nn.Identity(), torch.rand(1, 1, 20, 20), tile=8, overlap=2, batch_size=100, autocast=autocast)
    assert entered == [True]


def test_wrong_model_scale_is_reported() -> None:
    with pytest.raises(ValueError, match="scale=1"):
        tiled_forward(nn.Upsample(scale_factor=2), torch.rand(1, 1, 20, 20), tile=8, overlap=2)


def test_overlap_must_be_smaller_than_tile() -> None:
    with pytest.raises(ValueError, match="overlap"):
        tiled_forward(nn.Identity(), torch.rand(1, 1, 20, 20), tile=8, overlap=8)


@pytest.mark.parametrize(
    "free, expected",
    [(10**15, 2048), (10**6, 128), (4 * 2**30, 704)],  # 2 GiB planned / 4104 B per pixel -> 723 -> 704
)
def test_auto_tile_size_from_free_memory(monkeypatch: pytest.MonkeyPatch, free: int, expected: int) -> None:
    monkeypatch.setattr(tiling, "_free_bytes", lambda device: free)
    assert auto_tile_size(torch.device("cuda"), channels=1) == expected
    assert auto_tile_size(torch.device("cpu"), channels=1) == min(expected, 512)  # CPU: no faster above 512


def test_auto_tile_size_shrinks_with_scale_and_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiling, "_free_bytes", lambda device: 16 * 2**30)
    base = auto_tile_size(torch.device("cuda"), channels=3)
    assert auto_tile_size(torch.device("cuda"), channels=3, scale=2) <= base // 2 + 64
    assert auto_tile_size(torch.device("cuda"), channels=3, batch_size=4) <= base // 2 + 64


def test_auto_batch_size_is_one_tile_on_the_cpu_and_a_batch_on_accelerators() -> None:
    assert auto_batch_size(torch.device("cpu")) == 1
    assert auto_batch_size(torch.device("cuda")) == auto_batch_size(torch.device("mps")) == 4


def test_auto_tile_size_on_this_machine() -> None:
    size = auto_tile_size(torch.device("cpu"), channels=3)
    assert 128 <= size <= 2048 and size % 64 == 0

"""Tiled inference: run a model over an image too big for the device in one pass.

Modelled on MONAI's ``sliding_window_inference``: the image stays on the CPU, tiles go
to the device in batches and their outputs come back to be blended on the CPU with
smooth weights, so there are no seams and the device only ever holds one batch. Tiles
go row by row and the image is read region by region (:func:`stream_tiles`): each block
of output leaves as soon as the last tile touching it is in, so on a huge image only a
strip as high as the tile overlap (plus a tile or two) is ever held in float32, however
wide the image (the caller may keep the whole image in 8 bits).

Blending. Each tile is weighted by a separable profile that is 1 in its interior and
falls to 0 with a raised cosine over the middle half of the overlap, on the sides that
face another tile (sides on the image border keep weight 1). Where two tiles overlap by
``overlap`` the two ramps add up to exactly 1; where they overlap more (edge tiles are
shifted inward) they add up to more. Either way every pixel's weight sum is at least 1,
so the division is always safe. The outer quarter of the overlap gets weight 0: a model
sees a tile's edge as an image border (zero/reflect padding), and those corrupted
pixels are discarded. Hence the tiled result equals the untiled one exactly whenever
the model's receptive-field radius is at most ``overlap / 4`` input pixels; beyond
that, the error fades out smoothly instead of showing as a seam.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from restore.engine.heap import release_free_memory
from restore.engine.progress import Progress

# Peak device memory per output pixel while one tile runs. A 64-channel float32 feature
# map is 256 bytes per pixel, and a U-Net keeps its skip connections plus a few working
# maps alive, so about 16 such maps are live at the widest point.
DEFAULT_BYTES_PER_PIXEL = 16 * 64 * 4
_MIN_TILE, _MAX_TILE, _TILE_STEP = 128, 2048, 64
_FALLBACK_TILE = 512  # when free memory cannot be measured on this platform
# On the CPU bigger tiles are not faster (bench/memory.py, 4000x4000 denoise: 512-pixel tiles
# took the time of 1600-pixel ones with a third of the peak memory), so auto stops here.
_CPU_MAX_TILE = 512
_MEMORY_SHARE = 0.5  # leave room for fragmentation, cuDNN workspaces and other processes
# Tiles per forward pass for batch size auto. On the CPU one at a time is fastest: batches of
# 4 tiles took 1.7x as long as the same tiles one by one (bench/tile_batch.py, denoise and
# superres x4, 2 cores), as a batch's feature maps no longer fit in the caches. Accelerators
# need batches to fill their cores.
_CPU_BATCH, _ACCELERATOR_BATCH = 1, 4


TileReader = Callable[[int, int, int, int], torch.Tensor]
"""``(top, bottom, left, right)`` of a region inside the image -> its ``(1, C, h, w)``
float32 network input on the CPU."""
BlockSink = Callable[[int, int, torch.Tensor], None]
"""``(top, left, (1, C, h, w))``: a finished block of the output, float32. The blocks do not
overlap and together cover the output exactly once."""


class OutputCollector:
    """A :data:`BlockSink` that assembles the whole output, for callers that want it at once."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.output: torch.Tensor | None = None  # (1, C, height, width), made at the first block

    def __call__(self, top: int, left: int, block: torch.Tensor) -> None:
        if self.output is None:
            self.output = torch.empty(1, block.shape[1], self.height, self.width)
        self.output[:, :, top : top + block.shape[2], left : left + block.shape[3]] = block

    @property
    def result(self) -> torch.Tensor:
        """The assembled output (every image has at least one tile, so one block came)."""
        if self.output is None:
            raise RuntimeError("no output block was received")
        return self.output


def tiled_forward(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    *,
    scale: int = 1,
    **settings: Any,
) -> torch.Tensor:
    """Run ``model`` over a whole ``(1, Cin, H, W)`` float32 CPU ``image`` tile by tile;
    returns ``(1, Cout, H*scale, W*scale)`` float32 on the CPU. ``settings`` are
    :func:`stream_tiles`'s."""
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be (1, C, H, W), not {tuple(image.shape)}")
    height, width = image.shape[2:]
    collector = OutputCollector(height * scale, width * scale)
    stream_tiles(model, lambda top, bottom, left, right: image[:, :, top:bottom, left:right], height, width,
                 collector, scale=scale, **settings)
    return collector.result


def stream_tiles(
    model: Callable[[torch.Tensor], torch.Tensor],
    read: TileReader,
    height: int,
    width: int,
    sink: BlockSink,
    *,
    tile: int = 0,
    overlap: int = 32,
    scale: int = 1,
    multiple: int = 1,
    batch_size: int = 4,
    device: torch.device = torch.device("cpu"),
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    progress: Progress | None = None,
) -> None:
    """Run ``model`` over an image of ``height`` x ``width`` read region by region with
    ``read``, and hand the output to ``sink`` in blocks as soon as no later tile can
    change them, so neither the whole input nor the whole output need exist in float32.

    ``model`` maps ``(B, Cin, h, w)`` to ``(B, Cout, h*scale, w*scale)`` and should
    already be in eval mode on ``device``. The image is reflect-padded (replicate where it
    is too small to reflect) to a multiple of ``multiple``, the size granularity the
    network needs, and the result cropped back. ``tile=0`` runs the whole image in one
    pass; otherwise ``tile`` is rounded up to that multiple, tiles are all the same size
    (the last one in each row and column shifted inward to end on the border, so they
    batch together) and go row by row. ``autocast`` is a zero-argument callable returning
    a context manager for the forward pass, e.g.
    ``functools.partial(restore.engine.device.autocast, device, "bf16")``. ``progress`` is
    told the tiles done after each batch of them."""
    _check_arguments(height, width, tile, overlap, scale, multiple, batch_size)
    grid = _TileGrid.plan(height, width, tile, overlap, scale, multiple)
    blender = _Blender([x * scale for x in grid.columns], height * scale, width * scale, grid.row_sum,
                       grid.column_sum, sink)
    positions = [(row, column) for row in range(len(grid.rows)) for column in range(len(grid.columns))]
    with torch.inference_mode():
        for first in range(0, len(positions), batch_size):
            batch = positions[first : first + batch_size]
            tiles = torch.cat([grid.read(read, row, column) for row, column in batch])
            with autocast():
                outputs = model(tiles.to(device))
            grid.check_output(outputs, len(batch), multiple)
            for (row, column), output in zip(batch, outputs.float().cpu()):
                blender.add(grid.rows[row] * scale, column, grid.weighted(output, row, column), grid.final_rows[row])
                if column == len(grid.columns) - 1 and row < len(grid.rows) - 1:
                    release_free_memory()  # a tile row is done: see restore/engine/heap.py
            if progress is not None:
                progress(first + len(batch), len(positions), "tile")


@dataclass
class _TileGrid:
    """Where the tiles of one image go and how their outputs are weighted when blended."""

    height: int
    width: int
    scale: int
    reflect: bool
    tile_height: int
    tile_width: int
    rows: list[int]
    columns: list[int]
    row_weights: dict[int, torch.Tensor]
    column_weights: dict[int, torch.Tensor]
    row_sum: torch.Tensor
    column_sum: torch.Tensor
    final_rows: list[int]  # per tile row: output rows above it are final once that row is in

    @classmethod
    def plan(cls, height: int, width: int, tile: int, overlap: int, scale: int, multiple: int) -> _TileGrid:
        padded_height, padded_width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
        reflect = padded_height - height < height and padded_width - width < width
        tile_height = _tile_extent(tile, padded_height, multiple)
        tile_width = _tile_extent(tile, padded_width, multiple)
        rows = tile_starts(padded_height, tile_height, overlap)
        columns = tile_starts(padded_width, tile_width, overlap)
        row_weights = {y: tile_blend_weights(y, tile_height, padded_height, overlap, scale) for y in rows}
        column_weights = {x: tile_blend_weights(x, tile_width, padded_width, overlap, scale) for x in columns}
        # every tile row meets every tile column, so the weight sum at (y, x) is a product
        row_sum, column_sum = torch.zeros(padded_height * scale), torch.zeros(padded_width * scale)
        for y, weights in row_weights.items():
            row_sum[y * scale : y * scale + weights.numel()] += weights
        for x, weights in column_weights.items():
            column_sum[x * scale : x * scale + weights.numel()] += weights
        final_rows = [start * scale for start in rows[1:]] + [padded_height * scale]
        return cls(height, width, scale, reflect, tile_height, tile_width, rows, columns, row_weights,
                   column_weights, row_sum, column_sum, final_rows)

    def read(self, read: TileReader, row: int, column: int) -> torch.Tensor:
        top, left = self.rows[row], self.columns[column]
        return _read_padded(read, top, top + self.tile_height, left, left + self.tile_width,
                            self.height, self.width, self.reflect)

    def check_output(self, outputs: torch.Tensor, count: int, multiple: int) -> None:
        expected = (self.tile_height * self.scale, self.tile_width * self.scale)
        if outputs.ndim != 4 or outputs.shape[0] != count or outputs.shape[2:] != expected:
            raise ValueError(
                f"model returned {tuple(outputs.shape)} for {count} tiles of {self.tile_height}x{self.tile_width}; "
                f"expected ({count}, C, {expected[0]}, {expected[1]}): check scale={self.scale} and multiple={multiple}"
            )

    def weighted(self, output: torch.Tensor, row: int, column: int) -> torch.Tensor:
        """One tile's output times its blend weights, without the padding (never output)."""
        y, x = self.rows[row], self.columns[column]
        weights = self.row_weights[y][:, None] * self.column_weights[x][None, :]
        return (output * weights)[:, :, : self.width * self.scale - x * self.scale]


class _Blender:
    """Accumulates weighted tile outputs and hands each block on once it is final.

    The output width is cut into segments, one per tile column, from that column's start
    to the next one's. Tiles arrive row by row, left to right, and no tile reaches a
    segment to its left, so when tile (row, column) is in, its segment is final down to the
    next tile row's start: that block is divided by its weight sum and handed to the sink,
    and the segment keeps only the rows below, which the next tile row overlaps. At any
    time the blender holds an overlap-high strip of the output's width plus a tile or two."""

    def __init__(self, starts: list[int], height: int, width: int, row_sum: torch.Tensor, column_sum: torch.Tensor,
                 sink: BlockSink) -> None:
        self.bounds = list(zip(starts, [*starts[1:], width]))  # [left, right) of each segment
        self.height, self.row_sum, self.column_sum, self.sink = height, row_sum, column_sum, sink
        self.tops = [0] * len(starts)  # the first row each segment still holds
        self.held: list[torch.Tensor | None] = [None] * len(starts)  # (C, rows, segment width) from its top

    def add(self, top: int, column: int, weighted: torch.Tensor, final_until: int) -> None:
        """Add tile ``column``'s ``(C, h, w)`` weighted output at row ``top``, then hand on its
        segment down to ``final_until``."""
        left = self.bounds[column][0]
        right = left + weighted.shape[2]
        for index in range(column, len(self.bounds)):
            segment_left, segment_right = self.bounds[index]
            if segment_left >= right:
                break
            self._accumulate(index, top, weighted[:, :, segment_left - left : min(segment_right, right) - left])
        self._flush(column, final_until)

    def _accumulate(self, index: int, top: int, part: torch.Tensor) -> None:
        segment_top = self.tops[index]
        held = self.held[index]
        if held is None:
            segment_left, segment_right = self.bounds[index]
            held = self.held[index] = torch.zeros(part.shape[0], 0, segment_right - segment_left)
        bottom = top + part.shape[1] - segment_top
        if bottom > held.shape[1]:  # grow downwards
            extra = held.new_zeros(held.shape[0], bottom - held.shape[1], held.shape[2])
            held = self.held[index] = torch.cat([held, extra], dim=1)
        held[:, top - segment_top : bottom, : part.shape[2]] += part

    def _flush(self, index: int, until: int) -> None:
        """The segment's rows above ``until`` are final: normalise them, hand them on, forget them."""
        held, segment_top = self.held[index], self.tops[index]
        assert held is not None
        count = until - segment_top
        done, self.held[index] = held[:, :count], held[:, count:].clone()
        self.tops[index] = until
        visible = min(until, self.height) - segment_top
        if visible > 0:
            segment_left, segment_right = self.bounds[index]
            done = done[:, :visible]
            row_sum = self.row_sum[segment_top : segment_top + visible, None]
            done /= row_sum * self.column_sum[None, segment_left:segment_right]
            self.sink(segment_top, segment_left, done[None])


def _read_padded(read: TileReader, top: int, bottom: int, left: int, right: int, height: int, width: int,
                 reflect: bool) -> torch.Tensor:
    """The region of the image padded at the bottom and right to a multiple: what is
    inside is read, what is outside mirrored from it (reflect keeps image statistics at
    the border, zeros would look like a dark frame to the model; replicate where the image
    is too small to reflect). Enough rows/columns are read for the mirror to equal padding
    the whole image."""
    pad_bottom, pad_right = max(0, bottom - height), max(0, right - width)
    if not pad_bottom and not pad_right:
        return read(top, bottom, left, right)
    # reflecting p rows needs the p + 1 last rows of the image, which may lie above the tile
    read_top = min(top, max(0, height - pad_bottom - 1)) if pad_bottom else top
    read_left = min(left, max(0, width - pad_right - 1)) if pad_right else left
    region = read(read_top, min(bottom, height), read_left, min(right, width))
    mode = "reflect" if reflect else "replicate"
    region = F.pad(region, (0, pad_right, 0, pad_bottom), mode=mode)
    return region[:, :, top - read_top :, left - read_left :]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of same-size tiles covering ``length``, neighbours overlapping by at
    least ``overlap``; the last tile is shifted inward to end exactly on the border."""
    if tile >= length:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    starts.append(length - tile)
    return starts


def tile_blend_weights(start: int, tile: int, length: int, overlap: int, scale: int) -> torch.Tensor:
    """1-D blend profile (in output pixels) of the tile at ``start`` along an axis of
    ``length`` input pixels; see the module docstring for its shape and guarantees."""
    size, ramp = tile * scale, overlap * scale
    weights = torch.ones(size, dtype=torch.float64)
    if ramp == 0:
        return weights.float()
    distance = torch.arange(size, dtype=torch.float64) + 0.5  # pixel centres from the start edge
    if start > 0:
        weights *= _raised_cosine(distance, ramp)
    if start + tile < length:
        weights *= _raised_cosine(distance.flip(0), ramp)
    return weights.float()


def _raised_cosine(distance: torch.Tensor, ramp: float) -> torch.Tensor:
    """0 up to ``ramp / 4`` from the edge, rising to 1 at ``3 * ramp / 4``; symmetric, so
    the ramps of two tiles overlapping by ``ramp`` sum to 1."""
    progress = ((distance - ramp / 4) / (ramp / 2)).clamp(0, 1)
    return 0.5 - 0.5 * torch.cos(math.pi * progress)


def auto_batch_size(device: torch.device) -> int:
    """Tiles per forward pass when the user does not say: 1 on the CPU, 4 on a GPU."""
    return _CPU_BATCH if device.type == "cpu" else _ACCELERATOR_BATCH


def auto_tile_size(
    device: torch.device,
    channels: int,
    scale: int = 1,
    bytes_per_pixel: int = DEFAULT_BYTES_PER_PIXEL,
    batch_size: int = 1,
) -> int:
    """A tile size (multiple of 64, within [128, 2048]) that fits in free memory.

    Estimate per input pixel of a tile: ``bytes_per_pixel * scale**2`` of activations
    (``bytes_per_pixel`` is the network's peak per *output* pixel, see
    ``DEFAULT_BYTES_PER_PIXEL``) plus the float32 input and output tiles,
    ``4 * channels * (1 + scale**2)``; times ``batch_size`` tiles in flight. Only half of
    the free memory is planned for. Free memory is CUDA's ``mem_get_info`` plus what
    PyTorch has cached but not used, MPS's recommended maximum minus what the driver
    holds, or on the CPU the free RAM from ``os.sysconf``; where none of these can be
    measured the answer is 512. On the CPU the answer is at most 512: larger tiles cost
    memory without being faster there."""
    free = _free_bytes(device)
    if free is None:
        return _FALLBACK_TILE
    per_pixel = batch_size * (bytes_per_pixel * scale**2 + 4 * channels * (1 + scale**2))
    side = math.isqrt(int(free * _MEMORY_SHARE) // per_pixel)
    largest = _CPU_MAX_TILE if device.type == "cpu" else _MAX_TILE
    return max(_MIN_TILE, min(largest, side // _TILE_STEP * _TILE_STEP))


def _free_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "mps":
        return torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf; macOS lacks AVPHYS_PAGES
        return None


def check_overlap(tile: int | str, overlap: int) -> None:
    """Tiles must overlap by less than their size; ``tile="auto"`` may choose tiles as small
    as the smallest automatic size, so the overlap must be below that."""
    smallest = _MIN_TILE if tile == "auto" else int(tile)
    if smallest and overlap >= smallest:
        chosen = f"tiles of {_MIN_TILE} pixels with --tile auto" if tile == "auto" else f"--tile {tile}"
        raise ValueError(f"--tile-overlap {overlap} must be smaller than the tile ({chosen}): lower "
                         f"--tile-overlap or raise --tile")


def _check_arguments(height: int, width: int, tile: int, overlap: int, scale: int, multiple: int,
                     batch_size: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"the image is empty ({height}x{width})")
    if tile < 0 or overlap < 0:
        raise ValueError(f"tile and overlap must be >= 0, not tile={tile}, overlap={overlap}")
    check_overlap(tile, overlap)
    if scale < 1 or multiple < 1 or batch_size < 1:
        raise ValueError(f"scale, multiple and batch_size must be >= 1, not {scale}, {multiple}, {batch_size}")


def _tile_extent(tile: int, length: int, multiple: int) -> int:
    """Tile size along one axis: ``tile`` rounded up to ``multiple`` (the network needs
    it), no larger than the padded image; the whole axis when ``tile`` is 0."""
    if tile == 0:
        return length
    return min(-(-tile // multiple) * multiple, length)

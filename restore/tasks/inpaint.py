"""Inpainting: fill the holes a mask marks, keeping every known pixel exactly.

Network input: the image with its holes pre-filled, plus the mask (1 = hole) as an extra
channel (U-Net ``extra_channels=1``), so the network knows which pixels are missing. The
pre-fill is ``task_options.fill``: ``telea`` (the default) fills each hole with OpenCV's
fast-marching inpainting (Telea 2004) of the image's 8-bit rendering, and the network
(``residual=True``) learns a correction on top of it, as the super-resolution network
corrects bicubic: it starts where the classical method ends, and a short CPU training run
is enough to go past it. ``zeros`` leaves the holes black (DeepFill/LaMa's input; the
network then paints the whole hole itself). The U-Net's head and downsampling
convolutions are gated (``gated=True``, DeepFill v2). It predicts the whole image; the
output is the composite ``mask * prediction + (1 - mask) * input``, done in
:meth:`InpaintTask.postprocess` at the output dtype, so known pixels are bit-identical to
the input's in 8-bit, 16-bit and float images alike.

Training (``restore train inpaint``): holes from :mod:`restore.tasks.mask_generator`
(thin / medium / thick strokes and boxes, ``task_options.masks``, hole area
``hole_min``-``hole_max``); L1 weighted ``hole_weight`` inside the holes and
``known_weight`` outside (a per-pixel loss weight from :meth:`make_pair`), plus the
recipe's PatchGAN and feature-matching losses through the shared paired objective.

At inference the masks come from ``--masks DIR``, sidecar files, alpha or a colour (see
:mod:`restore.tasks.masks`). Big images go through the shared tiled inference with the
mask channel tiled alongside the image, and the pre-fill is made per tile from the tile's
own known pixels (README: "Large images"). The fill a model was trained with is read from
its weights file's task options, so it always gets the input it learned from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from restore.engine.tiling import TileReader
from restore.io.convert import dtype_scale
from restore.io.image import Image
from restore.io.limits import MAX_PIXELS
from restore.io.storage import ObjectPath, location
from restore.tasks.base import PreparedImage, Task, TaskOptions
from restore.tasks.mask_generator import DEFAULT_HOLE_RANGE, DEFAULT_MASK_KINDS, generate_mask
from restore.tasks.masks import MaskOptions, find_mask, is_sidecar, searched

DEFAULT_HOLE_WEIGHT = 6.0  # Liu et al.'s partial-convolution paper weighs hole L1 6x valid L1
DEFAULT_KNOWN_WEIGHT = 1.0
FILLS = ("zeros", "telea")
TELEA_RADIUS = 3  # OpenCV's inpaintRadius, as the benchmark's Telea baseline


def fill_holes(image: torch.Tensor, hole: torch.Tensor, fill: str) -> torch.Tensor:
    """``(..., C, H, W)`` image in [0, 1] and ``(..., 1, H, W)`` hole mask in {0, 1} -> the
    image with its hole pixels replaced (known pixels untouched, the hidden ones never
    read): ``zeros``, or ``telea``: OpenCV's Telea inpainting of the 8-bit rendering of
    each image (1 or 3 channels), which only looks at the known pixels."""
    if fill == "zeros":
        return image * (1 - hole)
    if fill != "telea":
        raise ValueError(f"inpaint: unknown fill {fill!r}; choose from {', '.join(FILLS)}")
    images = image.reshape(-1, *image.shape[-3:])
    holes = hole.reshape(-1, *hole.shape[-2:])
    filled = []
    for one, one_hole in zip(images, holes):
        mask = one_hole.numpy().astype(np.uint8)
        if not mask.any():
            filled.append(one)
            continue
        eight_bit = (one.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        painted = cv2.inpaint(eight_bit, mask, TELEA_RADIUS, cv2.INPAINT_TELEA).reshape(eight_bit.shape)
        painted = torch.from_numpy(painted).permute(2, 0, 1).to(image.dtype) / 255
        filled.append(torch.where(one_hole.bool(), painted, one))
    return torch.stack(filled).reshape(image.shape)


def network_input(image: torch.Tensor, hole: torch.Tensor, fill: str = "zeros") -> torch.Tensor:
    """``(..., C, H, W)`` image and ``(..., 1, H, W)`` hole mask in {0, 1} -> the image
    with holes pre-filled (:func:`fill_holes`), followed by the mask channel."""
    return torch.cat([fill_holes(image, hole, fill), hole], dim=-3)


def composite(output: np.ndarray, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Known pixels from ``image``, holes from ``output`` (``(H, W, C)``, same dtype)."""
    return np.where(hole[:, :, None], output, image)


@dataclass(frozen=True)
class InpaintOptions(TaskOptions):
    """Where each image's holes come from: ``mask`` (an ``(H, W)`` array, nonzero = hole,
    given in Python), else the files and colours :mod:`restore.tasks.masks` searches
    (``masks_dir``, ``mask_color`` within ``mask_tolerance``), every hole grown by
    ``dilate`` pixels; mask files larger than ``max_pixels`` are refused."""

    mask: np.ndarray | None = None
    masks_dir: str | Path | ObjectPath | None = None  # a folder or a storage URL
    mask_color: tuple[int, int, int] | None = None
    mask_tolerance: int = 0
    dilate: int = 0
    max_pixels: int = MAX_PIXELS


def mask_options(options: InpaintOptions) -> MaskOptions:
    """Where the masks of a folder's images are and how to treat them."""
    return MaskOptions(
        masks_dir=location(options.masks_dir) if options.masks_dir is not None else None,
        mask_color=tuple(options.mask_color) if options.mask_color is not None else None,
        mask_tolerance=int(options.mask_tolerance),
        dilate=int(options.dilate),
        max_pixels=int(options.max_pixels),
    )


def hole_of(options: InpaintOptions, height: int, width: int) -> np.ndarray:
    """``options.mask`` (any ``(H, W)`` array, nonzero = hole) as a bool array of the
    image's size, or a clear error."""
    if options.mask is None:
        raise ValueError("inpaint needs a mask: pass mask=ARRAY of shape (H, W), nonzero = hole")
    hole = np.asarray(options.mask)
    if hole.ndim == 3 and hole.shape[2] == 1:
        hole = hole[:, :, 0]
    if hole.shape != (height, width):
        raise ValueError(f"the mask is {hole.shape[-1]}x{hole.shape[0]} but the image is {width}x{height}")
    return hole.astype(bool)


class InpaintTask(Task):
    name = "inpaint"
    options_type = InpaintOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        """``options["fill"]``: how holes are pre-filled for the network (module doc); a
        model's own weights file says which one it was trained with ("zeros" when silent:
        weights made before the option existed)."""
        super().__init__(options)
        self.fill = str((options or {}).get("fill", "zeros"))
        if self.fill not in FILLS:
            raise ValueError(f"inpaint: unknown fill {self.fill!r}; choose from {', '.join(FILLS)}")

    def default_weights(self, channels: int) -> list[str]:
        del channels  # grey images go through the colour model (replicated, averaged back)
        return ["inpaint"]

    def default_config(self) -> dict[str, Any]:
        # Deep (5 downsamplings): a hole is filled from what surrounds it, so the receptive
        # field must span the hole; residual over the Telea pre-fill (module doc); gated
        # encoder convolutions (DeepFill v2) learn what to take from a hole. The
        # conditional PatchGAN sees the pre-filled image beside the output.
        return {
            "task_options": {
                "fill": "telea",
                "hole_min": DEFAULT_HOLE_RANGE[0],
                "hole_max": DEFAULT_HOLE_RANGE[1],
                "hole_weight": DEFAULT_HOLE_WEIGHT,
                "known_weight": DEFAULT_KNOWN_WEIGHT,
                "masks": DEFAULT_MASK_KINDS,
            },
            "generator": {
                "arch": "unet",
                "in_channels": 3,
                "out_channels": 3,
                "extra_channels": 1,
                "base_channels": 32,
                "depth": 5,
                "max_channels": 256,
                "blocks_per_level": 2,
                "residual": True,
                "gated": True,
            },
            "discriminator": {"arch": "patch", "in_channels": 6, "base_channels": 64, "n_layers": 3,
                              "norm": "none", "spectral_norm": True},
            "loss": {"reconstruction": "l1", "adversarial_weight": 0.01, "feature_matching_weight": 10.0},
        }

    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(holed image + mask, clean, per-pixel L1 weight)`` for a ``(C, H, W)`` crop."""
        height, width = clean.shape[-2:]
        hole = torch.from_numpy(generate_mask(height, width, options, generator)).to(clean.dtype)[None]
        hole_weight = float(options.get("hole_weight", DEFAULT_HOLE_WEIGHT))
        known_weight = float(options.get("known_weight", DEFAULT_KNOWN_WEIGHT))
        weight = known_weight + (hole_weight - known_weight) * hole
        return network_input(clean, hole, self.fill), clean, weight

    spatial_options = ("mask",)

    def image_options(
        self, read: TileReader, height: int, width: int, options: InpaintOptions
    ) -> tuple[InpaintOptions, dict[str, Any]]:
        """``options.mask``: ``(H, W)`` array, nonzero = hole (checked against the image
        size here, once)."""
        del read
        hole = hole_of(options, height, width)
        return dataclasses.replace(options, mask=hole), {"hole_fraction": round(float(hole.mean()), 4)}

    def inference_input(self, image: torch.Tensor, options: InpaintOptions) -> torch.Tensor:
        hole = torch.from_numpy(np.ascontiguousarray(options.mask)).to(image.dtype)
        return network_input(image, hole[None, None].expand(image.shape[0], 1, -1, -1), self.fill)

    def postprocess(self, output: np.ndarray, image: np.ndarray, options: InpaintOptions) -> np.ndarray:
        return composite(output, image, hole_of(options, image.shape[0], image.shape[1]))

    def is_input(self, path: Path, options: InpaintOptions) -> bool:
        """Mask sidecars and anything under ``--masks`` are masks, not images to fill."""
        masks_dir = options.masks_dir
        if masks_dir is not None and location(masks_dir).resolve() in path.resolve().parents:
            return False
        return not is_sidecar(path)

    def prepare(
        self, image: Image, source: Path | None, relative: Path | None, options: InpaintOptions
    ) -> PreparedImage:
        """Find the image's mask; without one (or with an empty one) the image is copied
        unchanged and the report says why. When the alpha channel was the mask, the filled
        output is made opaque."""
        if options.mask is not None:  # given directly (Python API)
            return PreparedImage(image, info={"mask": "given"})
        settings = mask_options(options)
        found = find_mask(image, source, relative, settings)
        if found is None:
            return PreparedImage(image, info={"mask": None, "warning": f"no mask found ({searched(source, settings)}): "
                                              "copied unchanged"}, run=False)
        info = {"mask": found.source, "hole_fraction": round(float(found.hole.mean()), 4)}
        if not found.hole.any():
            return PreparedImage(image, info={**info, "warning": f"mask {found.source} has no hole: copied unchanged"},
                                 run=False)
        if found.from_alpha:
            opaque = np.full_like(image.alpha, dtype_scale(image.alpha.dtype))
            image = dataclasses.replace(image, alpha=opaque)
        return PreparedImage(image, options={"mask": found.hole}, info=info)

"""Super-resolution: learn HR from its MATLAB-bicubic downscaling, as the benchmarks are made.

The benchmark LR images (Set5, Set14, BSD100 ``LR_bicubic``) are MATLAB's
``imresize(hr, 1/scale, 'bicubic')`` saved as 8-bit files, so training pairs are made
the same way (:func:`restore.metrics.imresize.imresize`, then 8-bit rounding): a model
trained on PyTorch's or OpenCV's bicubic meets a different degradation at test time.

``task_options.scale`` (2, 3 or 4) is read when the task is built (``get_task("superres",
options)``), because the data pipeline crops ``crop * task.scale`` clean pixels and the
trainer crops validation images to a multiple of it; the generator's ``upscale`` must
equal it (the trainer checks).

``task_options.mode`` picks the degradation: ``bicubic`` (above: the PSNR model the
benchmarks measure) or ``real``, Real-ESRGAN's second-order blur/resize/noise/JPEG model
(:mod:`restore.tasks.degradations`, tuned by an optional ``[task_options.real]`` table),
for a model that restores real photos.

At inference the options pick the shipped weights (``scale``, ``model = "psnr" | "real"``:
``superres-x2``, ``superres-x4``, ``superres-x4-real``) and ``outscale`` resizes the
network's output to any factor of the input, as Real-ESRGAN's ``--outscale`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from restore.io.image import Image
from restore.io.limits import MAX_PIXELS
from restore.metrics.imresize import imresize
from restore.tasks.base import PreparedImage, Task, TaskOptions
from restore.tasks.degradations import second_order_degradation, second_order_settings

SCALES = (2, 3, 4, 8)  # 8: community models (restore ships x2 and x4)
MODES = ("bicubic", "real")  # training degradations
MODELS = ("psnr", "real")  # shipped weights families, chosen at inference
DEFAULT_SCALE = 4


def scale_from_options(options: dict[str, Any]) -> int:
    scale = options.get("scale", DEFAULT_SCALE)
    if scale not in SCALES:
        raise ValueError(f"superres: task_options.scale must be one of {SCALES}, not {scale!r}")
    return int(scale)


def weights_name(scale: int, model: str) -> str:
    """The shipped weights of a scale and model family: ``superres-x4``, ``superres-x4-real``."""
    if model not in MODELS:
        raise ValueError(f"superres: unknown model {model!r}; available: {', '.join(MODELS)}")
    return f"superres-x{scale}" + ("-real" if model == "real" else "")


def resize_output(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(H, W, C)`` pixels (any dtype OpenCV resizes: uint8, uint16, float32) resized to
    ``height`` x ``width``: area averaging when shrinking (no aliasing), bicubic when
    enlarging; the result is clipped to the dtype's range by OpenCV's saturation."""
    shrinking = height * width < pixels.shape[0] * pixels.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    resized = cv2.resize(pixels, (width, height), interpolation=interpolation)
    if pixels.dtype.kind == "f":
        resized = np.clip(resized, 0, 1)
    return resized.reshape(height, width, pixels.shape[2])


def output_size(height: int, width: int, outscale: float) -> tuple[int, int]:
    """The ``(height, width)`` of an output resized to ``outscale`` times the input."""
    if outscale <= 0:
        raise ValueError(f"outscale must be positive, not {outscale}")
    size = int(height * outscale), int(width * outscale)
    if min(size) < 1:
        raise ValueError(f"outscale {outscale} leaves no pixel of a {width}x{height} image")
    return size


@dataclass(frozen=True)
class SuperResOptions(TaskOptions):
    """``scale`` and ``model`` pick the shipped weights (the default scale: 4; a given
    scale must be the weights' own); ``outscale`` resizes the output to that factor of the
    input (None: the network's scale), refused beyond ``max_pixels`` when that is larger
    than the network's own output."""

    scale: int | None = None
    model: str = "psnr"
    outscale: float | None = None
    max_pixels: int = MAX_PIXELS


class SuperResTask(Task):
    name = "superres"
    options_type = SuperResOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        options = options or {}
        self.scale = scale_from_options(options)
        self.model = options.get("model", "psnr")
        weights_name(self.scale, self.model)  # refuses an unknown model now, not at the first image

    def default_weights(self, channels: int) -> list[str]:
        del channels  # grey images run through the colour model (the Restorer replicates them)
        return [weights_name(self.scale, self.model)]

    def prepare(
        self, image: Image, source: Path | None, relative: Path | None, options: SuperResOptions
    ) -> PreparedImage:
        """Refuse, before the network runs, an ``outscale`` output larger than both the
        network's own output and ``max_pixels`` (the --max-pixels of the inputs)."""
        del source, relative
        outscale, limit = options.outscale, options.max_pixels
        if outscale is not None:
            height, width = output_size(image.height, image.width, outscale)
            if height * width > max(int(limit), image.height * image.width * self.scale**2):
                raise ValueError(
                    f"--outscale {outscale} makes a {width}x{height} output ({width * height} pixels), more than "
                    f"--max-pixels {limit} and than the network's x{self.scale}; lower --outscale"
                )
        return PreparedImage(image)

    def postprocess(self, output: np.ndarray, image: np.ndarray, options: SuperResOptions) -> np.ndarray:
        """``options.outscale``: the output is resized to ``int(outscale * input size)``
        (Real-ESRGAN's sizing), e.g. 3.5 from an x4 network; None keeps the network's scale."""
        outscale = options.outscale
        if outscale is None:
            return output
        height, width = output_size(image.shape[0], image.shape[1], outscale)
        if (height, width) == output.shape[:2]:
            return output
        return resize_output(output, height, width)

    def default_config(self) -> dict[str, Any]:
        # Two downsamplings only: super-resolution needs its capacity at the LR resolution
        # (EDSR, RCAN work there entirely), not deep in a pyramid. The residual adds the
        # bicubic upsampling of the input, so the network learns only the missing detail.
        # LeakyReLU: with ReLU the pixel-shuffle tail can die (all pre-activations negative,
        # output exactly bicubic from then on), as a 48-wide x4 run did within 1000 steps.
        return {
            "task_options": {"scale": self.scale, "mode": "bicubic"},  # "real": see the module doc
            "generator": {
                "arch": "unet",
                "in_channels": 3,
                "out_channels": 3,
                "base_channels": 64,
                "depth": 2,
                "max_channels": 256,
                "blocks_per_level": 4,
                "residual": True,
                "upscale": self.scale,
                "activation": "leaky_relu",
            },
            "loss": {"reconstruction": "l1"},
        }

    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(LR, HR)``: HR is ``clean`` cropped to a multiple of the scale; LR is its MATLAB
        bicubic downscaling (``bicubic``, deterministic) or Real-ESRGAN's random degradation
        drawn from ``generator`` (``real``), clipped and rounded to 8 bits in both modes."""
        mode = options.get("mode", "bicubic")
        if mode not in MODES:
            raise ValueError(f"superres: unknown mode {mode!r}; available: {', '.join(MODES)}")
        scale = scale_from_options(options)
        height, width = clean.shape[-2] // scale * scale, clean.shape[-1] // scale * scale
        if height == 0 or width == 0:
            raise ValueError(f"superres: a {tuple(clean.shape[-2:])} image is smaller than the scale {scale}")
        high = clean[..., :height, :width]
        if mode == "real":
            settings = second_order_settings(options.get("real", {}))
            return second_order_degradation(high, scale, generator, settings), high
        low = imresize(high, 1 / scale).clamp(0, 1).mul(255).round().div(255)
        return low, high

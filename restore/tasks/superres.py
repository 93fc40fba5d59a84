"""Super-resolution: learn HR from its MATLAB-bicubic downscaling, as the benchmarks are made.

The benchmark LR images (Set5, Set14, BSD100 ``LR_bicubic``) are MATLAB's
``imresize(hr, 1/scale, 'bicubic')`` saved as 8-bit files, so training pairs are made
the same way (:func:`restore.metrics.imresize.imresize`, then 8-bit rounding): a model
trained on PyTorch's or OpenCV's bicubic meets a different degradation at test time.

``task_options.scale`` (2, 3 or 4) is read when the task is built (``get_task("superres",
options)``), because the data pipeline crops ``crop * task.scale`` clean pixels and the
trainer crops validation images to a multiple of it; the generator's ``upscale`` must
equal it (the trainer checks).
"""

from __future__ import annotations

from typing import Any

import torch

from restore.metrics.imresize import imresize
from restore.tasks.base import Task

SCALES = (2, 3, 4)
MODES = ("bicubic",)  # "real" (blur, noise, JPEG: Real-ESRGAN's pipeline) is a later issue
DEFAULT_SCALE = 4


def scale_from_options(options: dict[str, Any]) -> int:
    scale = options.get("scale", DEFAULT_SCALE)
    if scale not in SCALES:
        raise ValueError(f"superres: task_options.scale must be one of {SCALES}, not {scale!r}")
    return int(scale)


class SuperResTask(Task):
    name = "superres"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.scale = scale_from_options(options or {})

    def default_config(self) -> dict[str, Any]:
        # Two downsamplings only: super-resolution needs its capacity at the LR resolution
        # (EDSR, RCAN work there entirely), not deep in a pyramid. The residual adds the
        # bicubic upsampling of the input, so the network learns only the missing detail.
        return {
            "task_options": {"scale": self.scale, "mode": "bicubic"},
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
            },
            "loss": {"reconstruction": "l1"},
        }

    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(LR, HR)``: HR is ``clean`` cropped to a multiple of the scale; LR is its MATLAB
        bicubic downscaling, clipped and rounded to 8 bits as the benchmark files are."""
        del generator  # the bicubic degradation is deterministic
        mode = options.get("mode", "bicubic")
        if mode not in MODES:
            raise ValueError(f"superres: unknown mode {mode!r}; available: {', '.join(MODES)}")
        scale = scale_from_options(options)
        height, width = clean.shape[-2] // scale * scale, clean.shape[-1] // scale * scale
        if height == 0 or width == 0:
            raise ValueError(f"superres: a {tuple(clean.shape[-2:])} image is smaller than the scale {scale}")
        high = clean[..., :height, :width]
        low = imresize(high, 1 / scale).clamp(0, 1).mul(255).round().div(255)
        return low, high

"""Image-quality metrics with the literature's conventions (see :mod:`restore.metrics.quality`).

``psnr(prediction, target)`` and ``ssim(prediction, target)`` take numpy arrays or
``(B, C, H, W)`` tensors; ``data_range`` defaults to the dtype's full scale (1.0 for
float tensors in [0, 1], as the trainer uses them).
"""

from restore.metrics.quality import psnr, rgb_to_y, ssim

__all__ = ["psnr", "rgb_to_y", "ssim"]

"""Image-quality metrics on ``(B, C, H, W)`` tensors in [0, 1]."""

from __future__ import annotations

import torch


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> float:
    mse = torch.mean((prediction.double() - target.double()) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(data_range**2 / mse)).item()


def ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM with the standard 11x11 Gaussian window (sigma 1.5)."""
    import kornia

    return kornia.metrics.ssim(prediction.float(), target.float(), 11, max_val=data_range).mean().item()

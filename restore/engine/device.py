"""Device and numeric-precision choices, shared by training and inference."""

from __future__ import annotations

import contextlib

import torch


class PrecisionError(ValueError):
    """A precision the chosen device cannot run."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PrecisionError("--device cuda was asked for, but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise PrecisionError("--device mps was asked for, but Apple MPS is not available")
    return device


def check_precision(device: torch.device, precision: str) -> None:
    if precision not in ("fp32", "fp16", "bf16"):
        raise PrecisionError(f"precision must be fp32, fp16 or bf16, not {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise PrecisionError("fp16 is not supported on the CPU: use --precision bf16 or fp32")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass; a no-op for fp32."""
    check_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)

"""Device and numeric-precision choices, shared by training and inference."""

from __future__ import annotations

import contextlib

import torch


class DeviceError(ValueError):
    """A device that was asked for but is not available on this machine."""


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
        raise DeviceError("--device cuda was asked for, but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("--device mps was asked for, but Apple MPS is not available")
    return device


def check_precision(device: torch.device, precision: str, allow_auto: bool = False) -> None:
    """Refuse a precision ``device`` cannot run. ``allow_auto``: inference, which also takes
    ``auto`` and ``int8`` (an exported backend's quantised graph, checked by the backend)."""
    allowed = ("fp32", "fp16", "bf16", "int8", "auto") if allow_auto else ("fp32", "fp16", "bf16")
    if precision not in allowed:
        raise PrecisionError(f"precision must be {', '.join(allowed[:-1])} or {allowed[-1]}, not {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise PrecisionError("fp16 is not supported on the CPU: use --precision bf16 or fp32")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (so bf16 is faster than fp32): CUDA
    GPUs from Ampere on, CPUs with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence getattr
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def inference_precision(device: torch.device, precision: str, exact: bool, measured: bool) -> str:
    """The precision one image runs at. ``auto`` is bf16 only where all of these hold: the
    device computes bf16 in hardware (so it is faster: ``python bench/denoise_speed.py
    --precision bf16``); the image is not ``exact`` (16-bit, float, scans: bf16's 8
    significant bits would round away levels they hold); and the weights' bf16 outputs were
    ``measured`` against fp32 (the manifest's ``bf16_vs_fp32`` record, ``python
    bench/precision_check.py --record``), because bf16 can move an unmeasured network's
    outputs by many levels. Anything else runs fp32."""
    if precision != "auto":
        return precision
    return "bf16" if measured and not exact and native_bf16(device) else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass; a no-op for fp32 and for int8 (the exported
    graph is quantised: nothing of torch's runs)."""
    if precision == "int8":
        return contextlib.nullcontext()
    check_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)

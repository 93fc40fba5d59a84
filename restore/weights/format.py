"""The inference weights file: ``.safetensors`` tensors plus a JSON header holding the
network spec and task, so the network is rebuilt from the file alone.

Shipped files are fp16, or for big networks int8 (see :func:`save_weights`), read back as
float32 either way. Plain ``.pt``/``.pth`` tensor files (community checkpoints) are read
too, without ever unpickling arbitrary objects.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from restore.io.atomic import atomic_write

WEIGHTS_FORMAT = "restore-weights/1"
INT8 = "int8-per-channel"  # header "quantized": int8 weight tensors, one scale per output channel
INT8_SCALE_SUFFIX = "#int8_scale"  # never a parameter name: '#' cannot appear in a module path
INT8_MIN_ELEMENTS = 4096  # smaller tensors (biases, norms, tiny convolutions) stay fp16


# the header entries restore writes (save_weights' metadata), and the JSON type of each
METADATA_TYPES: dict[str, type] = {
    "task": str, "network": dict, "task_options": dict, "source": str, "direction": str, "step": int,
}
METADATA_KINDS = {str: "a string", dict: "a table", int: "a number"}


class WeightsError(ValueError):
    """A weights file that cannot be used, with the reason."""


def save_weights(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    half: bool = False,
    int8: bool = False,
) -> None:
    """Write inference weights as safetensors; ``metadata`` must hold ``network`` (spec).

    ``half`` stores floating tensors as fp16. ``int8`` also stores every floating tensor of
    two or more dimensions and at least ``INT8_MIN_ELEMENTS`` elements (the convolution
    weights, nearly all of a network's size) as int8 with one fp16 scale per output
    channel (symmetric, the largest magnitude of the channel maps to 127): half the size
    of fp16. :func:`load_weights` turns them back into floats."""
    from safetensors.torch import save_file

    if "network" not in metadata:
        raise ValueError("weights metadata must include the network spec")
    tensors = {}
    for key, tensor in state_dict.items():
        tensor = tensor.detach().cpu().contiguous()
        if int8 and tensor.is_floating_point() and tensor.ndim >= 2 and tensor.numel() >= INT8_MIN_ELEMENTS:
            tensors[key], tensors[key + INT8_SCALE_SUFFIX] = _quantize_int8(tensor)
        else:
            tensors[key] = tensor.half() if (half or int8) and tensor.is_floating_point() else tensor
    header = {"format": WEIGHTS_FORMAT, "restore": json.dumps(metadata, sort_keys=True)}
    if int8:
        header["quantized"] = INT8
    atomic_write(path, lambda temp: save_file(tensors, str(temp), metadata=header))


def _quantize_int8(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(int8 values, fp16 scale per output channel)`` with ``values * scale ~ tensor``."""
    flat = tensor.float().reshape(tensor.shape[0], -1)
    scale = (flat.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float16).tiny).half()
    values = (flat / scale.float()[:, None]).round().clamp(-127, 127).to(torch.int8)
    return values.reshape(tensor.shape), scale


def _dequantize_int8(state_dict: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The float32 state dict of an int8 file (:func:`save_weights`)."""
    scales = {key.removesuffix(INT8_SCALE_SUFFIX): value for key, value in state_dict.items()
              if key.endswith(INT8_SCALE_SUFFIX)}
    restored = {}
    for key, tensor in state_dict.items():
        if key.endswith(INT8_SCALE_SUFFIX):
            continue
        if key in scales:
            scale = scales[key].float()
            if tensor.dtype != torch.int8 or scale.shape != tensor.shape[:1]:
                raise WeightsError(f"{path}: damaged int8 tensor {key!r} (its values or scales do not fit)")
            tensor = tensor.float() * scale.reshape(-1, *[1] * (tensor.ndim - 1))
        restored[key] = tensor
    return restored


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``(state_dict, metadata)`` from ``.safetensors`` or, safely, ``.pt``/``.pth``.

    A ``.pt``/``.pth`` file is read with ``weights_only=True``: a file whose pickle would
    run code is refused with an error, never executed. Such files carry no metadata, so
    the caller must know their architecture (see the style task's public checkpoints)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                header = handle.metadata() or {}
            state_dict = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise WeightsError(f"{path}: not a valid safetensors file ({error})") from error
        if header.get("quantized") == INT8:
            state_dict = _dequantize_int8(state_dict, path)
        elif "quantized" in header:
            raise WeightsError(f"{path}: unknown quantization {header['quantized']!r} (this restore reads {INT8!r})")
        check_finite(state_dict, path)
        return state_dict, _restore_metadata(header, path)
    if path.suffix in PICKLE_SUFFIXES:
        loaded = load_tensor_pickle(path)
        if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
            loaded = loaded["state_dict"]
        if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
            raise WeightsError(f"{path}: expected a state dict of tensors")
        check_finite(loaded, path)
        return dict(loaded), {}
    raise WeightsError(f"{path}: unknown weights format {path.suffix!r} (use .safetensors, .pt or .pth)")


PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt")


def load_tensor_pickle(path: Path) -> Any:
    """The object a ``.pt``/``.pth``/``.ckpt`` file holds, unpickled with ``weights_only=True``
    onto the CPU (tensors saved on a GPU load anywhere): only tensors, containers and plain
    values are rebuilt, so a pickle that would run code is refused, and nothing in it runs."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors come in many types; all mean "refused"
        raise WeightsError(
            f"{path}: refused to load: not a plain tensor checkpoint ({refusal_reason(error)}). "
            f"Only tensors are unpickled, so nothing in the file was run; use a .safetensors "
            f"file, or a .pth holding only tensors"
        ) from error


def check_finite(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse NaN and infinite weights: one of them turns every output pixel into NaN,
    which the image writers would store as black."""
    for key, tensor in state_dict.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            count = int((~torch.isfinite(tensor)).sum())
            raise WeightsError(
                f"{path}: tensor {key!r} holds {count} NaN or infinite value(s): the file is damaged, or "
                f"was saved from a run that diverged; use another weights file"
            )


def refusal_reason(error: Exception) -> str:
    """What torch's loading error says was wrong, in a sentence. A weights-only refusal
    also advises loading with ``weights_only=False`` (running the file's code), which is
    not advice to pass on about an untrusted file."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    found = next((line for line in lines if "Unsupported global" in line or "Unsupported operand" in line), None)
    if found is None:
        found = lines[0] if lines else type(error).__name__
    return found.split(". ")[0].removeprefix("WeightsUnpickler error: ")  # the first sentence says it


def load_weights_metadata(path: str | Path) -> dict[str, Any]:
    """The restore metadata of a ``.safetensors`` file, read from its header alone (no
    tensors); empty for other formats, which carry none."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"{path}: not a valid safetensors file ({error})") from error
    return _restore_metadata(header, path)


def _restore_metadata(header: dict[str, str], path: Path) -> dict[str, Any]:
    """The ``restore`` entry of a safetensors header (empty when the file has none)."""
    if "restore" not in header:
        return {}
    try:
        metadata = json.loads(header["restore"])
    except ValueError as error:
        raise WeightsError(f"{path}: damaged restore metadata in the file's header ({error})") from error
    if not isinstance(metadata, dict):
        raise WeightsError(f"{path}: damaged restore metadata in the file's header (not a table)")
    for key, kind in METADATA_TYPES.items():
        if key in metadata and not isinstance(metadata[key], kind):
            shown = json.dumps(metadata[key])[:60]
            raise WeightsError(
                f"{path}: damaged restore metadata in the file's header ({key} is {shown}, not {METADATA_KINDS[kind]})"
            )
    return metadata


def sha256_of(path: Path) -> str:
    """The file's sha256, as the manifest and the user registry record it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

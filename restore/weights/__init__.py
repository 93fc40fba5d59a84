"""Inference weights: the file format and the shipped-weights manifest.

- :mod:`restore.weights.format`: the ``.safetensors`` file (tensors, the network spec and
  task in its header, fp16/int8 storage) and safe reading of ``.pt``/``.pth`` tensor files;
- :mod:`restore.weights.manifest`: ``weights/manifest.toml``, the shipped files with their
  sha256, recipe and measured metrics, and ``--weights NAME`` resolution;
- :mod:`restore.weights.user_models`: the user's own named models (``restore weights add``).

Training checkpoints (``last.pt``) are the engine's: :mod:`restore.engine.checkpoint`.
"""

from __future__ import annotations

from restore.weights.format import WeightsError, load_weights, load_weights_metadata, save_weights, sha256_of
from restore.weights.manifest import (
    BF16_CHECK,
    WeightsEntry,
    export_weights,
    fingerprint,
    headline_metric,
    load_manifest,
    record_metrics,
    resolve_weights,
    weights_dir,
)

__all__ = [
    "BF16_CHECK",
    "WeightsEntry",
    "WeightsError",
    "export_weights",
    "fingerprint",
    "headline_metric",
    "load_manifest",
    "load_weights",
    "load_weights_metadata",
    "record_metrics",
    "resolve_weights",
    "save_weights",
    "sha256_of",
    "weights_dir",
]

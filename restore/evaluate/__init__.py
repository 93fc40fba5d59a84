"""Benchmarks with the literature's protocols: folder-vs-folder scoring and the
synthetic-noise denoising benchmark."""

from restore.evaluate.denoise import BASELINES, DenoiseMethod, DenoiseTable, evaluate_denoise, model_method
from restore.evaluate.pairs import EvalTable, ImageScore, evaluate_pairs

__all__ = [
    "BASELINES",
    "DenoiseMethod",
    "DenoiseTable",
    "EvalTable",
    "ImageScore",
    "evaluate_denoise",
    "evaluate_pairs",
    "model_method",
]

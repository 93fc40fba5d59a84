"""Validation during training: fixed held-out pairs, their PSNR/SSIM, ``metrics.jsonl``,
and whether the scores have stopped moving."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from restore.engine.config import TrainConfig
from restore.engine.data import PairMaker, ab_halves, pad_to, sample_generator
from restore.metrics import psnr, ssim
from restore.metrics.quality import SSIM_WINDOW

VALIDATION_SEED = 20_240_601  # fixed so validation pairs never change between runs


# Validations in a row whose PSNR agrees to within STALL_TOLERANCE_DB: the output has stopped
# changing. Training noise moves validation PSNR by far more than this between evaluations.
STALL_VALIDATIONS = 3
STALL_TOLERANCE_DB = 1e-4

# runs ``batch`` through the named inference generators in turn; each output, as float
Generate = Callable[[Sequence[str], torch.Tensor], list[torch.Tensor]]


def validation_pairs(
    config: TrainConfig, task: PairMaker, images: list[torch.Tensor], multiple: int
) -> list[tuple[torch.Tensor, ...]]:
    """Fixed (input, target) pairs from the held-out ``images``; the same in every run.
    ``multiple``: the generator's size multiple (pix2pix_unet: 2 ** num_downs)."""
    data = config.data
    pairs = []
    for index, image in enumerate(images[: data.val_images]):
        if data.layout == "aligned":
            a, b = ab_halves(image)
            pair = (a, b) if data.direction == "AtoB" else (b, a)
            pairs.append(tuple(crop_to(x, multiple, 256) for x in pair))
        else:
            clean = crop_to(image, multiple * task.scale, 256 * task.scale)
            pairs.append(task.make_pair(clean, config.task_options, sample_generator(VALIDATION_SEED, index)))
    return pairs


def crop_to(image: torch.Tensor, multiple: int, limit: int) -> torch.Tensor:
    """Centre crop to at most ``limit`` pixels a side and a multiple of ``multiple``. An
    image too small for that, or for SSIM's window, is padded first (as training crops are)."""
    smallest = -(-SSIM_WINDOW // multiple) * multiple
    image = pad_to(image, smallest, smallest)
    height = min(image.shape[-2], limit) // multiple * multiple
    width = min(image.shape[-1], limit) // multiple * multiple
    top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
    return image[..., top : top + height, left : left + width]


def validation_scores(pairs: list[tuple[torch.Tensor, ...]], generate: Generate) -> dict[str, float]:
    """Mean PSNR and SSIM of the generator ``G`` over ``pairs``."""
    scores = {"psnr": 0.0, "ssim": 0.0}
    for source, target, *_ in pairs:  # *_: a task's loss weights
        output = generate(["G"], source[None])[-1].clamp(0, 1).cpu()
        scores["psnr"] += psnr(output, target[None]) / len(pairs)
        scores["ssim"] += ssim(output, target[None]) / len(pairs)
    return scores


def record_validation(run_dir: Path, step: int, scores: dict[str, float], writer: Any) -> None:
    """Log ``scores`` to TensorBoard (``writer``, if any) and ``metrics.jsonl``."""
    if writer is not None:
        for name, value in scores.items():
            writer.add_scalar(f"val/{name}", value, step)
    with open(run_dir / "metrics.jsonl", "a") as log:
        log.write(json.dumps({"step": step, **scores}) + "\n")


def stalled_psnr(run_dir: Path) -> float | None:
    """The validation PSNR when the last ``STALL_VALIDATIONS`` ones in metrics.jsonl (so a
    resumed run counts the ones before it) agree to within ``STALL_TOLERANCE_DB``, else None."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    recent = [json.loads(line)["psnr"] for line in lines[-STALL_VALIDATIONS:]]
    if len(recent) == STALL_VALIDATIONS and max(recent) - min(recent) <= STALL_TOLERANCE_DB:
        return recent[-1]
    return None

"""Sample grids, ``samples/step_N.png``: what the generator makes of a few fixed images,
for a person to look at while a run trains."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

from restore.engine.data import list_images
from restore.engine.training_data import TrainingFiles
from restore.engine.validation import Generate, crop_to
from restore.io.atomic import atomic_write

# CycleGAN's generators, each with the one that maps its output back
_BACKWARD = {"G_A": "G_B", "G_B": "G_A"}


def paired_rows(pairs: list[tuple[torch.Tensor, ...]], generate: Generate) -> list[torch.Tensor]:
    """Rows of input | output | target for the first four validation pairs; an input smaller
    than its target (super-resolution) is enlarged to it, pixels repeated."""
    rows = []
    for source, target, *_ in pairs[:4]:  # *_: a task's loss weights
        output = generate(["G"], source[None])[-1].clamp(0, 1).cpu()[0]
        shown_input = source[: target.shape[0]]
        if shown_input.shape[-1] != target.shape[-1]:
            shown_input = torch.nn.functional.interpolate(shown_input[None], size=target.shape[-2:], mode="nearest")[0]
        rows += [shown_input.clamp(0, 1), output, target]
    return rows


def translation_samples(files: TrainingFiles, multiple: int) -> list[tuple[torch.Tensor, str]]:
    """Unpaired runs have no targets to validate against; their sample grids show the
    first two images of each domain (after ``direction``) with the generator to apply.
    ``multiple``: the generators' size multiple."""
    data = files.config.data
    folders = ("trainA", "trainB") if data.direction == "AtoB" else ("trainB", "trainA")
    samples = []
    for generator, folder in zip(("G_A", "G_B"), folders):
        paths = [path for root in files.train for path in list_images(Path(root) / folder, files.suffixes)]
        firsts = (image for path in paths for image in files.read(path)[:1])
        images = list(itertools.islice(firsts, 2))
        samples += [(crop_to(image, multiple, 256), generator) for image in images]
    return samples


def translation_rows(samples: list[tuple[torch.Tensor, str]], generate: Generate) -> list[torch.Tensor]:
    """Rows of real | translated | translated back (CycleGAN's real, fake, rec)."""
    rows = []
    for image, name in samples:
        translated, restored = generate([name, _BACKWARD[name]], image[None])
        rows += [image.clamp(0, 1), translated.clamp(0, 1).cpu()[0], restored.clamp(0, 1).cpu()[0]]
    return rows


def save_grid(run_dir: Path, step: int, rows: list[torch.Tensor]) -> None:
    """``samples/step_N.png``: the images three to a row. Held-out images differ in size
    (validation crops them only down to a limit): they are padded to the largest, as
    the grid needs equal tiles."""
    from torchvision.utils import save_image

    height, width = max(row.shape[-2] for row in rows), max(row.shape[-1] for row in rows)
    rows = [torch.nn.functional.pad(row, (0, width - row.shape[-1], 0, height - row.shape[-2])) for row in rows]
    path = run_dir / "samples" / f"step_{step:07d}.png"
    atomic_write(path, lambda temp: save_image(rows, temp, nrow=3, format="png"))

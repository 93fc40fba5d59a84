"""Training data: folders of images in the three layouts users have.

- ``clean``: a folder of clean images; the task's degradation makes (input, target) pairs
  on the fly, so one folder of photos trains any task;
- ``aligned``: pix2pix's A|B side-by-side images;
- ``unaligned``: CycleGAN's ``trainA/`` and ``trainB/`` folders.

Every sample is a pure function of ``(seed, sample_index)``: its image, crop, flips and
degradation are drawn from a generator seeded by that pair. A resumed run therefore sees
exactly the samples an uninterrupted run would, whatever the number of loader workers,
without saving any loader state.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from restore.io.convert import array_to_tensor, luma
from restore.io.files import IMAGE_SUFFIXES
from restore.io.image import read_image


def list_images(folder: str | Path, suffixes: Collection[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Files with ``suffixes`` under ``folder`` (recursive), in a stable order; a file
    given instead of a folder is itself the list (recipes name held-out files)."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: training folder does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes)
    if not paths:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(sorted(suffixes))})")
    return paths


def load_image_tensor(path: Path, channels: int) -> torch.Tensor:
    """``(C, H, W)`` float tensor with the channel count the network wants."""
    image = array_to_tensor(read_image(path).pixels)[0]
    if image.shape[0] == channels:
        return image
    if channels == 1:  # BT.601 luma, as the grey benchmarks were made
        return luma(image)
    return image.expand(channels, -1, -1).clone()


class PairMaker(Protocol):
    """What the ``clean`` layout needs of a task (a :class:`restore.tasks.base.Task` is
    one): the caller hands the task in, so the engine never imports the tasks."""

    scale: int  # output size / input size: crops are taken at the target's size

    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        """``(network_input, target[, loss_weight])`` from one clean crop, drawing only from ``generator``."""
        ...


Pixels = TypeVar("Pixels", torch.Tensor, np.ndarray)


def ab_halves(image: Pixels, width_axis: int = -1) -> tuple[Pixels, Pixels]:
    """pix2pix's A|B side-by-side image as its A (left) and B (right) halves, split along
    ``width_axis`` (-1 for a ``(C, H, W)`` tensor, 1 for an ``(H, W, C)`` array). An odd
    last column belongs to neither half, so both have the same size."""
    half = image.shape[width_axis] // 2
    before = (slice(None),) * (width_axis % image.ndim)
    return image[(*before, slice(0, half))], image[(*before, slice(half, 2 * half))]


def sample_generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def pad_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(C, H, W)`` extended to at least ``height`` x ``width`` by repeating its last row
    and column (an image smaller than a crop still trains, as in Real-ESRGAN's datasets)."""
    pad_h, pad_w = max(0, height - image.shape[-2]), max(0, width - image.shape[-1])
    if not (pad_h or pad_w):
        return image
    return torch.nn.functional.pad(image[None], (0, pad_w, 0, pad_h), mode="replicate")[0]


def random_crop(image: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A ``size`` x ``size`` crop; images smaller than that are padded first (:func:`pad_to`)."""
    image = pad_to(image, size, size)
    _, height, width = image.shape
    top = int(torch.randint(height - size + 1, (1,), generator=generator))
    left = int(torch.randint(width - size + 1, (1,), generator=generator))
    return image[:, top : top + size, left : left + size]


def random_dihedral(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One of the 8 flips/rotations, the standard augmentation for restoration."""
    choice = int(torch.randint(8, (1,), generator=generator))
    if choice & 1:
        image = image.flip(-1)
    return torch.rot90(image, choice >> 1, dims=(-2, -1))


class DegradedPairs(Dataset):
    """``clean`` layout: random crops of clean images, degraded by the task."""

    def __init__(
        self, images: list[torch.Tensor], task: PairMaker, options: dict[str, Any], crop: int, seed: int
    ) -> None:
        self.images, self.task, self.options, self.crop, self.seed = images, task, options, crop, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = sample_generator(self.seed, index)
        image = self.images[int(torch.randint(len(self.images), (1,), generator=generator))]
        clean = random_dihedral(random_crop(image, self.crop * self.task.scale, generator), generator)
        return self.task.make_pair(clean.contiguous(), self.options, generator)


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """``(C, H, W)`` resized to ``size`` x ``size`` (bicubic, antialiased, clipped to [0, 1]):
    pix2pix's and CycleGAN's ``resize_and_crop``. With ``size`` larger than the crop (286
    for 256) the random crops jitter by up to 30 pixels, their main augmentation."""
    resized = torch.nn.functional.interpolate(image[None], size=(size, size), mode="bicubic", antialias=True)
    return resized[0].clamp(0, 1)


class AlignedPairs(Dataset):
    """pix2pix ``aligned`` layout: each file holds A (left half) and B (right half).

    ``load_size`` > 0 resizes each half to that square once, before the random crops."""

    def __init__(
        self, images: list[torch.Tensor], crop: int, seed: int, direction: str = "AtoB", load_size: int = 0
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be AtoB or BtoA, not {direction!r}")
        if load_size:
            images = [torch.cat([resize_square(half, load_size) for half in ab_halves(image)], dim=-1) for image in images]
        self.images, self.crop, self.seed, self.direction = images, crop, seed, direction

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = sample_generator(self.seed, index)
        image = self.images[int(torch.randint(len(self.images), (1,), generator=generator))]
        both = torch.cat(ab_halves(image), dim=0)  # crop A and B together
        both = random_crop(both, self.crop, generator)
        if int(torch.randint(2, (1,), generator=generator)):
            both = both.flip(-1)
        a, b = both.chunk(2, dim=0)
        return (a, b) if self.direction == "AtoB" else (b, a)


class UnalignedPairs(Dataset):
    """CycleGAN ``unaligned`` layout: independent random images from domains A and B.

    ``load_size`` > 0 resizes every image to that square once, before the random crops."""

    def __init__(
        self, images_a: list[torch.Tensor], images_b: list[torch.Tensor], crop: int, seed: int, load_size: int = 0
    ) -> None:
        if load_size:
            images_a = [resize_square(image, load_size) for image in images_a]
            images_b = [resize_square(image, load_size) for image in images_b]
        self.images_a, self.images_b, self.crop, self.seed = images_a, images_b, crop, seed

    def __len__(self) -> int:
        return max(len(self.images_a), len(self.images_b))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = sample_generator(self.seed, index)
        crops = []
        for images in (self.images_a, self.images_b):
            image = images[int(torch.randint(len(images), (1,), generator=generator))]
            crop = random_crop(image, self.crop, generator)
            crops.append(crop.flip(-1) if int(torch.randint(2, (1,), generator=generator)) else crop)
        return crops[0], crops[1]


class StepSampler(Sampler[int]):
    """Endless global sample indices, starting at ``start_step``.

    Step ``s`` of rank ``r`` (of ``world`` processes) gets indices
    ``(s * world + r) * batch_size + [0, batch_size)``, so ranks never share a sample and
    resuming at step ``s`` continues the exact sequence."""

    def __init__(self, batch_size: int, start_step: int = 0, rank: int = 0, world: int = 1) -> None:
        self.batch_size, self.start_step, self.rank, self.world = batch_size, start_step, rank, world

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            first = (step * self.world + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)
            step += 1

"""Medical scans: CT/MR denoising and MR super-resolution, one task with three degradations.

``task_options``:

- ``modality`` (``ct`` | ``mr``) and ``degradation``: ``lowdose`` (CT, projection-domain
  Poisson noise), ``rician`` (MR noise) or ``kspace`` (MR low resolution by k-space
  truncation, with an optional slice-thickness blur and Rician noise); see
  :mod:`restore.tasks.medical_degradations`;
- ``context``: neighbouring slices on each side given to the network as extra channels
  (2.5-D); 0 = plain 2-D;
- ``axis``: the axis training volumes are sliced along; ``slice_step``: every n-th slice;
- ``training_axes``: NIfTI/``.npy`` training volumes are sliced along each of these axes
  (default: ``axis`` alone), so the network also sees sagittal and coronal anatomy; what it
  is evaluated and run on is still sliced along ``axis``;
- ``voxel_scales``: training volumes are also read at these integer multiples of their
  voxel size (the mean of each block, what a scanner with bigger voxels records), so weights
  trained on 1 mm scans meet 2 mm ones prepared; default ``[1]``;
- ``stored_slope`` / ``stored_intercept``: how stored values of training *images*
  (16-bit PNG/TIFF, ``.npy``, which carry no rescale tags) become physical units, e.g.
  intercept -1024 for CT slices stored as HU + 1024. DICOM and NIfTI use their own tags.
- ``lowdose``: ``photons_min``/``photons_max`` (counts per ray, drawn log-uniformly),
  ``pixel_mm``; ``rician``/``kspace``: ``sigma_min``/``sigma_max`` (noise standard
  deviation in normalised units, see :mod:`restore.io.intensity`); ``kspace``: ``scale``
  (2, 3 or 4), ``blur_max`` (largest slice-profile FWHM in pixels) and ``blur_fraction``
  (share of samples blurred).

Training files are slices (16-bit PNG/TIFF) or whole volumes (NIfTI, DICOM, ``.npy``):
:meth:`MedicalTask.training_images` reads either, normalises each *volume* (MR
percentiles are a property of the volume, not of a crop) and returns its slices as
``(2 * context + 1, H, W)`` stacks; the shared trainer crops and augments them, and
:meth:`MedicalTask.make_pair` degrades every channel and keeps the centre slice as target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.engine.volume import slice_stack
from restore.io.files import SIXTEEN_BIT_SUFFIXES
from restore.io.intensity import Normalisation, normalisation_for
from restore.tasks.base import Task, TaskOptions
from restore.tasks import medical_degradations as physics

DEGRADATIONS = {"lowdose": "ct", "rician": "mr", "kspace": "mr"}
SCALES = (2, 3, 4)
TRAINING_SUFFIXES = (*SIXTEEN_BIT_SUFFIXES, ".npy", ".nii", ".gz", ".dcm")
CONTENT_LEVEL = 0.05  # volume slices with under CONTENT_SHARE voxels above this are background
CONTENT_SHARE = 0.1
DEFAULT_OPTIONS: dict[str, Any] = {
    "modality": "mr",
    "degradation": "rician",
    "context": 0,
    "axis": 2,
    "slice_step": 1,
    "training_axes": [],
    "voxel_scales": [1],
    "stored_slope": 1.0,
    "stored_intercept": 0.0,
    "photons_min": 2e4,
    "photons_max": 5e5,
    "pixel_mm": 0.7,
    "sigma_min": 0.005,
    "sigma_max": 0.05,
    "scale": 2,
    "blur_max": 0.0,
    "blur_fraction": 0.0,
}


def resolved_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults updated with ``options``, checked."""
    resolved = {**DEFAULT_OPTIONS, **(options or {})}
    degradation, modality = resolved["degradation"], resolved["modality"]
    if degradation not in DEGRADATIONS:
        raise ValueError(f"medical: unknown degradation {degradation!r}; known: {', '.join(DEGRADATIONS)}")
    if DEGRADATIONS[degradation] != modality:
        raise ValueError(f"medical: the {degradation} degradation is for {DEGRADATIONS[degradation].upper()}, not {modality!r}")
    if not all(axis in (0, 1, 2) for axis in resolved["training_axes"]):
        raise ValueError(f"medical: training_axes are volume axes 0, 1 and 2, not {resolved['training_axes']!r}")
    if not resolved["voxel_scales"] or not all(isinstance(s, int) and s >= 1 for s in resolved["voxel_scales"]):
        raise ValueError(f"medical: voxel_scales must be positive integers, not {resolved['voxel_scales']!r}")
    if degradation == "kspace" and resolved["scale"] not in SCALES:
        raise ValueError(f"medical: scale must be one of {SCALES}, not {resolved['scale']!r}")
    return resolved


@dataclass(frozen=True)
class MedicalOptions(TaskOptions):
    """``neighbours``: the ``(1, 2 * context, H, W)`` neighbouring slices of the slice run
    (see restore.engine.volume), for 2.5-D weights; None for 2-D ones."""

    neighbours: torch.Tensor | None = None


class MedicalTask(Task):
    name = "medical"
    training_suffixes = TRAINING_SUFFIXES
    options_type = MedicalOptions

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.options = resolved_options(options)
        self.scale = int(self.options["scale"]) if self.options["degradation"] == "kspace" else 1

    def default_config(self) -> dict[str, Any]:
        context = int(self.options["context"])
        return {
            "task_options": dict(self.options),  # every knob, so --print-config and the weights show them
            "generator": {
                "arch": "unet",
                "in_channels": 1,
                "out_channels": 1,
                "extra_channels": 2 * context,
                "base_channels": 32,
                "depth": 3,
                "max_channels": 128,
                "blocks_per_level": 2,
                "residual": True,
                "upscale": self.scale,
            },
            "data": {"crop": 64},
            "loss": {"reconstruction": "l1"},
        }

    def default_weights(self, channels: int) -> list[str]:
        del channels
        modality, degradation = self.options["modality"], self.options["degradation"]
        if degradation == "kspace":
            return [f"medical-{modality}-sr-x{self.scale}"]
        return [f"medical-{modality}-denoise"]

    spatial_options = ("neighbours",)

    def inference_input(self, image: torch.Tensor, options: MedicalOptions) -> torch.Tensor:
        """The neighbouring slices, if any, appended as channels."""
        neighbours = options.neighbours
        return image if neighbours is None else torch.cat([image, neighbours], dim=1)

    def training_images(self, path: Path, channels: int) -> list[torch.Tensor]:
        del channels  # always one grey slice plus its context
        stacks, _, _ = volume_slices(path, self.options, training=True)
        return [torch.from_numpy(stack) for stack in stacks]

    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Degrade every slice of a ``(2 * context + 1, H, W)`` normalised stack with the
        same dose/noise level/blur (independent noise per slice); the target is the
        centre slice (for ``kspace``, at the full resolution)."""
        options = resolved_options(options)
        degraded = degrade_stack(clean.double().numpy(), options, generator)
        return torch.from_numpy(degraded.astype(np.float32)), clean[:1].contiguous()


def degrade_stack(stack: np.ndarray, options: dict[str, Any], generator: torch.Generator) -> np.ndarray:
    """The degradation named by ``options`` applied to a ``(C, H, W)`` normalised stack.

    A slice repeated in the stack (a 2-D image's context, a volume's end) is degraded
    once and repeated, because at inference it is the *degraded* slice that repeats."""
    first = [next(j for j in range(i + 1) if np.array_equal(stack[j], stack[i])) for i in range(len(stack))]
    unique = sorted(set(first))
    degraded = _degrade_slices(stack[unique], options, generator)
    return degraded[[unique.index(j) for j in first]]


def _degrade_slices(stack: np.ndarray, options: dict[str, Any], generator: torch.Generator) -> np.ndarray:
    degradation = options["degradation"]
    if degradation == "lowdose":
        low, high = math.log(options["photons_min"]), math.log(options["photons_max"])
        photons = math.exp(low + (high - low) * float(torch.rand((), generator=generator)))
        ct = normalisation_for("ct", stack)
        return np.stack([
            ct.forward(physics.ct_low_dose(ct.inverse(s), photons, options["pixel_mm"], generator)) for s in stack
        ])
    sigma = options["sigma_min"] + (options["sigma_max"] - options["sigma_min"]) * float(torch.rand((), generator=generator))
    if degradation == "rician":
        return np.stack([physics.rician(s, sigma, generator) for s in stack])
    blurred = float(torch.rand((), generator=generator)) < options["blur_fraction"]
    fwhm = options["blur_max"] * float(torch.rand((), generator=generator)) if blurred else 0.0
    axis = int(torch.randint(2, (1,), generator=generator))
    low = [physics.kspace_downsample(physics.slice_thickness_blur(s, fwhm, axis), options["scale"]) for s in stack]
    return np.stack([physics.rician(s, sigma, generator) if sigma > 0 else s for s in low])


def with_stored_rescale(volume: Any, options: dict[str, Any]) -> Any:
    """``volume`` with the options' ``stored_slope``/``stored_intercept`` when its format
    has no rescale tags (PNG/TIFF, ``.npy``): the weights apply at inference the mapping
    their training slices were read with."""
    if volume.format not in ("image", "npy"):
        return volume
    return replace(volume, slope=float(options["stored_slope"]), intercept=float(options["stored_intercept"]))


def volume_slices(
    path: Path, options: dict[str, Any], training: bool = False
) -> tuple[list[np.ndarray], Normalisation, Any]:
    """The normalised ``(2 * context + 1, H, W)`` float32 stacks of a training file, with
    the volume's normalisation and the volume itself (for evaluation in stored units).

    Images are one slice; volumes are sliced along ``options["axis"]`` (4-D: every
    volume), every ``slice_step``-th slice, leaving out background slices. ``training``
    adds the ``training_axes`` and ``voxel_scales`` views (evaluation keeps the scan as it is)."""
    from restore.io.medical import read_volume

    options = resolved_options(options)
    volume = with_stored_rescale(read_volume(path), options)
    physical = volume.physical()
    single = volume.voxels.shape[0] == 1 and volume.format in ("image", "npy")
    choosable = volume.format in ("nifti", "npy") and not single
    axis = 0 if single else int(options["axis"]) if choosable else volume.slice_axis
    axes = [int(a) for a in options["training_axes"]] if training and choosable and options["training_axes"] else [axis]
    scales = [int(s) for s in options["voxel_scales"]] if training else [1]
    normalisation = normalisation_for(options["modality"], physical)
    normalised = np.clip(normalisation.forward(physical), 0.0, 1.0)
    volumes = [normalised] if normalised.ndim == 3 else [normalised[..., t] for t in range(normalised.shape[-1])]
    stacks = []
    for part in (block_mean(part, scale) for scale in scales for part in volumes):
        for slice_axis in axes:
            slices = np.moveaxis(part, slice_axis, 0)
            for index in range(0, slices.shape[0], int(options["slice_step"])):
                if slices.shape[0] > 1 and np.mean(slices[index] > CONTENT_LEVEL) < CONTENT_SHARE:
                    continue
                stacks.append(np.ascontiguousarray(slice_stack(slices, index, int(options["context"]))))
    if not stacks:
        raise ValueError(f"{path}: no slice with content")
    return stacks, normalisation, volume


def block_mean(volume: np.ndarray, factor: int) -> np.ndarray:
    """A 3-D ``volume`` with ``factor`` times bigger voxels: the mean of each block (axes of
    length 1, a single slice's, are kept), as float32; the edge voxels that fill no whole
    block are dropped."""
    if factor == 1:
        return volume
    factors = [factor if size > 1 else 1 for size in volume.shape]
    whole = volume[tuple(slice(0, size // f * f) for size, f in zip(volume.shape, factors))]
    blocks = [n for size, f in zip(whole.shape, factors) for n in (size // f, f)]
    return whole.reshape(blocks).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)

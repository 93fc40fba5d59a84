"""The held-out medical protocol (``restore eval medical``): our weights against the
classical baselines on the same degraded slices.

1. Each held-out file (NIfTI / DICOM volume, 16-bit PNG slice) is read and normalised
   exactly as in training (:func:`restore.tasks.medical.volume_slices`, with the task
   options stored in the weights); ``limit`` slices per file are taken evenly spaced
   among those with content.
2. Each slice stack is degraded by the weights' own degradation at one fixed ``level``
   (noise sd in normalised units for MR, photons per ray for CT; default: the middle of
   the training range), with a generator seeded by the slice's position in the run, so
   every method sees the same inputs in every run.
3. Methods: ``ours``; for denoising ``bm3d`` (the ``bm3d`` package, 2-D, told the true
   noise sd: the Rician sigma, or for CT the measured sd of noisy - clean, an oracle in
   BM3D's favour; on the magnitude image as it is, so the Rician bias of dark background
   stays, as it would in BM3D's usual use), ``bm4d`` (the ``bm4d`` package on the degraded
   slice with ``BM4D_CONTEXT`` neighbours each side, told the same sd: more context than
   the 2.5-D weights get), for MR ``bm4d_vst`` (the same through the Rician
   variance-stabilising transform and its exact unbiased inverse, restore.evaluate.rician:
   the strongest classical MR denoiser) and ``noisy`` (the input, the floor); for
   super-resolution ``cubic`` (MATLAB bicubic, restore.metrics.imresize) and
   ``zero_filled`` (zero-padded k-space).
4. PSNR and SSIM are measured in *stored* units (the file's own numbers, before
   RescaleSlope/Intercept), with the data range of the stored type: BitsStored for
   DICOM, the dtype for integer NIfTI/PNG (a 16-bit PNG counts 65535 even when its values
   stay below 4096), the volume's max - min for float volumes. Per-slice rescale values
   that differ within a DICOM series are approximated by the first slice's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.engine.data import sample_generator
from restore.engine.volume import context_indices
from restore.evaluate import rician
from restore.evaluate.optional import import_bm3d, import_bm4d
from restore.evaluate.report import json_number, mean_or_nan, write_json_file
from restore.metrics import psnr, ssim
from restore.metrics.imresize import imresize
from restore.model import Restorer
from restore.tasks import medical_degradations as physics
from restore.tasks.medical import MedicalTask, resolved_options, volume_slices

EVAL_SEED = 20_251_125
DENOISE_METHODS = ("ours", "bm3d", "bm4d", "bm4d_vst", "noisy")
RICIAN_ONLY = ("bm4d_vst",)
BM4D_METHODS = ("bm4d", "bm4d_vst")
BM4D_CONTEXT = 3  # neighbours each side the volumetric baselines see
SUPERRES_METHODS = ("ours", "cubic", "zero_filled")
LEVEL_KEYS = {"lowdose": ("photons_min", "photons_max"), "rician": ("sigma_min", "sigma_max"),
              "kspace": ("sigma_min", "sigma_max")}


@dataclass
class MedicalTable:
    """One row per (file, slice, method); :meth:`to_text` shows the means per method."""

    settings: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def means(self) -> dict[str, dict[str, float]]:
        methods = list(dict.fromkeys(row["method"] for row in self.rows))
        return {m: {k: mean_or_nan([r[k] for r in self.rows if r["method"] == m]) for k in ("psnr", "ssim")}
                for m in methods}

    def to_text(self) -> str:
        lines = [f"{self.settings['task']} on {len({r['file'] for r in self.rows})} file(s), "
                 f"{len({(r['file'], r['slice']) for r in self.rows})} slice(s), level {self.settings['level']:g}",
                 f"{'method':<12} {'PSNR':>8} {'SSIM':>7}"]
        lines += [f"{m:<12} {v['psnr']:8.2f} {v['ssim']:7.4f}" for m, v in self.means().items()]
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        means = {m: {k: json_number(v) for k, v in values.items()} for m, values in self.means().items()}
        rows = [{k: json_number(v) if isinstance(v, float) else v for k, v in row.items()} for row in self.rows]
        write_json_file(path, {"settings": self.settings, "means": means, "rows": rows})


def default_level(options: dict[str, Any]) -> float:
    """The middle of the training range (geometric for photon counts)."""
    low, high = (options[key] for key in LEVEL_KEYS[options["degradation"]])
    return math.sqrt(low * high) if options["degradation"] == "lowdose" else (low + high) / 2


def evaluate_medical(
    weights: str,
    files: list[Path],
    *,
    limit: int = 4,
    level: float | None = None,
    methods: tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> MedicalTable:
    """Run the protocol above; ``settings`` go to the :class:`Restorer` (device, tile...)."""
    model = Restorer.from_weights(weights, **settings)
    if model.task.name != "medical":
        raise ValueError(f"weights {weights!r} are for {model.task.name}, not medical")
    options = resolved_options(model.metadata.get("task_options", {}))
    level = default_level(options) if level is None else level
    options.update(dict.fromkeys(LEVEL_KEYS[options["degradation"]], level))
    methods = methods or default_methods(options["degradation"])
    _check_methods(methods, options["degradation"])
    table = MedicalTable({"weights": model.name, "task": f"medical {options['modality']} {options['degradation']}",
                          "level": level, "limit": limit, "seed": EVAL_SEED, "methods": list(methods)})
    task = MedicalTask(options)
    context = int(model.metadata["network"].get("extra_channels", 0)) // 2
    # a wider stack only adds slices after the model's own (context_indices' order), whose
    # noise is drawn after theirs: the model's inputs stay the same
    options["context"] = max(context, BM4D_CONTEXT) if set(methods) & set(BM4D_METHODS) else context
    count = 0
    for path in files:
        stacks, normalisation, volume = volume_slices(path, options)
        to_stored, data_range = _stored_units(volume, normalisation)
        for index in np.unique(np.linspace(0, len(stacks) - 1, min(limit, len(stacks))).round().astype(int)):
            stack = _crop_to_multiple(torch.from_numpy(stacks[index]), task.scale)
            degraded, target = task.make_pair(stack, options, sample_generator(EVAL_SEED, count))
            count += 1
            outputs = {m: _method(m, model, degraded, target, options, context) for m in methods}
            reference = to_stored(target[0].double().numpy())
            for method, output in outputs.items():
                prediction = to_stored(output)
                table.rows.append({"file": path.name, "slice": int(index), "method": method, "data_range": data_range,
                                   "psnr": psnr(prediction, reference, data_range=data_range),
                                   "ssim": ssim(prediction, reference, data_range=data_range)})
            if progress:
                scores = ", ".join(f"{r['method']} {r['psnr']:.2f}" for r in table.rows[-len(methods):])
                progress(f"{path.name} slice {index}: {scores}")
    return table


def default_methods(degradation: str) -> tuple[str, ...]:
    if degradation == "kspace":
        return SUPERRES_METHODS
    return DENOISE_METHODS if degradation == "rician" else tuple(m for m in DENOISE_METHODS if m not in RICIAN_ONLY)


def _check_methods(methods: tuple[str, ...], degradation: str) -> None:
    """Refuse what cannot run before any slice is run, saying which extra to install."""
    known = SUPERRES_METHODS if degradation == "kspace" else DENOISE_METHODS
    unknown = [m for m in methods if m not in known or (m in RICIAN_ONLY and degradation != "rician")]
    if unknown:
        raise ValueError(f"method {unknown[0]!r} does not apply to {degradation} weights: choose from "
                         f"{', '.join(default_methods(degradation))}")
    if "bm3d" in methods:
        import_bm3d()
    if set(methods) & set(BM4D_METHODS):
        import_bm4d()


def _method(name: str, model: Restorer, degraded: torch.Tensor, target: torch.Tensor,
            options: dict[str, Any], context: int) -> np.ndarray:
    """One method's normalised output for the centre slice, float64 ``(H, W)``; the
    model sees the centre and its ``context`` neighbours each side."""
    centre = degraded[0].double().numpy()
    if name == "ours":
        neighbours = {"neighbours": degraded[None, 1:2 * context + 1]} if context else {}
        return model.run(degraded[None, :1], **neighbours)[0][0, 0].double().numpy()
    if name == "noisy":
        return centre
    if name == "bm3d":
        return np.asarray(import_bm3d().bm3d(centre, sigma_psd=_noise_sd(centre, target, options)), dtype=np.float64)
    if name in BM4D_METHODS:
        volume, centre_index = _spatial_volume(degraded.double().numpy(), options["context"])
        bm4d = import_bm4d()
        denoise = lambda data, sd: np.asarray(bm4d.bm4d(data, sigma_psd=sd), dtype=np.float64)  # noqa: E731
        sigma = _noise_sd(centre, target, options)
        denoised = rician.stabilised(denoise, volume, sigma) if name == "bm4d_vst" else denoise(volume, sigma)
        return denoised[..., centre_index]
    if name == "cubic":
        return imresize(centre, options["scale"])
    if name == "zero_filled":
        return physics.zero_filled(centre, options["scale"])
    raise ValueError(f"unknown method {name!r}")


def _noise_sd(centre: np.ndarray, target: torch.Tensor, options: dict[str, Any]) -> float:
    """What the classical denoisers are told: the true Rician sigma for MR, the measured
    sd of noisy - clean for CT (an oracle in their favour)."""
    if options["degradation"] == "rician":
        return float(options["sigma_max"])
    return float(np.std(centre - target[0].numpy()))


def _spatial_volume(stack: np.ndarray, context: int) -> tuple[np.ndarray, int]:
    """A ``(2 * context + 1, H, W)`` stack in context_indices' order as an ``(H, W, D)``
    volume in slice order (what bm4d takes), each distinct slice once (a volume's end
    and a 2-D image repeat theirs), and the centre slice's index in it."""
    offsets = context_indices(context, 2 * context + 1, context)  # positions relative to the centre
    order = sorted(range(len(offsets)), key=lambda position: offsets[position])
    candidates = [p for p in order if p == 0 or not np.array_equal(stack[p], stack[0])]
    kept = [p for i, p in enumerate(candidates)
            if not any(np.array_equal(stack[p], stack[q]) for q in candidates[:i])]
    return np.moveaxis(stack[kept], 0, -1), kept.index(0)


def _stored_units(volume: Any, normalisation: Any) -> tuple[Callable, float]:
    """Normalised -> stored values, and the stored type's data range."""
    slope, intercept = (float(np.ravel(value)[0]) for value in (volume.slope, volume.intercept))
    if volume.value_range is not None:
        data_range = volume.value_range[1] - volume.value_range[0]
    else:
        data_range = float(np.ptp(volume.voxels))
    return (lambda normalised: (normalisation.inverse(normalised) - intercept) / slope), data_range


def _crop_to_multiple(stack: torch.Tensor, multiple: int) -> torch.Tensor:
    height, width = (size // multiple * multiple for size in stack.shape[-2:])
    return stack[..., :height, :width].contiguous()

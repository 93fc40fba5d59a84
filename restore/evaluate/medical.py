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
   stays, as it would in BM3D's usual use) and ``noisy`` (the input, the floor); for
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
from restore.evaluate.optional import import_bm3d
from restore.evaluate.report import json_number, mean_or_nan, write_json_file
from restore.metrics import psnr, ssim
from restore.metrics.imresize import imresize
from restore.model import Restorer
from restore.tasks import medical_degradations as physics
from restore.tasks.medical import MedicalTask, resolved_options, volume_slices

EVAL_SEED = 20_251_125
DENOISE_METHODS = ("ours", "bm3d", "noisy")
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
    superres = options["degradation"] == "kspace"
    methods = methods or (SUPERRES_METHODS if superres else DENOISE_METHODS)
    if "bm3d" in methods:
        import_bm3d()  # before any slice is run: says which extra to install
    table = MedicalTable({"weights": model.name, "task": f"medical {options['modality']} {options['degradation']}",
                          "level": level, "limit": limit, "seed": EVAL_SEED, "methods": list(methods)})
    task = MedicalTask(options)
    context = int(model.metadata["network"].get("extra_channels", 0)) // 2
    options["context"] = context
    count = 0
    for path in files:
        stacks, normalisation, volume = volume_slices(path, options)
        to_stored, data_range = _stored_units(volume, normalisation)
        for index in np.unique(np.linspace(0, len(stacks) - 1, min(limit, len(stacks))).round().astype(int)):
            stack = _crop_to_multiple(torch.from_numpy(stacks[index]), task.scale)
            degraded, target = task.make_pair(stack, options, sample_generator(EVAL_SEED, count))
            count += 1
            outputs = {m: _method(m, model, degraded, target, options) for m in methods}
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


def _method(name: str, model: Restorer, degraded: torch.Tensor, target: torch.Tensor,
            options: dict[str, Any]) -> np.ndarray:
    """One method's normalised output for the centre slice, float64 ``(H, W)``."""
    centre = degraded[0].double().numpy()
    if name == "ours":
        neighbours = {"neighbours": degraded[None, 1:]} if degraded.shape[0] > 1 else {}
        return model.run(degraded[None, :1], **neighbours)[0][0, 0].double().numpy()
    if name == "noisy":
        return centre
    if name == "bm3d":
        bm3d = import_bm3d()
        sigma = options["sigma_max"] if options["degradation"] == "rician" else float(np.std(centre - target[0].numpy()))
        return np.asarray(bm3d.bm3d(centre, sigma_psd=sigma), dtype=np.float64)
    if name == "cubic":
        return imresize(centre, options["scale"])
    if name == "zero_filled":
        return physics.zero_filled(centre, options["scale"])
    raise ValueError(f"unknown method {name!r}")


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

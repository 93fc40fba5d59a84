"""Scans through the batch engine: ``restore medical denoise|superres``.

:class:`ScanUnits` tells the shared batch engine (restore.engine.batch) what a job is
for scans: one NIfTI / PNG / TIFF / ``.npy`` / DICOM file, or one DICOM series (the
files of a folder that share a SeriesInstanceUID), read and written with
restore.io.medical. :class:`VolumeProcessor` is the per-job work: intensities to the
network's range (restore.io.intensity), every slice along ``axis`` through the loaded
:class:`~restore.model.Restorer` (2.5-D with ``context`` neighbours,
restore.engine.volume), and back to stored values of the input's type. Reports, resume,
atomic writes and failure handling are the batch engine's; ``--in``/``--out`` may be
storage URLs (restore.io.storage: a job's objects are fetched for its reading, each output
uploaded atomically).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from functools import partial
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.engine.batch import BatchReport, BatchSettings, BatchUsageError, Job, Recorded, run_batch
from restore.engine.cluster import ClusterSettings, cluster_executor
from restore.engine.progress import InputProgress, Progress
from restore.engine.volume import process_slices
from restore.io.medical.dicom.compression import output_syntax
from restore.io.intensity import CT_WINDOW_HU, MR_PERCENTILE, apply_change, normalisation_for
from restore.io.limits import MAX_VOXELS
from restore.io.medical import Volume, output_name, read_volume, volume_kind, write_volume
from restore.io.storage import location, open_binary
from restore.model import Restorer, RestorerSettings, recorded_settings
from restore.schema import split_options
from restore.tasks.medical import DEGRADATIONS, MedicalTask, resolved_options, with_stored_rescale
from restore.weights import WeightsError, fingerprint, load_manifest

# (command, modality) -> the degradation its weights must have been trained on
DEGRADATION_FOR = {("denoise", "ct"): "lowdose", ("denoise", "mr"): "rician", ("superres", "mr"): "kspace"}


@dataclass(frozen=True)
class ScanBatchSettings:
    """The batch settings of scans: :class:`~restore.engine.batch.BatchSettings` but for the
    image-only ones (outputs keep their format), the size limit counting voxels."""

    suffix: str = ""
    overwrite: bool = False
    workers: int = 2
    quiet: bool = False
    max_voxels: int = MAX_VOXELS
    progress: InputProgress | None = None

    def batch_settings(self) -> BatchSettings:
        return BatchSettings(suffix=self.suffix, overwrite=self.overwrite, workers=self.workers, quiet=self.quiet,
                             max_pixels=self.max_voxels, progress=self.progress)


@dataclass(frozen=True)
class ScanOptions:
    """What ``restore medical COMMAND`` does to each scan (see :class:`VolumeProcessor`):
    ``weights`` (None: the shipped ones for the command and modality); ``axis`` (None: each
    scan's slice axis); ``context`` and ``expected_scale``, checked against the weights';
    ``strength`` (denoising: the share of the change kept), ``ct_window`` (CT: the HU range
    changed), ``mr_percentile`` (MR: the percentile mapped to 0.8); ``keep_compression``
    (a compressed DICOM is written losslessly compressed again)."""

    weights: str | None = None
    axis: int | None = None
    context: int | None = None
    expected_scale: int | None = None
    keep_compression: bool = False
    strength: float = 1.0
    ct_window: tuple[float, float] | None = None
    mr_percentile: float = MR_PERCENTILE


class ScanUnits:
    """Scan files and DICOM series as batch jobs; outputs keep the input's format and name
    (compressed DICOM: uncompressed, or losslessly compressed with ``keep_compression``)."""

    def __init__(self, keep_compression: bool = False, derivation: str = "processed") -> None:
        self.keep_compression, self.derivation = keep_compression, derivation

    def plan(self, files: list[tuple[Path, Path]], destination: Path, settings: BatchSettings) -> list[Job]:
        jobs, dicom = [], defaultdict(list)
        for path, relative in files:
            kind = volume_kind(path)
            if kind == "dicom":
                dicom[relative.parent].append((path, relative))
            else:
                output = destination / relative.parent / output_name(relative.name, settings.suffix) if kind else None
                jobs.append(Job(path, output))
        for folder, members in dicom.items():
            for series in _series(members):
                if len(series) == 1:
                    path, relative = series[0]
                    jobs.append(Job(path, destination / folder / output_name(relative.name, settings.suffix)))
                else:  # done when its last file (in name order) exists: see write_volume
                    last = max(output_name(relative.name, settings.suffix) for _, relative in series)
                    paths = tuple(path for path, _ in series)
                    jobs.append(Job(paths[0].parent, destination / folder / last, members=paths))
        return sorted(jobs, key=lambda job: str(job.source))

    def read(self, job: Job, settings: BatchSettings) -> Volume:
        return read_volume(job.source, list(job.members) if job.members else None, settings.max_pixels)

    def write(self, output: Path, result: Volume, settings: BatchSettings) -> None:
        if result.format == "dicom-series":
            write_volume(output.parent, result, name_suffix=settings.suffix, keep_compression=self.keep_compression,
                         derivation=self.derivation)
        else:
            write_volume(output, result, keep_compression=self.keep_compression, derivation=self.derivation)


def _series(members: list[tuple[Path, Path]]) -> list[list[tuple[Path, Path]]]:
    """The DICOM files of one folder grouped by SeriesInstanceUID (headers only); a file
    whose header cannot be read is a job of its own, which reports why when it is read."""
    try:
        import pydicom
    except ImportError:  # each file is then its own job, whose reading names the missing package
        return [[member] for member in members]
    groups: dict[str, list[tuple[Path, Path]]] = defaultdict(list)
    for index, (path, relative) in enumerate(members):
        try:
            with open_binary(path) as handle:  # an object in storage: only its header's bytes are fetched
                header = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
            key = str(header.get("SeriesInstanceUID", f"no-uid-{index}"))
        except Exception:  # noqa: BLE001 - any damage: let the reader explain it for this file
            key = f"unreadable-{index}"
        groups[key].append((path, relative))
    return list(groups.values())


class VolumeProcessor:
    """``restore medical COMMAND`` for one scan: ``(volume, source) -> (result, info)``.

    The weights are loaded when the processor is made, so wrong weights are a usage error
    before any file is touched; their task options say the modality and degradation they
    were trained for and their network how many context slices they take."""

    def __init__(self, command: str, modality: str, options: ScanOptions | None = None,
                 settings: RestorerSettings | None = None) -> None:
        if (command, modality) not in DEGRADATION_FOR:
            raise WeightsError(f"medical {command} of {modality.upper()} is not available: super-resolution is for MR")
        self.command, self.modality = command, modality
        self.scan, self.restorer_settings = options or ScanOptions(), settings or RestorerSettings()
        strength, ct_window, mr_percentile = self.scan.strength, self.scan.ct_window, self.scan.mr_percentile
        if not 0.0 <= strength <= 1.0:
            raise BatchUsageError(f"strength {strength} is outside 0..1")
        if strength != 1.0 and command != "denoise":
            raise BatchUsageError("--strength is for denoising (a blend of the output and the input)")
        if ct_window is not None and (modality != "ct" or ct_window[0] >= ct_window[1]):
            raise BatchUsageError(f"--ct-window {ct_window} needs --modality ct and LOW < HIGH")
        if mr_percentile != MR_PERCENTILE and modality != "mr":
            raise BatchUsageError("--mr-percentile is for --modality mr")
        degradation = DEGRADATION_FOR[command, modality]
        self.weights = name = self.scan.weights or self._default_weights(degradation)
        self.model = Restorer.from_weights(name, **dataclasses.asdict(self.restorer_settings))
        trained = self.model.metadata.get("task_options", {})
        if self.model.task.name != "medical" or trained.get("degradation") != degradation:
            what = f"{self.model.task.name} {trained.get('modality', '')} {trained.get('degradation', '')}".strip()
            raise WeightsError(f"weights {name!r} were trained for {what}, not medical {command} of {modality.upper()}")
        self.trained = resolved_options(trained)
        if self.scan.expected_scale not in (None, self.model.scale):
            raise WeightsError(f"weights {name!r} upscale x{self.model.scale}, not x{self.scan.expected_scale}")
        self.context = int(self.model.metadata["network"].get("extra_channels", 0)) // 2
        if self.scan.context not in (None, self.context):
            raise WeightsError(
                f"weights {name!r} take {self.context} context slice(s) each side, not {self.scan.context}")

    def recorded(self) -> Recorded:
        """The settings of this processor as report.json records them (see
        :func:`restore.model.recorded_settings`): command, modality, weights with their sha256,
        axis (None: each scan's own), context slices, the intensity options, the output
        compression, precision and ensemble."""
        record = recorded_settings(self.restorer_settings, scans=True, model=self.model)
        outputs = {"task": f"medical {self.command}", "modality": self.modality, "weights": fingerprint(self.weights),
                   "axis": self.scan.axis, "context": self.context, "strength": self.scan.strength,
                   "ct_window": list(self.scan.ct_window) if self.scan.ct_window else None,
                   "mr_percentile": self.scan.mr_percentile, "keep_compression": self.scan.keep_compression,
                   **record.outputs}
        return Recorded(outputs, record.execution)

    @staticmethod
    def _default_weights(degradation: str) -> str:
        task = MedicalTask({"modality": DEGRADATIONS[degradation], "degradation": degradation})
        (name,) = task.default_weights(1)
        if name not in load_manifest():
            raise WeightsError(f"no shipped {name} weights in this installation: train them with "
                               f"weights/recipes/{name}.toml and pass --weights RUN/best.safetensors")
        return name

    def __call__(
        self, volume: Volume, source: Path, progress: Progress | None = None
    ) -> tuple[Volume, dict[str, Any]]:
        """The restored scan and what was decided for it; ``progress`` is told the slices done."""
        del source  # named in the report by the batch engine
        stated = (volume.modality or "").lower()
        if stated in ("ct", "mr") and stated != self.modality:
            raise ValueError(f"the file says it is {stated.upper()} (DICOM Modality) but --modality is {self.modality}")
        volume = with_stored_rescale(volume, self.trained)
        axis = 0 if volume.format == "image" else (volume.slice_axis if self.scan.axis is None else self.scan.axis)
        scale = self.model.scale
        if scale != 1 and volume.format.startswith("dicom") and axis != volume.slice_axis:
            raise ValueError("DICOM super-resolution works on the acquired slices: leave --axis at its default (0)")
        physical = volume.physical()
        normalisation = normalisation_for(self.modality, physical, self.scan.mr_percentile)
        before = normalisation.forward(physical)
        after = process_slices(np.clip(before, 0.0, 1.0), self._run_slice, axis, self.context, progress)
        in_plane = tuple(a for a in range(3) if a != axis)
        if scale == 1:
            changed = apply_change(physical, before, after, normalisation, self.scan.strength, self.scan.ct_window)
            # an unchanged voxel keeps its stored value exactly (float64 cannot hold every int64)
            stored = np.where(changed == physical, volume.voxels, volume.from_physical(changed))
        else:
            stored = volume.from_physical(normalisation.inverse(after))
        result = volume.with_voxels(stored, in_plane, scale)
        info = {"weights": self.model.name, "modality": self.modality, "axis": axis, "context": self.context,
                "shape": list(result.voxels.shape), "normalisation": [normalisation.low, normalisation.high],
                "grouping": grouping_report(volume, axis), "strength": self.scan.strength,
                **({"ct_window": list(self.scan.ct_window or CT_WINDOW_HU)} if self.modality == "ct" else
                   {"mr_percentile": self.scan.mr_percentile})}
        if volume.format.startswith("dicom"):
            syntax = volume.header[0].file_meta.TransferSyntaxUID
            info["compression"] = output_syntax(syntax, self.scan.keep_compression)[1]
        return result, info

    def _run_slice(self, stack: np.ndarray) -> np.ndarray:
        """``(1 + 2 * context, H, W)`` -> the centre slice's result ``(H', W')``."""
        centre = torch.from_numpy(np.ascontiguousarray(stack[None, :1]))
        options = {"neighbours": torch.from_numpy(np.ascontiguousarray(stack[None, 1:]))} if self.context else {}
        output, _ = self.model.run(centre, **options)
        return output[0, 0].numpy()


def grouping_report(volume: Volume, axis: int) -> dict[str, Any]:
    """How the scan was split into 3-D volumes processed one at a time: DICOM by slice
    position and time point (restore.io.medical.dicom.grouping), NIfTI/.npy by their 4th axis."""
    if volume.grouping is not None:
        return volume.grouping.describe()
    volumes = volume.voxels.shape[3] if volume.voxels.ndim == 4 else 1
    return {"volumes": volumes, "slices_per_volume": int(volume.voxels.shape[axis]),
            "by": "4th axis" if volumes > 1 else None}


def process_scans(command: str, src: str | Path, dst: str | Path, *, modality: str, **options: Any) -> BatchReport:
    """Run ``restore medical COMMAND`` over every scan under ``src`` into ``dst`` (local
    paths or storage URLs).

    ``options``: the scan options (:class:`ScanOptions`: weights, axis, context, strength...),
    the model settings (device, precision, tile, tile_overlap, batch_size, ensemble, compile)
    and the batch settings (:class:`ScanBatchSettings`: suffix, overwrite, workers, quiet,
    max_voxels) and where it runs (``cluster``, ``cluster_actors``: one scan per task on a
    Ray cluster, :class:`~restore.engine.cluster.ClusterSettings`); any other name is a
    TypeError that names it. Returns the report also saved as ``dst/report.json``."""
    batch, cluster, scan, restorer = split_options(options, ScanBatchSettings, ClusterSettings, ScanOptions,
                                                   RestorerSettings, where=f"process_scans({command!r})")
    source, destination = location(src), location(dst)  # a URL is checked here, before the weights load
    scan_options = ScanOptions(**scan)
    processor = VolumeProcessor(command, modality, scan_options, RestorerSettings(**restorer))
    derivation = f"{command} of {modality.upper()} by the network {processor.model.name}"
    units = ScanUnits(keep_compression=scan_options.keep_compression, derivation=derivation)
    recorded = processor.recorded()
    executor = cluster_executor(ClusterSettings(**cluster), partial(VolumeProcessor, command, modality, scan_options,
                                                                    RestorerSettings(**restorer)), recorded)
    return run_batch(source, destination, processor, ScanBatchSettings(**batch).batch_settings(), units=units,
                     recorded=recorded, executor=executor)

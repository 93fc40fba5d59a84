"""Score a folder of results against a folder of references (PSNR/SSIM per image).

Files are matched by relative path without extension, so ``out/sub/a.png`` pairs with
``ref/sub/a.tif``. Restoration outputs are often named ``<name>_<tag>.png``:
``strip_suffix="_<tag>"`` removes that tag from prediction names (only from them, so a
reference that happens to end the same way keeps its name). Files without a partner are
listed, not fatal: a half-finished run can still be scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restore.evaluate.report import json_number, mean_or_nan, write_csv_file, write_json_file
from restore.io.files import EVALUATION_SUFFIXES
from restore.io.image import read_image
from restore.metrics import psnr, ssim


@dataclass(frozen=True)
class ImageScore:
    """One matched pair: ``name`` is the shared key (relative path without extension)."""

    name: str
    prediction: Path
    reference: Path
    psnr: float
    ssim: float


@dataclass
class EvalTable:
    """Per-image scores, their means, and the files that had no partner."""

    scores: list[ImageScore]
    unmatched_predictions: list[Path] = field(default_factory=list)
    unmatched_references: list[Path] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_psnr(self) -> float:
        return mean_or_nan([score.psnr for score in self.scores])

    @property
    def mean_ssim(self) -> float:
        return mean_or_nan([score.ssim for score in self.scores])

    def to_text(self) -> str:
        """A fixed-width table for the terminal, mean last, then the unmatched files."""
        width = max([len("mean")] + [len(score.name) for score in self.scores])
        lines = [f"{'image':<{width}}  {'PSNR dB':>8}  {'SSIM':>6}"]
        lines += [f"{s.name:<{width}}  {s.psnr:>8.2f}  {s.ssim:>6.4f}" for s in self.scores]
        lines.append(f"{'mean':<{width}}  {self.mean_psnr:>8.2f}  {self.mean_ssim:>6.4f}  ({len(self.scores)} images)")
        for label, paths in (
            ("predictions without a reference", self.unmatched_predictions),
            ("references without a prediction", self.unmatched_references),
        ):
            if paths:
                lines.append(f"{len(paths)} {label}: " + ", ".join(str(path) for path in paths))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; an infinite PSNR (identical images) is the string ``"inf"``
        because JSON has no infinity."""
        return {
            "settings": self.settings,
            "mean": {"psnr": json_number(self.mean_psnr), "ssim": json_number(self.mean_ssim), "images": len(self.scores)},
            "images": [
                {
                    "name": s.name,
                    "prediction": str(s.prediction),
                    "reference": str(s.reference),
                    "psnr": json_number(s.psnr),
                    "ssim": s.ssim,
                }
                for s in self.scores
            ],
            "unmatched_predictions": [str(path) for path in self.unmatched_predictions],
            "unmatched_references": [str(path) for path in self.unmatched_references],
        }

    def write_json(self, path: str | Path) -> None:
        write_json_file(path, self.to_dict())

    def write_csv(self, path: str | Path) -> None:
        """One row per image (no mean row, so the file stays a clean per-image table)."""
        rows = ([s.name, repr(s.psnr), repr(s.ssim), s.prediction, s.reference] for s in self.scores)
        write_csv_file(path, ["name", "psnr", "ssim", "prediction", "reference"], rows)


def evaluate_pairs(
    pred_dir: str | Path,
    ref_dir: str | Path,
    *,
    strip_suffix: str = "",
    y_channel: bool = False,
    crop: int = 0,
) -> EvalTable:
    """PSNR/SSIM of every prediction against the reference with the same key.

    ``crop`` pixels are removed on every side and ``y_channel`` measures BT.601 luma:
    the super-resolution convention (crop = scale, y_channel=True)."""
    pred_dir, ref_dir = Path(pred_dir), Path(ref_dir)
    for label, folder in (("prediction", pred_dir), ("reference", ref_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: {label} folder not found")
    predictions = index_images(pred_dir, strip_suffix)
    references = index_images(ref_dir, "")
    scores = []
    for key in sorted(predictions.keys() & references.keys()):
        prediction, reference = _read_pixels(predictions[key]), _read_pixels(references[key])
        if prediction.shape != reference.shape or prediction.dtype != reference.dtype:
            raise ValueError(
                f"{predictions[key]} is {_describe(prediction)} but its reference {references[key]} is "
                f"{_describe(reference)}: they must match to be compared"
            )
        options = {"crop_border": crop, "y_channel": y_channel}
        scores.append(
            ImageScore(
                name=key,
                prediction=predictions[key],
                reference=references[key],
                psnr=psnr(prediction, reference, **options),
                ssim=ssim(prediction, reference, **options),
            )
        )
    return EvalTable(
        scores=scores,
        unmatched_predictions=[predictions[key] for key in sorted(predictions.keys() - references.keys())],
        unmatched_references=[references[key] for key in sorted(references.keys() - predictions.keys())],
        settings={
            "pred_dir": str(pred_dir),
            "ref_dir": str(ref_dir),
            "strip_suffix": strip_suffix,
            "y_channel": y_channel,
            "crop": crop,
        },
    )


def index_images(folder: Path, strip_suffix: str) -> dict[str, Path]:
    """Map ``relative/path/stem`` (minus ``strip_suffix``) to the file, refusing two files
    with the same key (``a.png`` and ``a.jpg``): which one was meant is unknowable."""
    index: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or path.suffix.lower() not in EVALUATION_SUFFIXES:
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue  # hidden files and our own atomic-write temporaries
        stem = path.stem
        if strip_suffix and stem.endswith(strip_suffix):
            stem = stem[: -len(strip_suffix)]
        key = (relative.parent / stem).as_posix()
        if key in index:
            raise ValueError(f"{index[key]} and {path} both match the name {key!r}: remove or rename one")
        index[key] = path
    return index


def _read_pixels(path: Path) -> np.ndarray:
    """The image's colour/grey pixels; alpha is not part of the picture being scored."""
    return read_image(path).pixels


def _describe(pixels: np.ndarray) -> str:
    height, width, channels = pixels.shape
    return f"{width}x{height}, {channels} channel(s), {pixels.dtype}"

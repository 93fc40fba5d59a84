"""The super-resolution benchmark (Set5, Set14, BSD100 ...), run exactly as the literature runs it.

Published tables (bicubic, VDSR, EDSR, RCAN, SwinIR) are only comparable with ours if every
step matches:

1. the dataset holds ``HR/<name>.png`` and ``LR_bicubic/X<scale>/<name>x<scale>.png``
   (the EDSR/BasicSR layout); the LR files are the provided ones, made with MATLAB's
   ``imresize(hr, 1/scale, 'bicubic')`` and saved as 8-bit: never re-made from HR here;
2. each method upscales the uint8 LR image by exactly ``scale`` and returns uint8;
3. the HR image is cropped to ``scale`` times the LR size (HR sizes that are not a
   multiple of the scale lose their last rows/columns, MATLAB's ``modcrop``);
4. PSNR and SSIM are measured on the BT.601 luma Y (MATLAB ``rgb2ycbcr``, not rounded) with
   ``scale`` pixels removed on every border; grey images are measured as they are.

The ``bicubic`` baseline is MATLAB's bicubic *upscaling* of the LR file
(:func:`restore.metrics.imresize.imresize` on uint8, MATLAB's integer path); it reproduces
the published numbers: Set5 x4 28.42 dB, x2 33.66 dB, Set14 x4 26.00 dB.

A method is any callable ``(lr, scale) -> sr`` on uint8 ``(H, W, C)`` arrays; our model
plugs in through :func:`model_method`, like the baselines in :data:`BASELINES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restore.evaluate.pairs import index_images
from restore.evaluate.report import json_number, latest_scores, mean_or_nan, timed, write_csv_file, write_json_file
from restore.io.image import Image, read_image, write_image
from restore.metrics import psnr, ssim
from restore.metrics.imresize import imresize

SuperResMethod = Callable[[np.ndarray, int], np.ndarray]

HR_FOLDER = "HR"
LR_FOLDER = "LR_bicubic"


def bicubic_upscale(low: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(low, scale, 'bicubic')`` on uint8, the literature's baseline."""
    return imresize(low, scale)


def lanczos_upscale(low: np.ndarray, scale: int) -> np.ndarray:
    """OpenCV's Lanczos (8x8 taps), a sharper classical baseline than bicubic."""
    height, width, channels = low.shape
    upscaled = cv2.resize(low, (width * scale, height * scale), interpolation=cv2.INTER_LANCZOS4)
    return upscaled.reshape(height * scale, width * scale, channels)


BASELINES: dict[str, SuperResMethod] = {"bicubic": bicubic_upscale, "lanczos": lanczos_upscale}


def model_method(weights: str, scale: int, **settings: Any) -> SuperResMethod:
    """A trained super-resolution model (a shipped name or a weights file) as a benchmark
    method, run through the same inference engine as ``restore superres`` (``settings``:
    device, precision, tile, ensemble ...)."""
    from restore.model import load
    from restore.weights import WeightsError

    model = load(weights, task="superres", **{"device": "cpu", **settings})
    if model.task.name != "superres":
        raise WeightsError(f"{weights}: these weights are for {model.task.name}, not superres")
    if model.scale != scale:
        raise WeightsError(f"{weights}: these weights upscale x{model.scale}, the benchmark asks x{scale}")

    def upscale(low: np.ndarray, scale: int) -> np.ndarray:
        del scale  # checked above
        return model(low)

    return upscale


@dataclass(frozen=True)
class SuperResPair:
    name: str
    high: Path
    low: Path


def find_pairs(data_dir: str | Path, scale: int) -> tuple[list[SuperResPair], list[Path]]:
    """``(pairs, HR files without an LR file)`` of a dataset in the layout of the module doc."""
    data_dir = Path(data_dir)
    high_dir, low_dir = data_dir / HR_FOLDER, data_dir / LR_FOLDER / f"X{scale}"
    for folder in (high_dir, low_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder}: not found; a super-resolution dataset holds {HR_FOLDER}/ and "
                f"{LR_FOLDER}/X{scale}/ (files named like babyx{scale}.png)"
            )
    highs = index_images(high_dir, "")
    lows = index_images(low_dir, f"x{scale}")
    pairs = [SuperResPair(name, highs[name], lows[name]) for name in sorted(highs.keys() & lows.keys())]
    if not pairs:
        raise FileNotFoundError(f"{low_dir}: no LR file matches an HR image (expected names like <name>x{scale}.png)")
    return pairs, [highs[name] for name in sorted(highs.keys() - lows.keys())]


def make_benchmark_set(photos: Sequence[Path], dest: str | Path, scales: Sequence[int]) -> list[Path]:
    """Write ``dest/HR/<stem>.png`` and ``dest/LR_bicubic/X<s>/<stem>x<s>.png`` for 8-bit
    ``photos``, the LR made as the published sets' were (MATLAB ``imresize(hr, 1/s,
    'bicubic')`` on uint8, of the HR cropped to a multiple of ``s``): so held-out photos
    (Kodak24, your own) are scored with exactly the benchmark protocol. Alpha is dropped
    (the benchmark scores colour only). Returns the HR files written."""
    dest = Path(dest)
    written = []
    for photo in photos:
        pixels = read_image(photo).pixels
        if pixels.dtype != np.uint8:
            raise ValueError(f"{photo}: the benchmark is defined on 8-bit images, this is {pixels.dtype}")
        high = dest / HR_FOLDER / f"{Path(photo).stem}.png"
        high.parent.mkdir(parents=True, exist_ok=True)
        write_image(high, Image(pixels))
        for scale in scales:
            height, width = pixels.shape[0] // scale * scale, pixels.shape[1] // scale * scale
            if height == 0 or width == 0:
                raise ValueError(f"{photo}: {pixels.shape[1]}x{pixels.shape[0]} is smaller than the scale {scale}")
            low = imresize(np.ascontiguousarray(pixels[:height, :width]), 1 / scale).reshape(height // scale, width // scale, -1)
            low_path = dest / LR_FOLDER / f"X{scale}" / f"{high.stem}x{scale}.png"
            low_path.parent.mkdir(parents=True, exist_ok=True)
            write_image(low_path, Image(low))
        written.append(high)
    return written


def load_pair(pair: SuperResPair, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lr, hr)`` uint8 ``(H, W, C)``, HR cropped to ``scale`` x the LR size."""
    low, high = read_image(pair.low).pixels, read_image(pair.high).pixels
    for path, pixels in ((pair.low, low), (pair.high, high)):
        if pixels.dtype != np.uint8:
            raise ValueError(f"{path}: the benchmark is defined on 8-bit images, this is {pixels.dtype}")
    height, width = low.shape[0] * scale, low.shape[1] * scale
    fits = high.shape[0] // scale == low.shape[0] and high.shape[1] // scale == low.shape[1]
    if not fits or high.shape[2] != low.shape[2]:
        raise ValueError(
            f"{pair.low} is {low.shape[1]}x{low.shape[0]} ({low.shape[2]} channel(s)) but its HR image "
            f"{pair.high} is {high.shape[1]}x{high.shape[0]} ({high.shape[2]}): not an x{scale} pair"
        )
    return low, high[:height, :width]


@dataclass
class SuperResTable:
    """Scores per method and image (Y, border cropped), and the time each method took."""

    dataset: str
    scale: int
    methods: list[str]
    pairs: list[SuperResPair]
    psnr: dict[str, list[float]]  # method -> one value per image
    ssim: dict[str, list[float]]
    seconds: dict[str, float]  # method -> total time inside the method
    megapixels: float  # output pixels per method, in millions
    missing_low: list[Path] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def mean_psnr(self, method: str) -> float:
        return mean_or_nan(self.psnr[method])

    def mean_ssim(self, method: str) -> float:
        return mean_or_nan(self.ssim[method])

    def seconds_per_megapixel(self, method: str) -> float:
        """Seconds per output megapixel (what a user waits per upscaled megapixel)."""
        return self.seconds[method] / self.megapixels if self.megapixels else math.nan

    def to_text(self, per_image: bool = True) -> str:
        """PSNR dB / SSIM per image (optional) and mean, one column per method, then s/MP."""
        cell = max(18, *(len(method) + 2 for method in self.methods))  # a model's name heads its column
        names = [pair.name for pair in self.pairs] if per_image else []
        width = max(len("s per output MP"), *(len(name) for name in names), len(self.dataset) + 8)
        lines = [
            f"{self.dataset} x{self.scale}: {len(self.pairs)} images, PSNR dB / SSIM on Y (BT.601), "
            f"border {self.scale} cropped",
            f"{'image':<{width}}" + "".join(f"{method:>{cell}}" for method in self.methods),
        ]
        for index, name in enumerate(names):
            cells = "".join(f"{self._cell(self.psnr[m][index], self.ssim[m][index]):>{cell}}" for m in self.methods)
            lines.append(f"{name:<{width}}{cells}")
        means = "".join(f"{self._cell(self.mean_psnr(m), self.mean_ssim(m)):>{cell}}" for m in self.methods)
        lines.append(f"{'mean':<{width}}{means}")
        speeds = "".join(f"{self.seconds_per_megapixel(m):>{cell}.4f}" for m in self.methods)
        lines.append(f"{'s per output MP':<{width}}{speeds}")
        if self.missing_low:
            missing = ", ".join(map(str, self.missing_low))
            lines.append(f"{len(self.missing_low)} HR images without an LR file: {missing}")
        return "\n".join(lines)

    @staticmethod
    def _cell(psnr_value: float, ssim_value: float) -> str:
        return f"{psnr_value:.2f} / {ssim_value:.4f}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per method its means, speed and per-image values."""
        return {
            "dataset": self.dataset,
            "scale": self.scale,
            "protocol": {"y_channel": True, "crop_border": self.scale},
            "settings": self.settings,
            "methods": {
                method: {
                    "psnr": json_number(self.mean_psnr(method)),
                    "ssim": json_number(self.mean_ssim(method)),
                    "seconds_per_megapixel": json_number(self.seconds_per_megapixel(method)),
                    "images": {
                        pair.name: {"psnr": json_number(p), "ssim": s}
                        for pair, p, s in zip(self.pairs, self.psnr[method], self.ssim[method])
                    },
                }
                for method in self.methods
            },
            "missing_low": [str(path) for path in self.missing_low],
        }

    def write_json(self, path: str | Path) -> None:
        write_json_file(path, self.to_dict())

    def write_csv(self, path: str | Path) -> None:
        """One row per image and method (no mean rows: a clean per-image table)."""
        rows = (
            [pair.name, method, repr(p), repr(s), pair.low, pair.high]
            for method in self.methods
            for pair, p, s in zip(self.pairs, self.psnr[method], self.ssim[method])
        )
        write_csv_file(path, ["name", "method", "psnr", "ssim", "lr", "hr"], rows)


def evaluate_superres(
    data_dir: str | Path,
    scale: int,
    methods: Mapping[str, SuperResMethod],
    *,
    max_images: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> SuperResTable:
    """Run the protocol of the module doc on ``data_dir`` for every method.

    ``max_images`` takes the first N pairs in name order; ``progress`` gets one line per image."""
    data_dir = Path(data_dir)
    pairs, missing_low = find_pairs(data_dir, scale)
    pairs = pairs[:max_images]
    psnr_table: dict[str, list[float]] = {method: [] for method in methods}
    ssim_table: dict[str, list[float]] = {method: [] for method in methods}
    seconds = dict.fromkeys(methods, 0.0)
    megapixels = 0.0
    for pair in pairs:
        low, high = load_pair(pair, scale)
        megapixels += high.shape[0] * high.shape[1] / 1e6
        for method, upscale in methods.items():
            # a copy: a method must not alter the others' input
            output, took = timed(upscale, low.copy(), scale)
            seconds[method] += took
            _check_output(output, high.shape, method, pair.name)
            psnr_table[method].append(psnr(output, high, crop_border=scale, y_channel=True))
            ssim_table[method].append(ssim(output, high, crop_border=scale, y_channel=True))
        if progress is not None:
            progress(f"{data_dir.name}/{pair.name} x{scale}: {latest_scores(psnr_table)}")
    return SuperResTable(
        dataset=data_dir.name,
        scale=scale,
        methods=list(methods),
        pairs=pairs,
        psnr=psnr_table,
        ssim=ssim_table,
        seconds=seconds,
        megapixels=megapixels,
        missing_low=missing_low,
        settings={"data_dir": str(data_dir), "max_images": max_images},
    )


def _check_output(output: np.ndarray, shape: tuple[int, ...], method: str, name: str) -> None:
    """The method's result must be the HR crop's shape in uint8, or the scores mean nothing."""
    if output.shape != shape or output.dtype != np.uint8:
        raise ValueError(
            f"method {method!r} returned {output.dtype} {output.shape} for {name}, expected uint8 {shape}"
        )

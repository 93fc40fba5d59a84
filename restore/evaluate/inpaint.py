"""The inpainting benchmark: clean photos with held-out hole masks, scored per hole-area
bin as LaMa and the partial-convolution paper (NVIDIA's irregular masks) report it.

Protocol, for every image of ``data`` (uint8 RGB; grey files are replicated) and every
bin 0-10 %, 10-20 %, ..., 50-60 % of hole area:

1. masks: every file in ``masks`` (sorted by path) is binarised like a user's mask
   (> 127 = hole) and fitted to the image: centre-cropped along each axis where it is
   larger (NVIDIA's 512x512 masks on Kodak24's 500x500 crops lose 6 pixels a side), then
   resized with nearest neighbour if it is still a different size. Its bin comes from
   the hole fraction of that fitted mask, not from its file name; masks with no hole or
   with 60 % or more are not used;
2. image ``i`` gets the ``i``-th mask of each bin (wrapping round if a bin has fewer
   masks than there are images), so every method sees the same image+mask pairs;
3. a method receives the image with its holes zeroed and the hole mask, never the hidden
   pixels; its output is rounded to uint8 and composited with the known pixels, so every
   method is scored on its hole filling alone;
4. scores: PSNR and SSIM (Wang et al., all channels, :mod:`restore.metrics`) over the
   whole image, and PSNR over the hole pixels only (all channels), each averaged per bin;
5. texture (:func:`restore.metrics.texture.texture_ratio`): the fill's mean luma gradient
   over that of a 16-pixel ring of known pixels around the hole, 1.0 = as textured as the
   surroundings. PSNR prefers a smooth fill; this says whether the fill is a smear. The
   hidden original's own ratio on the same pair (``original``) is the level to aim at,
   averaged per bin over the pairs where it is defined (not NaN).

A method is any callable ``(holed uint8 (H, W, 3), hole bool (H, W)) -> (H, W, 3)``
(uint8, or float in [0, 1]); ours plugs in like the baselines in :data:`BASELINES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restore.evaluate.report import json_number, latest_scores, mean_or_nan, timed, write_csv_file, write_json_file
from restore.io.files import EVALUATION_SUFFIXES, image_files
from restore.io.image import read_image
from restore.metrics import psnr, ssim
from restore.metrics.texture import texture_ratio
from restore.tasks.inpaint import composite
from restore.tasks.masks import read_mask

InpaintMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]
ORIGINAL = "original"  # the texture entry of the hidden pixels themselves

BINS: tuple[tuple[float, float], ...] = tuple((low / 10, (low + 1) / 10) for low in range(6))
INPAINT_RADIUS = 3  # OpenCV's inpaintRadius, the value its documentation and most comparisons use


def bin_label(index: int) -> str:
    low, high = BINS[index]
    return f"{round(low * 100)}-{round(high * 100)}%"


def hole_bin(fraction: float) -> int | None:
    """The bin of a hole fraction (``low <= f < high``); None for no hole or >= 60 %."""
    if fraction <= 0:
        return None
    for index, (low, high) in enumerate(BINS):
        if low <= fraction < high:
            return index
    return None


def fit_mask(hole: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop each axis that is too long, then nearest-resize if still different."""
    top, left = max(0, (hole.shape[0] - height) // 2), max(0, (hole.shape[1] - width) // 2)
    hole = hole[top : top + height, left : left + width]
    if hole.shape != (height, width):
        hole = cv2.resize(hole.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    return hole


def hole_psnr(output: np.ndarray, reference: np.ndarray, hole: np.ndarray) -> float:
    """PSNR (dB, uint8 range) over the hole pixels only, all channels."""
    difference = output[hole].astype(np.float64) - reference[hole].astype(np.float64)
    mse = float(np.mean(difference**2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def telea(holed: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV's fast marching method (Telea 2004)."""
    return cv2.inpaint(holed, hole.astype(np.uint8) * 255, INPAINT_RADIUS, cv2.INPAINT_TELEA)


def navier_stokes(holed: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV's Navier-Stokes method (Bertalmio et al. 2001)."""
    return cv2.inpaint(holed, hole.astype(np.uint8) * 255, INPAINT_RADIUS, cv2.INPAINT_NS)


def biharmonic(holed: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """scikit-image's biharmonic inpainting (slow: a sparse solve per hole region)."""
    from skimage.restoration import inpaint_biharmonic

    return inpaint_biharmonic(holed, hole, channel_axis=-1)


BASELINES: dict[str, InpaintMethod] = {"telea": telea, "navier_stokes": navier_stokes, "biharmonic": biharmonic}


def model_method(weights: str, **settings: Any) -> InpaintMethod:
    """A trained inpainting model (shipped name or weights file) through the same
    inference engine as ``restore inpaint`` (``settings``: device, precision, tile...)."""
    from restore.model import load
    from restore.weights import WeightsError

    model = load(weights, task="inpaint", **{"device": "cpu", **settings})
    if model.task.name != "inpaint":
        raise WeightsError(f"{weights}: these weights are for {model.task.name}, not inpaint")

    def inpaint(holed: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return model(holed, mask=hole)

    return inpaint


@dataclass
class InpaintTable:
    """Per method and bin: one score per image+mask pair, and the time spent."""

    dataset: str
    methods: list[str]
    pairs: dict[int, list[tuple[str, str]]]  # bin -> (image, mask) names
    psnr: dict[str, dict[int, list[float]]]  # method -> bin -> values
    ssim: dict[str, dict[int, list[float]]]
    hole_psnr: dict[str, dict[int, list[float]]]
    texture: dict[str, dict[int, list[float]]]  # the methods' and ORIGINAL's
    seconds: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One row per bin and method (the long format of the CSV and the text table)."""
        rows = []
        for index in sorted(self.pairs):
            for method in self.methods:
                rows.append({
                    "bin": bin_label(index),
                    "pairs": len(self.pairs[index]),
                    "method": method,
                    "psnr": mean_or_nan(self.psnr[method][index]),
                    "ssim": mean_or_nan(self.ssim[method][index]),
                    "hole_psnr": mean_or_nan(self.hole_psnr[method][index]),
                    "texture": self.mean_texture(method, index),
                })
        return rows

    def mean_texture(self, method: str, index: int) -> float:
        """A method's (or :data:`ORIGINAL`'s) mean texture ratio in a bin, over the pairs
        where it is defined."""
        return mean_or_nan([value for value in self.texture[method][index] if not math.isnan(value)])

    def to_text(self) -> str:
        width = max(len("method"), *(len(method) for method in self.methods))
        lines = [
            f"{self.dataset}: {self.settings.get('images', '?')} images x masks from "
            f"{self.settings.get('masks', '?')}, known pixels kept, uint8",
            f"{'hole area':<10}{'pairs':>6}  {'method':<{width}}  {'PSNR dB':>8}  {'SSIM':>6}  {'hole PSNR':>9}"
            f"  {'texture':>7}",
        ]
        previous = None
        for row in self.rows():
            shown = (row["bin"], str(row["pairs"])) if row["bin"] != previous else ("", "")
            previous = row["bin"]
            lines.append(
                f"{shown[0]:<10}{shown[1]:>6}  {row['method']:<{width}}  {row['psnr']:>8.2f}  {row['ssim']:>6.4f}"
                f"  {row['hole_psnr']:>9.2f}  {row['texture']:>7.2f}"
            )
        original = ", ".join(f"{bin_label(index)} {self.mean_texture(ORIGINAL, index):.2f}" for index in sorted(self.pairs))
        lines.append(f"texture of the hidden originals: {original}")
        seconds = ", ".join(f"{method} {self.seconds[method]:.1f}" for method in self.methods)
        lines.append(f"seconds in each method: {seconds}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "settings": self.settings,
            "seconds": self.seconds,
            "rows": [
                {key: json_number(value) if isinstance(value, float) else value for key, value in row.items()}
                for row in self.rows()
            ],
            "original_texture": {bin_label(index): json_number(self.mean_texture(ORIGINAL, index))
                                 for index in sorted(self.pairs)},
            "pairs": {bin_label(index): [list(pair) for pair in pairs] for index, pairs in sorted(self.pairs.items())},
        }

    def write_json(self, path: str | Path) -> None:
        write_json_file(path, self.to_dict())

    def write_csv(self, path: str | Path) -> None:
        header = ["bin", "pairs", "method", "psnr", "ssim", "hole_psnr", "texture"]
        write_csv_file(path, header, ([row[key] for key in header] for row in self.rows()))


def binned_masks(masks_dir: str | Path, height: int, width: int) -> dict[int, list[tuple[str, np.ndarray]]]:
    """Every mask of ``masks_dir`` fitted to ``height`` x ``width``, grouped by bin."""
    masks_dir = Path(masks_dir)
    bins: dict[int, list[tuple[str, np.ndarray]]] = {index: [] for index in range(len(BINS))}
    for path in image_files(masks_dir, EVALUATION_SUFFIXES):
        hole = fit_mask(read_mask(path), height, width)
        index = hole_bin(float(hole.mean()))
        if index is not None:
            bins[index].append((path.relative_to(masks_dir).as_posix(), hole))
    if not any(bins.values()):
        raise FileNotFoundError(f"{masks_dir}: no mask with a hole of 0-60 % of the image")
    return bins


def evaluate_inpaint(
    data_dir: str | Path,
    masks_dir: str | Path,
    methods: Mapping[str, InpaintMethod],
    *,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> InpaintTable:
    """Run the protocol (module doc) on the first ``limit`` images of ``data_dir``."""
    scores: dict[str, dict[str, dict[int, list[float]]]] = {
        key: {method: {index: [] for index in range(len(BINS))} for method in names}
        for key, names in (("psnr", methods), ("ssim", methods), ("hole", methods), ("texture", [*methods, ORIGINAL]))
    }
    pairs: dict[int, list[tuple[str, str]]] = {}
    seconds = dict.fromkeys(methods, 0.0)
    for pair in benchmark_pairs(data_dir, masks_dir, limit):
        pairs.setdefault(pair.bin, []).append((pair.image_name, pair.mask_name))
        scores["texture"][ORIGINAL][pair.bin].append(texture_ratio(pair.image, pair.hole))
        for method, inpaint in methods.items():
            result, took = timed(fill, inpaint, pair, method)
            seconds[method] += took
            scores["psnr"][method][pair.bin].append(psnr(result, pair.image))
            scores["ssim"][method][pair.bin].append(ssim(result, pair.image))
            scores["hole"][method][pair.bin].append(hole_psnr(result, pair.image, pair.hole))
            scores["texture"][method][pair.bin].append(texture_ratio(result, pair.hole))
        if progress is not None:
            line = latest_scores({method: scores["hole"][method][pair.bin] for method in methods})
            progress(f"{pair.image_name} + {pair.mask_name} ({bin_label(pair.bin)}): hole PSNR {line}")
    data_dir = Path(data_dir)
    images = len({name for bin_pairs in pairs.values() for name, _ in bin_pairs})
    return InpaintTable(
        dataset=data_dir.name,
        methods=list(methods),
        pairs=pairs,
        psnr=scores["psnr"],
        ssim=scores["ssim"],
        hole_psnr=scores["hole"],
        texture=scores["texture"],
        seconds=seconds,
        settings={"data": str(data_dir), "masks": str(masks_dir), "images": images, "limit": limit},
    )


@dataclass(frozen=True)
class BenchmarkPair:
    """One image+mask pair of the protocol: the clean uint8 RGB image, its hole and bin."""

    image_name: str
    image: np.ndarray
    mask_name: str
    hole: np.ndarray
    bin: int


def benchmark_pairs(data_dir: str | Path, masks_dir: str | Path, limit: int | None = None) -> Iterator[BenchmarkPair]:
    """The protocol's pairs (steps 1-2 of the module doc) for the first ``limit`` images
    of ``data_dir``, image by image, bin by bin."""
    data_dir = Path(data_dir)
    files = image_files(data_dir, EVALUATION_SUFFIXES)[:limit]
    if not files:
        raise FileNotFoundError(f"{data_dir}: no images found")
    masks_by_size: dict[tuple[int, int], dict[int, list[tuple[str, np.ndarray]]]] = {}
    for number, path in enumerate(files):
        image = _rgb_uint8(path)
        size = image.shape[:2]
        if size not in masks_by_size:
            masks_by_size[size] = binned_masks(masks_dir, *size)
        name = path.relative_to(data_dir).with_suffix("").as_posix()
        for index, candidates in masks_by_size[size].items():
            if candidates:
                mask_name, hole = candidates[number % len(candidates)]
                yield BenchmarkPair(name, image, mask_name, hole, index)


def fill(inpaint: InpaintMethod, pair: BenchmarkPair, method: str) -> np.ndarray:
    """The pair's image with its hole filled by ``inpaint`` (which sees the holed image
    and the hole, never the hidden pixels) and the known pixels kept, uint8 (step 3)."""
    holed = holed_image(pair)
    return composite(_to_uint8(inpaint(holed, pair.hole.copy()), pair.image.shape, method), pair.image, pair.hole)


def holed_image(pair: BenchmarkPair) -> np.ndarray:
    """What every method is given: the image with its hole's pixels zeroed."""
    return np.where(pair.hole[:, :, None], 0, pair.image).astype(np.uint8)


def _rgb_uint8(path: Path) -> np.ndarray:
    pixels = read_image(path).pixels
    if pixels.dtype != np.uint8:
        raise ValueError(f"{path}: the inpainting benchmark is defined on 8-bit images, this is {pixels.dtype}")
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def _to_uint8(output: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
    output = np.asarray(output)
    if output.shape != shape:
        raise ValueError(f"method {method!r} returned shape {output.shape}, expected {shape}")
    if output.dtype == np.uint8:
        return output
    return np.rint(np.clip(output, 0, 1) * 255).astype(np.uint8)

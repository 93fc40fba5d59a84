"""The synthetic Gaussian denoising benchmark, run exactly as the literature runs it.

Numbers are only comparable with published tables (DnCNN, FFDNet, DRUNet, all evaluated
with KAIR's scripts) if every step matches theirs:

1. the clean image is read as uint8, grey (1 channel) for Set12/BSD68 and RGB for
   CBSD68/Kodak24/McMaster;
2. ``noisy = float32(clean / 255)`` plus ``N(0, sigma / 255)`` drawn with the legacy
   Mersenne Twister reset to seed 0 *for every image*: KAIR calls
   ``np.random.seed(seed=0)`` and then ``np.random.normal(0, sigma / 255., img.shape)``
   on the ``(H, W, C)`` image, adding in place to the float32 array. We draw the same
   numbers from ``np.random.RandomState(0)``, which leaves the global numpy state alone;
3. the noisy image stays float: not clipped to [0, 1], not quantised;
4. each method denoises that float image; its output is clipped to [0, 1] and rounded to
   uint8, then PSNR (and SSIM) are measured against the uint8 clean image over all
   channels with no border crop.

A method is any callable ``(noisy, sigma) -> denoised``: ``noisy`` is the float32
``(H, W, C)`` image on the [0, 1] scale, ``sigma`` the noise level on the 0-255 scale,
and the result an ``(H, W, C)`` (or, for grey, ``(H, W)``) float array on the [0, 1]
scale. Our own model plugs in the same way as the baselines in :data:`BASELINES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restore.evaluate.optional import import_bm3d
from restore.evaluate.report import json_number, latest_scores, mean_or_nan, timed, write_json_file
from restore.io.files import EVALUATION_SUFFIXES, image_files
from restore.io.image import read_image
from restore.metrics import psnr, ssim

DenoiseMethod = Callable[[np.ndarray, float], np.ndarray]

GREY_SETS = frozenset({"Set12", "BSD68"})
COLOUR_SETS = frozenset({"CBSD68", "Kodak24", "McMaster"})
DEFAULT_SIGMAS = (15.0, 25.0, 50.0)
NOISE_SEED = 0

# OpenCV NL-means strength h = factor * sigma (template 7x7, search 21x21, OpenCV's defaults).
# OpenCV weighs patches by exp(-mean squared difference / h^2) without subtracting the
# expected 2 sigma^2 of two noisy patches, so the right h is close to sigma, and smaller
# for colour, where fastNlMeansDenoisingColored works in Lab on L and on ab separately.
# The factors were chosen on training images (8 from Train400, 8 from BSD200, sigma
# 15/25/50), never on the evaluation sets; each is within 0.15 dB of the best per sigma.
NLMEANS_H_PER_SIGMA = {1: 0.85, 3: 0.55}
NLMEANS_TEMPLATE, NLMEANS_SEARCH = 7, 21


def add_noise(clean: np.ndarray, sigma: float, seed: int = NOISE_SEED) -> np.ndarray:
    """The benchmark's noisy image: float32 ``(H, W, C)``, not clipped (see the module doc).

    Bit-identical to KAIR: ``img = np.float32(clean / 255.)``, ``np.random.seed(seed)``,
    ``img += np.random.normal(0, sigma / 255., img.shape)`` (float64 sum cast to float32)."""
    if clean.dtype != np.uint8 or clean.ndim != 3:
        raise ValueError(f"expected a uint8 (H, W, C) clean image, got {clean.dtype} {clean.shape}")
    image = np.float32(clean / 255.0)
    noise = np.random.RandomState(seed).normal(0, sigma / 255.0, image.shape)
    return (image + noise).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and round to uint8, in the image's own float precision (as KAIR's
    ``tensor2uint`` does on float32), so ties round the same way as in published runs."""
    return np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)


def noisy_baseline(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """No denoising: the floor every method must beat (about 20*log10(255/sigma) dB)."""
    return noisy


def bm3d_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (grey) or CBM3D in the opponent colour space (RGB), on the float noisy image."""
    bm3d = import_bm3d()
    if noisy.shape[2] == 1:
        return bm3d.bm3d(noisy[:, :, 0], sigma_psd=sigma / 255.0)[:, :, None]
    return bm3d.bm3d_rgb(noisy, sigma_psd=sigma / 255.0)


def nlmeans_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """OpenCV's fast NL-means with ``h = NLMEANS_H_PER_SIGMA[channels] * sigma``.

    OpenCV only accepts 8-bit input, so unlike the other methods this one sees the noisy
    image clipped and quantised to uint8 first (a small handicap: rounding adds noise of
    std 0.29/255 and clipping loses the tails of the noise at black and white)."""
    quantised = to_uint8(noisy)
    channels = noisy.shape[2]
    h = NLMEANS_H_PER_SIGMA[channels] * sigma
    if channels == 1:
        denoised = cv2.fastNlMeansDenoising(quantised[:, :, 0], None, h, NLMEANS_TEMPLATE, NLMEANS_SEARCH)[:, :, None]
    else:
        bgr = np.ascontiguousarray(quantised[:, :, ::-1])  # its Lab conversion expects BGR
        denoised = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, NLMEANS_TEMPLATE, NLMEANS_SEARCH)[:, :, ::-1]
    return denoised.astype(np.float32) / 255


BASELINES: dict[str, DenoiseMethod] = {
    "noisy": noisy_baseline,
    "bm3d": bm3d_denoise,
    "nlmeans": nlmeans_denoise,
}


def model_method(weights: str, **settings: Any) -> DenoiseMethod:
    """A trained denoiser (a shipped name or a weights file) as a benchmark method, run
    through the same inference engine as ``restore denoise`` (``settings``: device,
    precision, tile, ...), with the benchmark's sigma as its noise-level map."""
    from restore.model import load
    from restore.weights import WeightsError

    model = load(weights, task="denoise", **{"device": "cpu", **settings})
    if model.task.name != "denoise":
        raise WeightsError(f"{weights}: these weights are for {model.task.name}, not denoise")

    def denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
        return model(noisy, sigma=sigma)

    return denoise


def dataset_channels(folder: str | Path) -> int:
    """1 for the grey benchmarks, 3 for the colour ones; any other folder is grey only if
    every image in it is stored with one channel."""
    folder = Path(folder)
    if folder.name in GREY_SETS:
        return 1
    if folder.name in COLOUR_SETS:
        return 3
    stored = {read_image(path).channels for path in image_files(folder, EVALUATION_SUFFIXES)}
    return 1 if stored == {1} else 3


def load_clean_images(
    folder: str | Path, channels: int, max_images: int | None = None
) -> list[tuple[str, np.ndarray]]:
    """``(name, uint8 (H, W, channels))`` for the first ``max_images`` files in name order.

    Colour files in a grey set are decoded as grey by OpenCV, exactly as KAIR's
    ``cv2.imread(path, 0)`` (its decoder's conversion, which can differ by one level from
    converting decoded RGB); grey files in a colour set are replicated."""
    folder = Path(folder)
    files = image_files(folder, EVALUATION_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no images found")
    images = []
    for path in files[:max_images]:
        pixels = read_image(path).pixels
        if pixels.dtype != np.uint8:
            raise ValueError(f"{path}: the denoising benchmark is defined on 8-bit images, this is {pixels.dtype}")
        if channels == 1 and pixels.shape[2] == 3:
            pixels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)[:, :, None]
        elif channels == 3 and pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        images.append((path.relative_to(folder).with_suffix("").as_posix(), pixels))
    return images


@dataclass
class DenoiseTable:
    """Scores per method, sigma and image, and the time each method took."""

    dataset: str
    channels: int
    sigmas: list[float]
    methods: list[str]
    images: list[str]
    psnr: dict[str, dict[float, list[float]]]  # method -> sigma -> one value per image
    ssim: dict[str, dict[float, list[float]]]
    seconds: dict[str, float]  # method -> total time inside the method
    megapixels: dict[str, float]  # method -> total pixels it processed, in millions
    settings: dict[str, Any] = field(default_factory=dict)

    def mean_psnr(self, method: str, sigma: float) -> float:
        return mean_or_nan(self.psnr[method][sigma])

    def mean_ssim(self, method: str, sigma: float) -> float:
        return mean_or_nan(self.ssim[method][sigma])

    def seconds_per_megapixel(self, method: str) -> float:
        return self.seconds[method] / self.megapixels[method] if self.megapixels[method] else math.nan

    def to_text(self) -> str:
        """One row per method, one column per sigma (mean PSNR dB / SSIM), then s/MP."""
        kind = "grey" if self.channels == 1 else "colour"
        cell = 16
        name_width = max(len("method"), *(len(method) for method in self.methods))
        header = f"{'method':<{name_width}}" + "".join(f"{f'sigma={sigma:g}':>{cell}}" for sigma in self.sigmas)
        lines = [
            f"{self.dataset}: {len(self.images)} {kind} images, mean PSNR dB / SSIM "
            f"(uint8 output, no border crop, noise seed {self.settings.get('seed', NOISE_SEED)})",
            header + f"{'s/MP':>10}",
        ]
        for method in self.methods:
            cells = "".join(
                f"{f'{self.mean_psnr(method, sigma):.2f} / {self.mean_ssim(method, sigma):.4f}':>{cell}}"
                for sigma in self.sigmas
            )
            lines.append(f"{method:<{name_width}}{cells}{self.seconds_per_megapixel(method):>10.3f}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: means and per-image values keyed by method then sigma (as text)."""
        return {
            "dataset": self.dataset,
            "channels": self.channels,
            "sigmas": self.sigmas,
            "images": self.images,
            "settings": self.settings,
            "methods": {
                method: {
                    "seconds_per_megapixel": json_number(self.seconds_per_megapixel(method)),
                    "sigma": {
                        f"{sigma:g}": {
                            "psnr": json_number(self.mean_psnr(method, sigma)),
                            "ssim": json_number(self.mean_ssim(method, sigma)),
                            "per_image": {
                                name: {"psnr": json_number(p), "ssim": s}
                                for name, p, s in zip(self.images, self.psnr[method][sigma], self.ssim[method][sigma])
                            },
                        }
                        for sigma in self.sigmas
                    },
                }
                for method in self.methods
            },
        }

    def write_json(self, path: str | Path) -> None:
        write_json_file(path, self.to_dict())


def evaluate_denoise(
    clean_dir: str | Path,
    methods: Mapping[str, DenoiseMethod],
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    *,
    channels: int | None = None,
    max_images: int | None = None,
    seed: int = NOISE_SEED,
    progress: Callable[[str], None] | None = None,
) -> DenoiseTable:
    """Run the benchmark (module doc) on every image of ``clean_dir`` for every method.

    ``channels`` defaults to :func:`dataset_channels`; ``max_images`` takes the first N
    files for a quick run; ``progress`` receives one line per image and sigma."""
    clean_dir = Path(clean_dir)
    channels = channels or dataset_channels(clean_dir)
    images = load_clean_images(clean_dir, channels, max_images)
    sigmas = [float(sigma) for sigma in sigmas]
    psnr_table = {method: {sigma: [] for sigma in sigmas} for method in methods}
    ssim_table = {method: {sigma: [] for sigma in sigmas} for method in methods}
    seconds = dict.fromkeys(methods, 0.0)
    megapixels = dict.fromkeys(methods, 0.0)
    for name, clean in images:
        for sigma in sigmas:
            noisy = add_noise(clean, sigma, seed)
            for method, denoise in methods.items():
                # a copy: a method must not alter the others' input
                output, took = timed(denoise, noisy.copy(), sigma)
                seconds[method] += took
                megapixels[method] += clean.shape[0] * clean.shape[1] / 1e6
                result = to_uint8(_check_output(output, clean.shape, method, name))
                psnr_table[method][sigma].append(psnr(result, clean))
                ssim_table[method][sigma].append(ssim(result, clean))
            if progress is not None:
                scores = latest_scores({method: psnr_table[method][sigma] for method in methods})
                progress(f"{clean_dir.name}/{name} sigma {sigma:g}: {scores}")
    return DenoiseTable(
        dataset=clean_dir.name,
        channels=channels,
        sigmas=sigmas,
        methods=list(methods),
        images=[name for name, _ in images],
        psnr=psnr_table,
        ssim=ssim_table,
        seconds=seconds,
        megapixels=megapixels,
        settings={"clean_dir": str(clean_dir), "seed": seed, "max_images": max_images},
    )


def _check_output(output: np.ndarray, shape: tuple[int, ...], method: str, name: str) -> np.ndarray:
    """The method's result as ``(H, W, C)`` float, or an error that names the culprit."""
    output = np.asarray(output)
    if output.ndim == 2 and shape[2] == 1:
        output = output[:, :, None]
    if output.shape != shape:
        raise ValueError(f"method {method!r} returned shape {output.shape} for {name}, expected {shape}")
    if output.dtype.kind != "f":
        raise ValueError(
            f"method {method!r} returned {output.dtype} for {name}: return floats on the [0, 1] scale"
        )
    return output

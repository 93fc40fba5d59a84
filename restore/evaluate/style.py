"""How close translated images are to the target domain, as distributions (unpaired).

Style transfer has no ground truth per image: CycleGAN's zebras have no "true" zebra. What
can be measured is how the set of outputs compares with a set of real target-domain images.

- With a feature network the user supplies (``features``: a torchvision Inception-v3 or
  VGG state dict, ``.pth`` read with ``weights_only`` or ``.safetensors``; nothing is
  downloaded): FID (Fréchet distance between Gaussians fitted to the two feature sets,
  Heusel et al. 2017) and KID (unbiased squared MMD with the cubic polynomial kernel,
  averaged over random subsets, Bińkowski et al. 2018). Lower is better. The numbers are
  comparable between runs that use the same feature file, not with papers: published FIDs
  use the TF-Inception weights of pytorch-fid and tens of thousands of images, and FID is
  biased upward for small sets (KID is not).
- Without one: per-channel colour-histogram distance, the Wasserstein-1 (earth mover's)
  distance between the pooled 256-level histograms of each RGB channel, in units of the
  full intensity range (0 = same colour distribution, 1 = all black vs all white). It
  says whether the colours match the target domain, nothing about content or texture.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from restore.engine.data import list_images
from restore.evaluate.report import write_json_file
from restore.io.convert import array_to_tensor
from restore.io.image import read_image

HISTOGRAM_LEVELS = 256
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VGG_CONVS = {8: "vgg11", 10: "vgg13", 13: "vgg16", 16: "vgg19"}  # convolutions in .features
VGG_LAYOUTS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}  # torchvision's names for them


@dataclass
class StyleScores:
    """The distances between ``predictions`` images and ``targets`` images."""

    method: str  # "features" or "colour-histogram"
    values: dict[str, float]
    predictions: int
    targets: int
    settings: dict[str, Any] = field(default_factory=dict)

    def to_text(self) -> str:
        lines = [f"{self.predictions} outputs vs {self.targets} target-domain images ({self.method}; lower is better)"]
        lines += [f"{name:<16} {value:.6g}" for name, value in self.values.items()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "predictions": self.predictions,
            "targets": self.targets,
            "values": {name: value if math.isfinite(value) else str(value) for name, value in self.values.items()},
            "settings": self.settings,
        }

    def write_json(self, path: str | Path) -> None:
        write_json_file(path, self.to_dict())


def evaluate_style(
    pred_dir: str | Path, target_dir: str | Path, *, features: str | Path | None = None, kid_subsets: int = 100,
    kid_subset_size: int = 1000, batch_size: int = 16, device: str = "cpu",
) -> StyleScores:
    """Compare every image under ``pred_dir`` with every image under ``target_dir``."""
    predictions, targets = list_images(pred_dir), list_images(target_dir)
    settings: dict[str, Any] = {"pred_dir": str(pred_dir), "target_dir": str(target_dir)}
    if features is None:
        distances = histogram_distance(colour_histogram(predictions), colour_histogram(targets))
        values = {"histogram_w1": float(distances.mean())}
        values.update({f"histogram_w1_{name}": float(d) for name, d in zip("RGB", distances)})
        return StyleScores("colour-histogram", values, len(predictions), len(targets), settings)
    network, description = load_feature_network(features, torch.device(device))
    pred_features = extract_features(predictions, network, batch_size)
    target_features = extract_features(targets, network, batch_size)
    kid_mean, kid_std = kernel_inception_distance(pred_features, target_features, kid_subsets, kid_subset_size)
    values = {"fid": frechet_distance(pred_features, target_features), "kid": kid_mean, "kid_std": kid_std}
    settings.update(features=str(features), network=description, feature_dim=int(pred_features.shape[1]))
    return StyleScores("features", values, len(predictions), len(targets), settings)


# -- colour histograms ---------------------------------------------------------------------


def _rgb(path: Path) -> torch.Tensor:
    """``(1, 3, H, W)`` in [0, 1]; grey images are replicated so they compare with colour."""
    image = array_to_tensor(read_image(path).pixels)
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image


def colour_histogram(paths: list[Path]) -> np.ndarray:
    """``(3, 256)`` pixel counts per RGB channel and level, pooled over all images (16-bit
    images are quantised to 256 levels)."""
    return sum((colour_counts(_rgb(path)) for path in paths), np.zeros((3, HISTOGRAM_LEVELS), dtype=np.float64))


def colour_counts(image: torch.Tensor) -> np.ndarray:
    """``(3, 256)`` pixel counts per channel and level of one ``(1, 3, H, W)`` [0, 1] image."""
    levels = (image[0] * (HISTOGRAM_LEVELS - 1)).round().long().clamp(0, HISTOGRAM_LEVELS - 1)
    return np.stack([torch.bincount(levels[c].flatten(), minlength=HISTOGRAM_LEVELS).numpy() for c in range(3)]
                    ).astype(np.float64)


def histogram_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per-channel Wasserstein-1 distance between two ``(C, levels)`` histograms, with the
    levels spread evenly over [0, 1]: the area between the two cumulative distributions."""
    cdf_first = np.cumsum(first / first.sum(axis=1, keepdims=True), axis=1)
    cdf_second = np.cumsum(second / second.sum(axis=1, keepdims=True), axis=1)
    return np.abs(cdf_first - cdf_second)[:, :-1].sum(axis=1) / (first.shape[1] - 1)


# -- feature statistics --------------------------------------------------------------------


def frechet_distance(first: np.ndarray, second: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` for ``(N, D)`` feature sets.

    The trace of the matrix square root is taken as the sum of the square roots of the
    eigenvalues of ``S1^(1/2) S2 S1^(1/2)``, which is symmetric positive semi-definite, so
    the result is real and stable even when the covariances are singular (fewer images
    than feature dimensions)."""
    first, second = first.astype(np.float64), second.astype(np.float64)
    mean_difference = first.mean(axis=0) - second.mean(axis=0)
    cov_first, cov_second = np.cov(first, rowvar=False), np.cov(second, rowvar=False)
    root_first = _psd_sqrt(cov_first)
    middle = root_first @ cov_second @ root_first
    trace_root = np.sqrt(_psd_eigenvalues(middle)).sum()
    return float(mean_difference @ mean_difference + np.trace(cov_first) + np.trace(cov_second) - 2 * trace_root)


def _psd_eigenvalues(matrix: np.ndarray, eigenvectors: bool = False):
    """Eigenvalues of a symmetric positive semi-definite matrix, with the rounding noise of
    its null space (tiny values of either sign, whose square roots would add up) set to 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    values = np.where(values > 1e-12 * max(float(values.max()), 0.0), values, 0.0)
    return (values, vectors) if eigenvectors else values


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = _psd_eigenvalues(matrix, eigenvectors=True)
    return (vectors * np.sqrt(values)) @ vectors.T


def kernel_inception_distance(
    first: np.ndarray, second: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Mean and standard deviation over ``subsets`` random subsets (of ``subset_size``, or
    the smaller set's size) of the unbiased squared MMD with ``k(x, y) = (x.y / d + 1)^3``."""
    first, second = first.astype(np.float64), second.astype(np.float64)
    size = min(subset_size, len(first), len(second))
    if size < 2:
        raise ValueError("KID needs at least 2 images on each side")
    rng = np.random.default_rng(seed)
    dimension = first.shape[1]
    estimates = []
    for _ in range(subsets):
        x = first[rng.choice(len(first), size, replace=False)]
        y = second[rng.choice(len(second), size, replace=False)]
        k_xx, k_yy, k_xy = ((a @ b.T / dimension + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        estimates.append(within - 2 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


# -- feature networks ----------------------------------------------------------------------


def feature_architecture(keys: set[str]) -> str:
    """Which torchvision network a state dict is for, from its keys."""
    if "Mixed_7c.branch_pool.conv.weight" in keys:
        return "inception_v3"
    weights = [key for key in keys if key.startswith("features.") and key.endswith(".weight")]
    convs = sum(1 for key in weights if f"{key.removesuffix('.weight')}.running_mean" not in keys)  # not BN
    if convs in VGG_CONVS:
        return VGG_CONVS[convs] + ("_bn" if any(key.endswith("running_mean") for key in keys) else "")
    raise ValueError(
        "the features file is neither a torchvision Inception-v3 nor a VGG11/13/16/19 state dict "
        f"(found {len(keys)} keys such as {sorted(keys)[:3]})"
    )


def load_feature_network(
    path: str | Path, device: torch.device
) -> tuple[Callable[[list[torch.Tensor]], torch.Tensor], str]:
    """A function from a list of ``(1, 3, H, W)`` [0, 1] images to their ``(B, D)``
    features, and the network's name.

    Inception-v3: the 2048-d pool features at 299x299 (torchvision's ``transform_input``,
    as its ImageNet weights expect). VGG: the last convolution block's 512-d average at
    224x224. A VGG file may hold the ``features`` part only."""
    import torchvision
    from torch import nn

    from restore.weights import load_weights

    state_dict, _ = load_weights(path)
    architecture = feature_architecture(set(state_dict))
    if architecture == "inception_v3":
        network = torchvision.models.inception_v3(
            weights=None, init_weights=False, transform_input=True, aux_logits="AuxLogits.fc.weight" in state_dict
        )
        network.load_state_dict(state_dict)
        network.fc = nn.Identity()
        body, size = network, 299
    else:
        from torchvision.models.vgg import cfgs, make_layers

        # the convolutional part only: the classifier (120M parameters) is not used
        features = make_layers(cfgs[VGG_LAYOUTS[architecture.removesuffix("_bn")]], batch_norm=architecture.endswith("_bn"))
        features.load_state_dict({k.removeprefix("features."): v for k, v in state_dict.items() if k.startswith("features.")})
        body, size = nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), 224
    body = body.eval().requires_grad_(False).to(device)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    @torch.no_grad()
    def extract(images: list[torch.Tensor]) -> torch.Tensor:
        resized = [
            torch.nn.functional.interpolate(image.to(device), size=(size, size), mode="bilinear", antialias=True)
            for image in images  # each at its own size, then one batch
        ]
        return body((torch.cat(resized) - mean) / std).flatten(1).double().cpu()

    return extract, architecture


def extract_features(
    paths: list[Path], network: Callable[[list[torch.Tensor]], torch.Tensor], batch_size: int
) -> np.ndarray:
    """``(N, D)`` features of the images at ``paths``, ``batch_size`` at a time."""
    starts = range(0, len(paths), batch_size)
    batches = [network([_rgb(path) for path in paths[first : first + batch_size]]) for first in starts]
    return torch.cat(batches).numpy()

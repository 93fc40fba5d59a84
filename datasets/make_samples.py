"""Regenerate datasets/samples/ from images bundled with scikit-image (public domain/CC0).

    python datasets/make_samples.py

clean/: the originals, downsized; noisy/: the same with Gaussian noise (sigma 25, seed 0)
in the formats users bring: 8-bit RGB PNG, JPEG, RGBA PNG, 8-bit and 16-bit grey PNG.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data

SAMPLES = Path(__file__).resolve().parent / "samples"
SIZE = 256  # long side, keeps the repository small
SIGMA = 25.0


def downsized(image: np.ndarray) -> np.ndarray:
    scale = SIZE / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def add_noise(image: np.ndarray, rng: np.random.Generator, maximum: int) -> np.ndarray:
    noise = rng.normal(0.0, SIGMA / 255.0 * maximum, image.shape)
    return np.clip(np.rint(image.astype(np.float64) + noise), 0, maximum).astype(image.dtype)


def save(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3:  # OpenCV writes BGR(A)
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else []
    cv2.imwrite(str(path), image, params)


def main() -> None:
    rng = np.random.default_rng(0)
    astronaut, coffee, chelsea = (downsized(f()) for f in (data.astronaut, data.coffee, data.chelsea))
    camera = downsized(data.camera())
    camera16 = (camera.astype(np.uint16) * 257)  # the same picture on the 16-bit scale
    for name, image in {"astronaut": astronaut, "coffee": coffee, "chelsea": chelsea, "camera": camera}.items():
        save(SAMPLES / "clean" / f"{name}.png", image)
    save(SAMPLES / "noisy" / "colour" / "astronaut.png", add_noise(astronaut, rng, 255))
    save(SAMPLES / "noisy" / "colour" / "coffee.jpg", add_noise(coffee, rng, 255))
    alpha = np.full(chelsea.shape[:2], 255, np.uint8)
    alpha[:, : chelsea.shape[1] // 4] = 96  # a translucent band, to show alpha is carried through
    save(SAMPLES / "noisy" / "alpha" / "chelsea_rgba.png", np.dstack([add_noise(chelsea, rng, 255), alpha]))
    save(SAMPLES / "noisy" / "grey" / "camera.png", add_noise(camera, rng, 255))
    save(SAMPLES / "noisy" / "grey" / "camera_16bit.png", add_noise(camera16, rng, 65535))


if __name__ == "__main__":
    main()

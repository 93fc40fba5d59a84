"""Pack the training folders that recipes name into one file that fits a device run.

    python datasets/pack_training.py .device-data/train.tar weights/recipes/denoise-color-gpu.toml ...

A GPU machine gets a copy of the repository but not ``../shared``; this writes every image
of the recipes' ``data.train`` folders into one tar, PNGs re-encoded as lossless WebP (the
same pixels, about two thirds of the bytes), under the folders' paths relative to
``../shared/data/train``. ``weights/recipes/run_gpu.sh`` unpacks it there, so the recipes
run unchanged. The file belongs in the git-ignored ``.device-data/``.
"""

from __future__ import annotations

import io
import sys
import tarfile
import tomllib
from pathlib import Path

import cv2
import numpy as np

from restore.engine.data import list_images

TRAIN_ROOT = Path("../shared/data/train")


def recipe_folders(recipes: list[Path]) -> list[Path]:
    """The distinct training folders the recipes read, in first-named order."""
    folders: list[Path] = []
    for recipe in recipes:
        for folder in tomllib.loads(recipe.read_text())["data"]["train"]:
            if Path(folder) not in folders:
                folders.append(Path(folder))
    return folders


def lossless_bytes(path: Path) -> tuple[str, bytes]:
    """``(suffix, bytes)``: PNGs as lossless WebP (checked to decode to the same pixels);
    other formats (JPEG) as they are, since re-encoding them would change their pixels."""
    if path.suffix.lower() != ".png":
        return path.suffix, path.read_bytes()
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    ok, encoded = cv2.imencode(".webp", pixels, [cv2.IMWRITE_WEBP_QUALITY, 101])  # >100 = lossless
    if not ok or not np.array_equal(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED), pixels):
        return path.suffix, path.read_bytes()
    return ".webp", encoded.tobytes()


def pack(target: Path, recipes: list[Path]) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w") as archive:
        for folder in recipe_folders(recipes):
            for path in list_images(folder):
                suffix, data = lossless_bytes(path)
                info = tarfile.TarInfo(str(path.relative_to(TRAIN_ROOT).with_suffix(suffix)))
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return target.stat().st_size


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    size = pack(Path(sys.argv[1]), [Path(recipe) for recipe in sys.argv[2:]])
    print(f"{sys.argv[1]}: {size / 2**20:.1f} MiB")

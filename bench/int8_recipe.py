"""Write the int8 calibration recipe of shipped weights: weights/int8/NAME.json.

    python bench/int8_recipe.py --weights denoise-color
    python bench/int8_recipe.py --weights inpaint --crops 256 --crop 128

The recipe lists ``--crops`` crops (file relative to ../shared/data/train, top, left) drawn
with ``--seed`` from the training folders of the weights' training recipe
(weights/recipes/NAME.toml, ``[data] train``: training images only, never evaluation sets),
with the task options the weights were trained with, which degrade each crop as in training
(noise at a sigma over the trained range with its noise-level map, bicubic downscaling, hole
masks), and the quantisation settings (restore/engine/backends/int8.py). ``--backend ...
--precision int8`` quantises the exported graph on these crops on first use and caches it.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import numpy as np

from restore.calibration import train_data
from restore.engine.backends.int8 import QUANTISATION, recipe_path
from restore.io.image import read_image
from restore.io.atomic import atomic_write
from restore.weights import load_manifest

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="shipped weights name")
    parser.add_argument("--crops", type=int, default=256, help="calibration crops")
    parser.add_argument("--crop", type=int, default=0,
                        help="crop side in the clean image (default: the training crop, x scale for superres)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    entry = load_manifest()[args.weights]
    with open(ROOT / entry.recipe, "rb") as handle:
        training = tomllib.load(handle)
    options = training.get("task_options", {})
    crop = args.crop or int(training["data"]["crop"]) * int(options.get("scale", 1))
    root = train_data()
    files = sorted(path for folder in training["data"]["train"] for path in (ROOT / folder).resolve().iterdir()
                   if path.suffix.lower() in (".png", ".jpg", ".bmp", ".tif"))
    rng = np.random.default_rng(args.seed)
    sizes: dict[Path, tuple[int, int]] = {}
    crops = []
    while len(crops) < args.crops:
        path = files[int(rng.integers(len(files)))]
        if path not in sizes:
            sizes[path] = read_image(path).pixels.shape[:2]
        height, width = sizes[path]
        if height < crop or width < crop:
            continue
        crops.append([str(path.relative_to(root)), int(rng.integers(height - crop + 1)), int(rng.integers(width - crop + 1))])
    recipe = {"weights": args.weights, "sha256": entry.sha256, "task": entry.task, "task_options": options,
              "training_options": options, "crop": crop, "seed": args.seed, "quantisation": QUANTISATION,
              "command": f"python bench/int8_recipe.py --weights {args.weights} --crops {args.crops} "
                         f"--crop {crop} --seed {args.seed}", "crops": crops}
    target = recipe_path(args.weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda temp: temp.write_text(json.dumps(recipe, indent=1) + "\n"))
    print(f"{target}: {len(crops)} crops of {crop}x{crop} from {len(sizes)} training images")


if __name__ == "__main__":
    main()

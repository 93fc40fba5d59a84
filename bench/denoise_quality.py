"""Denoising quality on the standard benchmarks: our model against BM3D, NL-means and the
noisy input, with the literature's protocol (see restore/evaluate/denoise.py).

    python bench/denoise_quality.py --weights runs/denoise-color/best.safetensors
    python bench/denoise_quality.py --sets CBSD68 --sigmas 25 --max-images 4 --out results.json

Prints one table per set (mean PSNR dB / SSIM per method and sigma, seconds per
megapixel); progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from restore.engine.checkpoint import WeightsError, load_weights
from restore.evaluate import BASELINES, DenoiseMethod, evaluate_denoise
from restore.io.atomic import atomic_write
from restore.nets import build_network
from restore.tasks.denoise import network_input

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "denoise"
DEFAULT_SETS = ("CBSD68", "Kodak24", "McMaster", "BSD68", "Set12")
METHODS = ("ours", "bm3d", "nlmeans", "noisy")


def load_ours(weights: str) -> DenoiseMethod:
    """Our denoiser as a benchmark method ``(noisy HxWxC float32, sigma 0-255) -> HxWxC``.

    The one place that knows how to run our model: once ``restore.load`` exists, this body
    becomes ``model = restore.load(weights, device="cpu")`` and
    ``return lambda noisy, sigma: model(noisy, sigma=sigma)``. Until then it rebuilds the
    network from the weights file and feeds it what training fed it: the image plus a
    constant sigma/255 map, reflect-padded at the bottom/right to the network's size
    multiple and cropped back. Grey images go to a colour model as three equal channels
    and the output channels are averaged, as ``restore.load``'s models will do."""
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(
            f"{weights}: no such weights file (shipped names need restore.load, which is not "
            "available yet): pass a .safetensors path, e.g. runs/denoise-color/best.safetensors"
        )
    state_dict, metadata = load_weights(path)
    if metadata.get("task") != "denoise":
        raise WeightsError(f"{path}: these weights are for task {metadata.get('task')!r}, not denoise")
    network = build_network(metadata["network"])
    network.load_state_dict({key: value.float() for key, value in state_dict.items()})
    network.eval().requires_grad_(False)
    model_channels = int(metadata["network"].get("in_channels", 3))
    multiple = int(getattr(network, "size_multiple", 1))

    @torch.no_grad()
    def denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
        height, width, channels = noisy.shape
        image = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None].float()
        if channels == 1 and model_channels == 3:
            image = image.expand(-1, 3, -1, -1)
        elif channels != model_channels:
            raise ValueError(f"{path} takes {model_channels}-channel images, not {channels}")
        sigma_map = torch.full((1, 1, height, width), sigma / 255.0)
        padded = F.pad(
            network_input(image, sigma_map),
            (0, -width % multiple, 0, -height % multiple),
            mode="reflect",
        )
        output = network(padded)[..., :height, :width]
        if channels == 1 and model_channels == 3:
            output = output.mean(dim=1, keepdim=True)
        return output[0].numpy().transpose(1, 2, 0)

    return denoise


def build_methods(names: list[str], weights: str) -> dict[str, DenoiseMethod]:
    """The requested methods in order; ``ours`` is loaded first so a bad weights path
    fails before any slow baseline has run."""
    unknown = set(names) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    return {name: load_ours(weights) if name == "ours" else BASELINES[name] for name in names}


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help="comma-separated set folders under --data")
    parser.add_argument("--sigmas", default="15,25,50", help="noise levels on the 0-255 scale")
    parser.add_argument("--max-images", type=int, default=None, help="first N images of each set (quick runs)")
    parser.add_argument("--weights", default="denoise-color", help="our model: weights name or .safetensors path")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding the sets")
    parser.add_argument("--out", type=Path, default=None, help="write every table, per image too, as JSON")
    args = parser.parse_args(argv)

    sigmas = [float(sigma) for sigma in parse_list(args.sigmas)]
    try:
        methods = build_methods(parse_list(args.methods), args.weights)
    except WeightsError as error:
        raise SystemExit(f"error: {error}") from None
    results = {}
    for name in parse_list(args.sets):
        folder = args.data / name
        if not folder.is_dir():
            raise SystemExit(f"error: {folder}: set not found (pass --data to point at the eval sets)")
        table = evaluate_denoise(
            folder, methods, sigmas, max_images=args.max_images, progress=lambda line: print(line, file=sys.stderr)
        )
        print(table.to_text() + "\n", flush=True)
        results[name] = table.to_dict()
        if args.out is not None:  # after every set, so a long run keeps what it has done
            text = json.dumps({"weights": args.weights, "sets": results}, indent=2, allow_nan=False) + "\n"
            atomic_write(args.out, lambda temp: temp.write_text(text))


if __name__ == "__main__":
    main()

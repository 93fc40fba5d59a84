"""Does ``--compile`` (torch.compile) pay? Eager against compiled, same model, same run.

    python bench/compile_speed.py                       # denoise and superres x4, bf16 and fp32
    python bench/compile_speed.py --tasks denoise --size 512 --images 8

For each shipped default model and precision: the images/s of ``Restorer.run`` on ``--images``
random images of ``--size`` pixels (one tile each at the default tile size), eager and with
``compile=True``, after one warm-up image each; and the seconds the compiled model's first
image took, which is what each new tile shape costs. Eager and compiled alternate over
``--rounds`` rounds (median), so a change in the machine's load weighs on both.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import restore
from restore.api import default_weights

OPTIONS = {"denoise": {"sigma": 25.0}, "superres": {}}


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(weights: str, precision: str, images: list[torch.Tensor], options: dict, rounds: int,
            device: str) -> dict[str, float]:
    eager = restore.load(weights, device=device, precision=precision, tile=0)
    compiled = restore.load(weights, device=device, precision=precision, tile=0, compile=True)
    eager.run(images[0], **options)
    first_call = seconds(lambda: compiled.run(images[0], **options))

    def all_images(model: restore.Restorer) -> None:
        for image in images:
            model.run(image, **options)

    rates: dict[str, list[float]] = {"eager": [], "compiled": []}
    for round_index in range(rounds):
        order = [("eager", eager), ("compiled", compiled)]
        for name, model in order if round_index % 2 == 0 else order[::-1]:
            rates[name].append(len(images) / seconds(lambda model=model: all_images(model)))
    eager_rate, compiled_rate = (float(np.median(rates[name])) for name in ("eager", "compiled"))
    return {"eager": eager_rate, "compiled": compiled_rate, "compiled/eager": compiled_rate / eager_rate,
            "first_call_s": first_call}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="denoise,superres", help="which default models: denoise, superres (x4)")
    parser.add_argument("--precisions", default="bf16,fp32", help="comma-separated: fp32, bf16 (fp16 on GPUs)")
    parser.add_argument("--images", type=int, default=6, help="images per round")
    parser.add_argument("--size", type=int, default=384, help="their side in pixels")
    parser.add_argument("--rounds", type=int, default=3, help="eager/compiled rounds, alternating (median)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    args = parser.parse_args(argv)

    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 3, args.size, args.size, generator=generator) for _ in range(args.images)]
    print(f"{args.images} images of {args.size}x{args.size} per round, median of {args.rounds} rounds, "
          f"device {args.device}, torch {torch.__version__} using {torch.get_num_threads()} threads")
    print(f"{'task':<10}{'precision':>10}{'eager img/s':>14}{'compiled img/s':>16}{'compiled/eager':>16}"
          f"{'first call s':>14}")
    for task in (name.strip() for name in args.tasks.split(",") if name.strip()):
        weights = default_weights(task, 3, {"scale": 4} if task == "superres" else None)
        for precision in (name.strip() for name in args.precisions.split(",") if name.strip()):
            row = measure(weights, precision, images, OPTIONS[task], args.rounds, args.device)
            print(f"{task:<10}{precision:>10}{row['eager']:>14.3f}{row['compiled']:>16.3f}"
                  f"{row['compiled/eager']:>16.2f}{row['first_call_s']:>14.1f}", flush=True)


if __name__ == "__main__":
    main()

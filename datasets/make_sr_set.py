"""Make a super-resolution benchmark set from any folder of 8-bit photos.

    python datasets/make_sr_set.py ../shared/data/eval/denoise/Kodak24 datasets/generated/Kodak24-sr 2 4
    restore eval superres --data datasets/generated/Kodak24-sr --scale 4 --method bicubic --method ours

Writes HR/<name>.png and LR_bicubic/X<scale>/<name>x<scale>.png with MATLAB-bicubic
downscaling on uint8, as Set5/Set14/BSD100's LR files were made
(restore.evaluate.superres.make_benchmark_set), so held-out photos are scored with exactly
the benchmark protocol. ``datasets/generated/`` is git-ignored.
"""

from __future__ import annotations

import sys
from pathlib import Path

from restore.engine.data import list_images
from restore.evaluate.superres import make_benchmark_set
from restore.io.image import ImageReadError

if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    if not all(scale.isdigit() and int(scale) > 1 for scale in sys.argv[3:]):
        sys.exit(f"error: scales are whole numbers above 1 (e.g. 2 4), not {' '.join(sys.argv[3:])}")
    scales = [int(scale) for scale in sys.argv[3:]]
    try:  # a bad photo ends with its path and the reason, not a traceback
        written = make_benchmark_set(list_images(sys.argv[1]), sys.argv[2], scales)
    except (ValueError, OSError, ImageReadError) as error:
        sys.exit(f"error: {error}")
    print(f"{len(written)} images in {Path(sys.argv[2]) / 'HR'}, LR for x{', x'.join(sys.argv[3:])}")

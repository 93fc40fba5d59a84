"""Split pix2pix A|B side-by-side images into CycleGAN's unpaired trainA/ and trainB/.

    python datasets/split_aligned.py ../shared/data/train/facades/train datasets/generated/facades-unpaired

Even-numbered files (in path order) give their A half, odd-numbered ones their B half, so no
image in trainA has its partner in trainB. Halves are written as PNG. ``datasets/generated/``
is git-ignored.
"""

from __future__ import annotations

import sys

from restore.tasks.style import split_aligned

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a_count, b_count = split_aligned(sys.argv[1], sys.argv[2])
    print(f"{a_count} images in {sys.argv[2]}/trainA, {b_count} in {sys.argv[2]}/trainB")

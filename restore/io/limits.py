"""The default size limits of inputs, checked from headers before anything is decoded.

One place, because the CLI's defaults, the batch engine's, the readers' and the tasks'
(inpainting's mask files, super-resolution's ``--outscale`` outputs) must agree: a limit
the user raised for the images must not refuse their masks at the old one.
"""

MAX_PIXELS = 20000 * 20000  # an image (decompression bombs declare far more)
MAX_VOXELS = 1024**3  # a scan: every volume and time point of it

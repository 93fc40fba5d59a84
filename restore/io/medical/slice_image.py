"""One 16-bit (or 8-bit, or float) grey slice as a PNG or TIFF, read and written through
restore.io.image (imported when a file is opened: OpenCV and tifffile load slowly)."""

from __future__ import annotations

from pathlib import Path

from restore.io.files import SIXTEEN_BIT_SUFFIXES
from restore.io.medical.base import MedicalReadError, WriteOptions
from restore.io.medical.volume import Volume, integer_range


class SliceImageFormat:
    name = "image"
    suffixes = SIXTEEN_BIT_SUFFIXES
    folder = False

    def claims(self, path: Path) -> bool:
        return path.name.lower().endswith(self.suffixes)

    def read(self, path: Path, max_voxels: int, files: list[Path] | None = None) -> Volume:
        from restore.io.image import ImageReadError, read_image

        try:
            image = read_image(path, max_voxels)
        except ImageReadError as error:
            raise MedicalReadError(str(error)) from error
        if image.channels != 1 or image.alpha is not None:
            raise MedicalReadError(f"{path}: a colour or transparent image; scans are single-channel grey")
        pixels = image.pixels[None, :, :, 0]
        return Volume(voxels=pixels, format=self.name, value_range=integer_range(pixels.dtype), header=image, files=[path])

    def write(self, path: Path, volume: Volume, options: WriteOptions) -> None:
        from restore.io.image import Image, write_image

        write_image(path, Image(volume.voxels[0][:, :, None], format=volume.header.format if volume.header else None))


SLICE_IMAGE = SliceImageFormat()

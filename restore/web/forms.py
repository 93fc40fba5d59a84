"""The request models: each task's options as multipart form fields named as the CLI's
options (``tile_overlap`` is ``--tile-overlap``). Values are strings given to the command's
own parser, so they mean, default and fail exactly as on the command line."""

from __future__ import annotations

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field

_FILES = frozenset({"image", "mask"})
_BATCH = frozenset({"jpeg_quality"})  # the batch's setting, not the task's: given to process_folder apart


class UploadForm(BaseModel):
    """A file to restore; unknown fields are refused (422 naming them)."""

    model_config = ConfigDict(extra="forbid")

    image: UploadFile = Field(description="The input image (PNG, JPEG, TIFF, BMP, WebP or still GIF; 8 or 16 bit, "
                                          "grey, colour or with alpha). The output has its format.")


class ImageForm(UploadForm):
    """An image and how the output is encoded."""

    jpeg_quality: int = Field(95, ge=1, le=100, description="Quality of a JPEG or WebP output (--jpeg-quality).")


class ModelForm(UploadForm):
    """The options every command that runs a network takes (device, precision, tiling, weights)."""

    weights: str | None = Field(None, description="A registered weights name (GET /api/v1/weights: shipped, or "
                                                  "added with `restore weights add`). File paths are refused.")
    device: str | None = Field(None, description="auto, cpu, cuda or mps (--device).")
    precision: str | None = Field(None, description="auto, fp32, bf16, fp16 or int8 (--precision).")
    backend: str | None = Field(None, description="torch, onnxruntime, openvino or auto (--backend).")
    tile: str | None = Field(None, description="Tile size in pixels, 0 or auto (--tile).")
    tile_overlap: str | None = Field(None, description="Pixels shared by neighbouring tiles (--tile-overlap).")
    batch_size: str | None = Field(None, description="Tiles per forward pass, or auto (--batch-size).")
    ensemble: bool = Field(False, description="Average the 8 flips/rotations (--ensemble).")
    compile: bool = Field(False, description="torch.compile the network (--compile).")

    def arguments(self) -> list[str]:
        """The task's options as command-line words (``["--sigma", "25"]``); fields not
        given are left to the command's defaults."""
        words: list[str] = []
        for name, value in self.model_dump(exclude=_FILES | _BATCH).items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                words.append(flag)
            elif value is not None and value is not False:
                words += [flag, str(value)]
        return words


class TaskForm(ModelForm, ImageForm):
    """An image task's request (``restore TASK``)."""


class DenoiseForm(TaskForm):
    sigma: str | None = Field(None, description="Noise level on the 0-255 scale, or auto (--sigma; default auto).")
    strength: str | None = Field(None, description="Share of the denoising kept, 0-1 (--strength; default 1).")
    model: str | None = Field(None, description="gaussian, or real: the blind camera-noise model, where its "
                                                "weights are installed (--model; default gaussian).")


class SuperresForm(TaskForm):
    scale: str | None = Field(None, description="2 or 4 (--scale; default: 4, or the weights' own).")
    model: str | None = Field(None, description="psnr or real (--model; default psnr).")
    outscale: str | None = Field(None, description="Final size as a factor of the input (--outscale).")
    alpha: str | None = Field(None, description="bicubic or model: how transparency is upscaled (--alpha).")


class InpaintForm(TaskForm):
    mask: UploadFile | None = Field(None, description="The holes: white (> 127) = hole, the image's size. Without "
                                                      "it: the image's alpha, then --mask-color.")
    mask_color: str | None = Field(None, description="R,G,B of the pixels that are holes (--mask-color).")
    mask_tolerance: str | None = Field(None, description="Difference per channel still counted as the colour "
                                                         "(--mask-tolerance).")
    dilate: str | None = Field(None, description="Grow every hole by N pixels (--dilate).")


class StyleForm(TaskForm):
    direction: str | None = Field(None, description="AtoB or BtoA (--direction).")


class ScanForm(ModelForm):
    """A scan's request (``restore medical COMMAND``)."""

    image: UploadFile = Field(description="A DICOM file, a NIfTI volume (.nii, .nii.gz), a 16-bit PNG/TIFF slice "
                                          "or a .npy array. The output has its format and metadata.")
    modality: str = Field(description="ct or mr (--modality).")
    axis: str | None = Field(None, description="Volume axis processed slice by slice (--axis).")
    context: str | None = Field(None, description="Neighbouring slices each side (--context; default: the "
                                                  "weights').")
    keep_compression: bool = Field(False, description="Write a compressed DICOM compressed again, losslessly "
                                                      "(--keep-compression).")


class ScanDenoiseForm(ScanForm):
    strength: str | None = Field(None, description="Share of the denoising kept, 0-1 (--strength; default 1).")
    ct_window: str | None = Field(None, description="CT: change only voxels in this HU range, LOW,HIGH "
                                                    "(--ct-window).")
    mr_percentile: str | None = Field(None, description="MR: the percentile mapped to 0.8 of the network's "
                                                        "range (--mr-percentile; default 99.5).")


class ScanSuperresForm(ScanForm):
    scale: str | None = Field(None, description="The weights' factor, checked when given (--scale).")


class ChainForm(ImageForm):
    steps: list[str] = Field(min_length=1, description='The steps in order, each as `restore chain` takes it '
                                                       '("denoise --sigma auto", "superres --scale 4"); one form '
                                                       'field per step.')
    mask: UploadFile | None = Field(None, description="The holes for the chain's inpaint steps (as InpaintForm's).")


TASK_FORMS: dict[str, type[TaskForm]] = {
    "denoise": DenoiseForm,
    "superres": SuperresForm,
    "inpaint": InpaintForm,
    "style": StyleForm,
}


SCAN_FORMS: dict[str, type[ScanForm]] = {
    "denoise": ScanDenoiseForm,
    "superres": ScanSuperresForm,
}


def option_fields(form: type[ModelForm]) -> list[str]:
    """The fields of ``form`` that are the task command's options (tests compare them with the CLI's)."""
    return [name for name in form.model_fields if name not in _FILES | _BATCH]

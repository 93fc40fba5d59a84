"""Task commands: each is its task's own options on top of the shared ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from restore.cli.options import Location, auto_or_number, run_task, strength_option, task_options


_sigma = auto_or_number(
    float, "give a noise level such as 15 or 25, or auto",
    lambda sigma: None if 0 <= sigma <= 255 else "the noise level is on the 0-255 scale",
)


@click.command()
@task_options
@click.option("--sigma", default="auto", callback=_sigma, show_default=True, metavar="N|auto",
              help="Noise level on the 0-255 scale (also for 16-bit images: relative to full range). "
                   "Higher removes more noise and more detail; auto estimates it per image and "
                   "records the estimate in report.json.")
@strength_option("; lower leaves some grain and texture in.")
@click.option("--model", type=click.Choice(["gaussian", "real"]), default="gaussian", show_default=True,
              help="gaussian: denoise-color/denoise-gray, steered by --sigma; real: denoise-real, a blind "
                   "model for camera photos (shot and read noise, demosaicing, JPEG; --sigma has no "
                   "effect). Ignored with --weights.")
def denoise(**settings: Any) -> None:
    """Remove noise. Grey images use the grey model, colour images the colour model;
    --model real uses the camera-noise model for both."""
    run_task("denoise", settings)


def _optional_int(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else int(value)


@click.command()
@task_options
@click.option("--scale", type=click.Choice(["2", "4"]), default=None, callback=_optional_int,
              help="Upscaling factor of the network: picks the shipped weights superres-x2 or superres-x4 "
                   "[default: 4]. With --weights the file's scale is used, and --scale, if given, must match it.")
@click.option("--model", type=click.Choice(["psnr", "real"]), default="psnr", show_default=True,
              help="psnr: the most faithful upscaling of clean images (trained on bicubic downscaling, "
                   "as the benchmarks); real: for real photos with blur, noise and JPEG artefacts "
                   "(superres-x4-real, trained on Real-ESRGAN's degradations). Ignored with --weights.")
@click.option("--outscale", type=click.FloatRange(0, min_open=True), default=None, metavar="FLOAT",
              help="Final size as a factor of the input, any value (e.g. 3 or 1.5): the network's output "
                   "is resized to it (area averaging down, bicubic up). Default: the network's scale.")
@click.option("--alpha", type=click.Choice(["bicubic", "model"]), default="bicubic", show_default=True,
              help="How a transparency channel is upscaled: bicubic, or by running the network on it "
                   "(sharper cut-out edges, twice the time).")
def superres(**settings: Any) -> None:
    """Upscale images x2 or x4 (tiled for big ones; 16-bit and grey images stay so).

    \b
    Examples:
      restore superres --in photos/ --out big/ --scale 4
      restore superres --in scans/ --out big/ --model real --outscale 3
    """
    run_task("superres", superres_settings(settings))


def superres_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``restore superres``'s options checked together (a usage error before any image), the
    scale left to the weights when not given."""
    outscale, limit = settings["outscale"], settings["max_pixels"]
    if outscale is not None and outscale**2 > limit:
        raise click.UsageError(f"--outscale {outscale} would make even a 1-pixel image larger than --max-pixels "
                               f"{limit}; lower --outscale")
    if settings["scale"] is None:
        del settings["scale"]  # the default weights' scale, or the file's
    if settings["weights"] is None:
        from restore.api import default_weights
        from restore.weights import WeightsError

        try:
            default_weights("superres", 3, settings)
        except (WeightsError, ValueError) as error:
            raise click.UsageError(str(error)) from error
    return settings


def _colour(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    try:
        colour = tuple(int(item) for item in value.split(","))
    except ValueError:
        raise click.BadParameter("give R,G,B on the 0-255 scale, e.g. 255,0,255") from None
    if len(colour) != 3 or not all(0 <= item <= 255 for item in colour):
        raise click.BadParameter("give three values R,G,B between 0 and 255, e.g. 255,0,255")
    return colour


@click.command()
@task_options
@click.option("--masks", "masks_dir", type=Location(click.Path(exists=True, file_okay=False, path_type=Path)),
              help="Folder (or storage URL) of masks mirroring --in: in/a/b.jpg uses DIR/a/b.<any image ext>. "
                   "White (> 127) = hole. Looked at first.")
@click.option("--mask-color", "mask_color", callback=_colour, metavar="R,G,B",
              help="Treat pixels of this colour as holes (e.g. 255,0,255 for magenta paint); used only "
                   "when an image has no mask file and no transparent pixels.")
@click.option("--mask-tolerance", default=0, show_default=True, type=click.IntRange(0, 255),
              help="Largest difference per channel (0-255 scale) still counted as --mask-color "
                   "(JPEG inputs need about 30).")
@click.option("--dilate", default=0, show_default=True, type=click.IntRange(0),
              help="Grow every hole by N pixels, to cover fringes around objects a mask misses.")
def inpaint(**settings: Any) -> None:
    """Fill holes, keeping every other pixel exactly as it was.

    \b
    The holes of each image come from the first of:
      1. --masks DIR: the file with the image's relative path and name (any extension);
      2. a sidecar next to the image: NAME_mask.png, else every NAME_mask*.png (united);
         sidecars are never processed as images themselves;
      3. the image's alpha channel: transparent pixels are holes (the output is opaque);
      4. --mask-color R,G,B: pixels of that colour, within --mask-tolerance.
    Mask files are binarised (> 127 = hole) and must have the image's size (otherwise the
    image fails with both sizes named and the batch goes on). Images with no mask are
    copied unchanged and listed with a warning.

    \b
    Example:
      restore inpaint --in damaged/ --out fixed/ --dilate 4
    """
    run_task("inpaint", inpaint_settings(settings))


def inpaint_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``restore inpaint``'s --dilate checked against --max-pixels (a usage error before any image)."""
    side, limit = 2 * settings["dilate"] + 1, settings["max_pixels"]
    if side**2 > limit:
        raise click.UsageError(f"--dilate {settings['dilate']} grows each hole into a disc {side} pixels wide, "
                               f"larger than any image --max-pixels {limit} accepts; lower --dilate")
    return settings


@click.command()
@task_options
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), default=None,
              help="Which way to translate. With a CycleGAN run folder as --weights it picks the "
                   "generator (best_A: the run's direction, best_B: back); with a restore weights "
                   "file it is checked against the direction the file records. A published "
                   ".pth holds one direction: choose the file (latest_net_G_A.pth is A to B).")
def style(**settings: Any) -> None:
    """Translate images with a pix2pix or CycleGAN generator (e.g. label map -> photo).

    --weights takes a run folder or weights file from `restore train style`, or a generator
    file published by pytorch-CycleGAN-and-pix2pix (latest_net_G.pth: ResNet or U-Net 256,
    recognised from its keys and loaded without running any code from the file). Images of
    any size: padded to what the generator needs and cropped back; keep --tile 0 unless an
    image does not fit in memory (tiles change the normalisation statistics).

    \b
    Example:
      restore style --weights horse2zebra/latest_net_G.pth --in horses/ --out zebras/
    """
    run_task("style", style_settings(settings))


def style_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``restore style``'s --weights and --direction made one choice of generator."""
    from restore.tasks.style import select_weights
    from restore.weights import WeightsError

    try:
        settings["weights"] = select_weights(settings["weights"], settings.pop("direction"))
    except WeightsError as error:
        raise click.UsageError(str(error)) from error
    return settings


"""Task commands: each is its task's own options on top of the shared ones."""

from __future__ import annotations

from typing import Any

import click

from restore.cli.options import run_task, task_options


def _sigma(_ctx: click.Context, _param: click.Parameter, value: str) -> float | str:
    if value == "auto":
        return value
    try:
        sigma = float(value)
    except ValueError:
        raise click.BadParameter("give a noise level such as 15 or 25, or auto") from None
    if not 0 <= sigma <= 255:
        raise click.BadParameter("the noise level is on the 0-255 scale")
    return sigma


@click.command()
@task_options
@click.option("--sigma", default="auto", callback=_sigma, show_default=True, metavar="N|auto",
              help="Noise level on the 0-255 scale (also for 16-bit images: relative to full range). "
                   "Higher removes more noise and more detail; auto estimates it per image and "
                   "records the estimate in report.json.")
def denoise(**settings: Any) -> None:
    """Remove noise. Grey images use the grey model, colour images the colour model."""
    run_task("denoise", settings)


@click.command()
@task_options
def superres(**settings: Any) -> None:
    """Upscale images (the scale comes from the weights). Shipped weights are not in this
    release yet: train with `restore train superres` and pass --weights RUN/best.safetensors."""
    run_task("superres", settings)


def _not_in_this_release(name: str, what: str) -> click.Command:
    @click.command(name=name, help=f"{what} (not in this release yet).",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def command() -> None:
        raise click.UsageError(f"the {name} task is not available in this release of restore")

    return command


inpaint = _not_in_this_release("inpaint", "Fill holes given by masks, sidecar files, alpha or a colour")
style = _not_in_this_release("style", "CycleGAN / pix2pix image-to-image translation")
medical = _not_in_this_release("medical", "CT/MRI denoising and super-resolution on DICOM, NIfTI, 16-bit")

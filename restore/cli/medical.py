"""``restore medical denoise|superres``: CT/MR scans through the batch engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import click

from restore.cli.options import (Location, batch_options, command_settings, inference_options, run_batch_command,
                                 strength_option, with_options)
from restore.io.limits import MAX_VOXELS


# The options of a medical command that are the batch's (--in, --out, ScanBatchSettings's fields)
SCAN_BATCH_SETTINGS = ("source", "destination", "suffix", "overwrite", "workers", "max_voxels", "quiet",
                       "report_format")


def scan_options(function: Callable) -> Callable:
    """The options of both medical commands."""
    options = [
        click.option("--in", "source", required=True, type=Location(click.Path(exists=True, path_type=Path)),
                     help="A scan, or a folder searched recursively: DICOM files, DICOM series folders (one "
                          "job per series), NIfTI .nii/.nii.gz, 16-bit PNG/TIFF slices, .npy arrays; or a "
                          "storage URL (s3://bucket/prefix/, gs://, az://...; docs/scale-out.md)."),
        click.option("--out", "destination", required=True, type=Location(click.Path(file_okay=False, path_type=Path)),
                     help="Output folder (or storage URL): the input tree mirrored, each scan in its own format "
                          "and name, with report.json."),
        click.option("--modality", required=True, type=click.Choice(["ct", "mr"]),
                     help="CT intensities are Hounsfield units in a fixed window; MR is normalised per volume "
                          "by percentiles. A DICOM file whose Modality disagrees is reported as failed."),
        click.option("--weights", default=None, metavar="NAME|PATH",
                     help="Shipped weights name or a .safetensors file from `restore train medical`. "
                          "Default: medical-ct-denoise, medical-mr-denoise or medical-mr-sr-x2."),
        click.option("--axis", type=click.IntRange(0, 2), default=None,
                     help="Volume axis to process slice by slice. Default: the acquisition's slice axis "
                          "(DICOM: 0, NIfTI: 2). 2-D images ignore it."),
        click.option("--context", type=click.IntRange(0), default=None,
                     help="Neighbouring slices each side given to the network as extra channels (2.5-D). "
                          "Default: what the weights were trained with (a different value is refused)."),
        click.option("--keep-compression", is_flag=True,
                     help="Write a compressed DICOM input compressed again, losslessly: its codec's lossless "
                          "syntax where an encoder is installed, else RLE Lossless. Default: uncompressed."),
        click.option("--suffix", default="", help="Appended to each output file name (before .nii.gz, .dcm...)."),
        *batch_options("reading and writing scans", click.option(
            "--max-voxels", default=MAX_VOXELS, show_default=True, type=click.IntRange(1),
            help="Scans whose header declares more voxels are refused before decoding.")),
    ]
    return with_options(inference_options(function), options)


@click.group()
def medical() -> None:
    """CT/MR denoising and super-resolution on DICOM, NIfTI and 16-bit images.

    Every scan keeps its format, dtype and metadata: a DICOM output keeps every tag but
    new SOP/Series Instance UIDs, a suffixed SeriesDescription, ImageType DERIVED (and the
    geometry after super-resolution); a NIfTI output keeps its header (voxel size and
    affine updated after super-resolution).
    """


def _window(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        low, high = (float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give two numbers in HU, LOW,HIGH (e.g. -160,240)") from None
    if low >= high:
        raise click.BadParameter(f"{value!r}: LOW must be below HIGH")
    return low, high


@medical.command()
@scan_options
@strength_option(", in stored units before rounding and clipping. Lower keeps more of the original texture.")
@click.option("--ct-window", default=None, callback=_window, metavar="LOW,HIGH",
              help="CT: change only voxels inside this HU range (others pass through as stored). The network "
                   "still sees the -1024..3071 HU window it was trained on. Default: that window.")
@click.option("--mr-percentile", type=click.FloatRange(50, 100), default=99.5, show_default=True,
              help="MR: the intensity percentile mapped to 0.8 of the network's range (the weights were "
                   "trained with 99.5; lower it for scans with large bright regions).")
def denoise(**settings: Any) -> None:
    """Remove noise: CT low-dose noise, MR (Rician) noise."""
    _run("denoise", settings)


@medical.command()
@scan_options
@click.option("--scale", type=click.IntRange(2, 4), default=None,
              help="Upscaling factor; it is the weights' (checked when given). Slices are enlarged in-plane.")
def superres(scale: int | None, **settings: Any) -> None:
    """Increase the in-plane resolution of MR slices (trained on k-space truncation)."""
    _run("superres", settings, scale)


def _run(command: str, settings: dict[str, Any], scale: int | None = None) -> None:
    from restore.volumes import process_scans

    run_batch_command(settings, partial(process_scans, command, expected_scale=scale))


MEDICAL_COMMANDS: dict[str, click.Command] = {"denoise": denoise, "superres": superres}


def scan_settings(command: str, arguments: Sequence[str]) -> dict[str, Any]:
    """``restore medical COMMAND ARGUMENTS...``'s own options (not --in, --out or the batch's)
    parsed and checked as the command does: the keywords it hands ``process_scans`` (``--scale``
    as ``expected_scale``). What ``restore serve`` parses a scan request's form fields with.
    Raises ValueError with the command's message."""
    settings = command_settings(MEDICAL_COMMANDS[command], arguments, SCAN_BATCH_SETTINGS,
                                f"restore medical {command}", dict)
    if "scale" in settings:
        settings["expected_scale"] = settings.pop("scale")
    return settings

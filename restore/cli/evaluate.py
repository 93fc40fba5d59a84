"""``restore eval``: measure outputs against references, or run a task's standard protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click

from restore.cli.evaluate_style import evaluate_style
from restore.cli.report import table_report_option
from restore.evaluate.methods import MODEL_METHODS, PROTOCOLS, method_names, parse_methods

# our model's settings in every benchmark: whole images in fp32 unless asked (the protocols'
# numbers are the network's, not a tiling's or a precision's)
PRECISION_OPTION = click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32",
                                show_default=True, help="Our model's precision on the CPU.")
TILE_OPTION = click.option("--tile", default=0, show_default=True, type=click.IntRange(0),
                           help="Our model runs in tiles of N pixels (0 = whole image or slice).")


def weights_option(default: str) -> Callable:
    """``--weights``, repeatable: every model named gets its own rows in the one table."""
    return click.option("--weights", "weights", multiple=True, metavar="NAME|PATH",
                        help="A model to measure: a shipped name, a user model (`restore weights add`) or a "
                             "weights file, restore's or a community checkpoint (Real-ESRGAN, KAIR, ...). "
                             f"Repeat to compare several in one table. Default: {default}")


def methods_option(protocol: str, rows: str) -> Callable:
    """``--method NAME``, repeatable, the rows of the table (``rows`` says what each is);
    ``--methods a,b`` is the same option, and either takes a comma-separated list."""

    def parse(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[str]:
        try:
            return parse_methods(protocol, values)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None

    return click.option("--method", "--methods", "methods", multiple=True, metavar="NAME[,NAME...]",
                        default=PROTOCOLS[protocol].defaults, show_default=True, callback=parse,
                        help=f"A row of the table; repeat it, or list rows with commas. {rows}")


def table_file_option(kind: str, what: str) -> Callable:
    """``--csv FILE`` or ``--json FILE`` (``kind``): also write ``what`` in that format."""
    return click.option(f"--{kind}", f"{kind}_path", type=click.Path(dir_okay=False, path_type=Path),
                        help=f"Also write {what} as {kind.upper()}.")


def settings_weights(weights: Sequence[str]) -> str | list[str]:
    """The models measured, as a table's settings record them: the name, or the list of names."""
    return weights[0] if len(weights) == 1 else list(weights)


@click.group(name="eval", invoke_without_command=True)
@click.option("--pred", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of outputs to measure.")
@click.option("--ref", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of references, matched to --pred by relative path and name (any extension).")
@click.option("--strip-suffix", default="", help="Removed from prediction names before matching, e.g. _clean.")
@click.option("--y-channel", is_flag=True, help="Measure BT.601 luma only (the super-resolution convention).")
@click.option("--crop", default=0, show_default=True, type=click.IntRange(0),
              help="Pixels removed from every border before measuring (super-resolution: the scale).")
@table_file_option("csv", "the table")
@table_file_option("json", "the table")
@table_report_option
@click.pass_context
def evaluate(ctx: click.Context, pred: Path | None, ref: Path | None, strip_suffix: str, y_channel: bool,
             crop: int, csv_path: Path | None, json_path: Path | None) -> None:
    """PSNR and SSIM per image and on average: `restore eval --pred OUT --ref CLEAN`.

    Subcommands run a task's literature protocol end to end (`restore eval denoise ...`).
    """
    if ctx.invoked_subcommand is not None:
        return
    if pred is None or ref is None:
        raise click.UsageError("give --pred DIR and --ref DIR, or a subcommand (see --help)")
    from restore.evaluate.pairs import evaluate_pairs

    try:
        table = evaluate_pairs(pred, ref, strip_suffix=strip_suffix, y_channel=y_channel, crop=crop)
    except (FileNotFoundError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(table.to_text())
    if csv_path:
        table.write_csv(csv_path)
    if json_path:
        table.write_json(json_path)
    if not table.scores:
        raise click.ClickException("no prediction matched a reference by name")


def _number_list(_ctx: click.Context, _param: click.Parameter, value: str) -> list[float]:
    try:
        numbers = [float(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise click.BadParameter("give comma-separated numbers, e.g. 15,25,50") from None
    if not numbers or not all(0 < number <= 255 for number in numbers):
        raise click.BadParameter("noise levels are on the 0-255 scale, above 0")
    return numbers


@evaluate.command(name="denoise")
@click.option("--data", "folders", multiple=True, required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of clean images (one benchmark set, e.g. ../shared/data/eval/denoise/CBSD68); "
                   "repeat for several sets. Set12/BSD68 are read as grey, others as stored.")
@click.option("--sigma", "sigmas", default="15,25,50", show_default=True, callback=_number_list,
              help="Noise levels (0-255 scale), comma-separated.")
@weights_option("the shipped model `restore denoise` would use for the set's channel count.")
@methods_option("denoise", "ours: the model; bm3d: the bm3d package (slow); nlmeans: OpenCV fastNlMeans; "
                           "noisy: the input.")
@click.option("--max-images", type=click.IntRange(1), default=None,
              help="Only the first N images of each set (name order), for a quick look.")
@PRECISION_OPTION
@table_file_option("json", "every table, per-image values included,")
@table_report_option
def evaluate_denoise_command(folders: tuple[Path, ...], sigmas: list[float], weights: tuple[str, ...], methods: list[str],
                             max_images: int | None, precision: str, json_path: Path | None) -> None:
    """The standard synthetic denoising benchmark (DnCNN/FFDNet/DRUNet protocol): clean
    uint8 images plus N(0, sigma/255) noise seeded 0 per image, outputs rounded to uint8,
    PSNR/SSIM with no border crop; our model against BM3D, NL-means and the noisy input
    in one table per set, with seconds per megapixel."""
    from restore.api import default_weights
    from restore.evaluate.denoise import dataset_channels, evaluate_denoise
    from restore.evaluate.methods import table_methods
    from restore.evaluate.report import write_json_file
    from restore.weights import WeightsError

    if "bm3d" in methods:
        from restore.evaluate.optional import MissingExtra, import_bm3d

        try:
            import_bm3d()
        except MissingExtra as error:
            raise click.UsageError(str(error)) from error
    results = {}
    for folder in folders:
        channels = dataset_channels(folder)
        try:
            names = weights or (default_weights("denoise", channels),)
            rows = table_methods("denoise", methods, names, precision=precision)
        except WeightsError as error:
            raise click.UsageError(str(error)) from error
        try:
            table = evaluate_denoise(folder, rows, sigmas, channels=channels, max_images=max_images)
        except (FileNotFoundError, ValueError) as error:  # no images, 16-bit images, a method's bad output
            raise click.UsageError(str(error)) from error
        table.settings["weights"] = settings_weights(names) if "ours" in methods else None
        click.echo(table.to_text() + "\n")
        results[folder.name] = table.to_dict()
        if json_path:  # after every set, so a long run keeps what it has done
            write_json_file(json_path, results)


@evaluate.command(name="superres")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A benchmark set with HR/ and LR_bicubic/X<scale>/ (names like babyx4.png), "
                   "e.g. ../shared/data/eval/sr/Set5.")
@click.option("--scale", type=click.Choice(["2", "3", "4"]), default="4", show_default=True,
              help="Upscaling factor; also the border cropped before measuring.")
@methods_option("superres", "bicubic: MATLAB-exact bicubic upscaling of the provided LR files (the literature's "
                            "baseline); lanczos: OpenCV Lanczos; ours: the model; ours+: the model with the x8 "
                            "flip/rotation self-ensemble (EDSR+'s rows; 8x the time).")
@weights_option("the shipped superres-x<scale>. Measured by --method ours (added when --weights is given) "
                "and ours+.")
@click.option("--max-images", type=click.IntRange(1), default=None, help="Only the first N images (name order).")
@TILE_OPTION
@PRECISION_OPTION
@table_file_option("csv", "the per-image table")
@table_file_option("json", "the table, per-image values included,")
@table_report_option
def evaluate_superres_command(data: Path, scale: str, methods: list[str], weights: tuple[str, ...],
                              max_images: int | None, tile: int, precision: str, csv_path: Path | None,
                              json_path: Path | None) -> None:
    """The standard super-resolution benchmark (Set5, Set14, BSD100 ...): the provided LR
    files upscaled by each method, PSNR/SSIM on the BT.601 luma Y with `scale` border
    pixels cropped, as the literature reports them, with seconds per output megapixel.

    \b
    Example:
      restore eval superres --data ../shared/data/eval/sr/Set5 --scale 4 --method bicubic --method ours
    """
    from restore.api import default_weights
    from restore.evaluate.methods import table_methods
    from restore.evaluate.superres import evaluate_superres

    factor, measured = int(scale), bool(MODEL_METHODS.keys() & set(methods))
    if weights and not measured:
        methods, measured = [*methods, "ours"], True  # --weights names a model to measure
    try:
        if measured:
            weights = weights or (default_weights("superres", 3, {"scale": factor}),)
        rows = table_methods("superres", methods, weights, scale=factor, tile=tile, precision=precision)
        table = evaluate_superres(data, factor, rows, max_images=max_images)
    except (FileNotFoundError, ValueError) as error:  # WeightsError is a ValueError
        raise click.UsageError(str(error)) from error
    table.settings["weights"] = settings_weights(weights) if measured else None
    click.echo(table.to_text())
    if csv_path:
        table.write_csv(csv_path)
    if json_path:
        table.write_json(json_path)


evaluate.add_command(evaluate_style)  # defined in its own module: restore eval style


@evaluate.command(name="inpaint")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of clean 8-bit photos, e.g. ../shared/data/eval/denoise/Kodak24.")
@click.option("--masks", "masks_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of hole masks (white = hole), e.g. ../shared/data/eval/inpaint/masks (NVIDIA's). "
                   "Each is centre-cropped (or nearest-resized) to the image and binned by its hole area.")
@weights_option("the shipped `inpaint` weights; without them the table has the baselines only.")
@methods_option("inpaint", "ours: the model; ours+: the model with the x8 flip/rotation self-ensemble, as "
                           "`restore inpaint --ensemble` (8x the time); telea and navier_stokes: OpenCV, radius 3; "
                           "biharmonic: scikit-image (slow).")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Only the first N images (name order); each gets one mask per area bin.")
@TILE_OPTION
@PRECISION_OPTION
@table_file_option("csv", "the table (one row per bin and method)")
@table_file_option("json", "the table and the image+mask pairs")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@table_report_option
def evaluate_inpaint_command(data: Path, masks_dir: Path, weights: tuple[str, ...], methods: list[str], limit: int | None,
                             tile: int, precision: str, csv_path: Path | None, json_path: Path | None,
                             quiet: bool) -> None:
    """Inpainting per hole-area bin (0-10 %, ..., 50-60 %, LaMa's way of reporting):
    PSNR and SSIM of the whole image and PSNR inside the holes, for our model, OpenCV
    Telea and Navier-Stokes and scikit-image biharmonic, on the same image+mask pairs;
    every output keeps the known pixels (restore/evaluate/inpaint.py has the protocol).

    \b
    Example:
      restore eval inpaint --data ../shared/data/eval/denoise/Kodak24 \\
          --masks ../shared/data/eval/inpaint/masks --limit 4
    """
    from restore.evaluate.inpaint import evaluate_inpaint
    from restore.evaluate.methods import table_methods
    from restore.weights import load_manifest

    if MODEL_METHODS.keys() & set(methods) and not weights and "inpaint" not in load_manifest():
        click.echo("no shipped inpaint weights and no --weights: measuring the baselines only", err=True)
        methods = [method for method in methods if method not in MODEL_METHODS]
    progress = None if quiet else (lambda line: click.echo(line, err=True))
    weights = weights or ("inpaint",)
    try:
        rows = table_methods("inpaint", methods, weights, tile=tile, precision=precision)
        table = evaluate_inpaint(data, masks_dir, rows, limit=limit, progress=progress)
    except (FileNotFoundError, ValueError) as error:  # WeightsError is a ValueError
        raise click.UsageError(str(error)) from error
    table.settings["weights"] = settings_weights(weights) if MODEL_METHODS.keys() & set(methods) else None
    click.echo(table.to_text())
    if csv_path:
        table.write_csv(csv_path)
    if json_path:
        table.write_json(json_path)


@evaluate.command(name="medical")
@click.option("--weights", required=True, metavar="NAME|PATH",
              help="Medical weights (a shipped name or `restore train medical`'s best.safetensors); their task "
                   "options say the modality and degradation measured.")
@click.option("--data", "files", required=True, multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Held-out scan (repeatable): NIfTI or DICOM volume, DICOM series folder, 16-bit PNG slice. "
                   "The recipes in weights/recipes/ name which files were held out.")
@click.option("--limit", default=4, show_default=True, type=click.IntRange(1),
              help="Slices per file, evenly spaced among those with content.")
@click.option("--level", type=click.FloatRange(0, min_open=True), default=None,
              help="Degradation level: noise sd in normalised units (MR) or photons per ray (CT). "
                   "Default: the middle of the weights' training range.")
@click.option("--method", "--methods", "methods", multiple=True, metavar="NAME[,NAME...]",
              help="A row of the table; repeat it, or list rows with commas. Default: every row that applies "
                   "to the weights: denoising ours, bm3d, bm4d, bm4d_vst (MR only: BM4D through the Rician "
                   "variance-stabilising transform), noisy; super-resolution ours, cubic, zero_filled.")
@TILE_OPTION
@table_file_option("json", "every slice's scores and the means")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@table_report_option
def evaluate_medical_command(weights: str, files: tuple[Path, ...], limit: int, level: float | None,
                             methods: tuple[str, ...], tile: int, json_path: Path | None, quiet: bool) -> None:
    """Medical denoising (against BM3D, BM4D and, for MR, BM4D through the Rician variance-stabilising
    transform) or super-resolution (against cubic interpolation and
    zero-filled k-space) on held-out slices: PSNR/SSIM in stored units with the stored
    type's data range (restore/evaluate/medical.py has the protocol).

    \b
    Example:
      restore eval medical --weights runs/medical-ct-denoise/best.safetensors \\
          --data ../shared/data/medical/slices/ct4.png
    """
    from restore.evaluate.medical import evaluate_medical
    from restore.io.medical import MedicalReadError

    progress = None if quiet else (lambda line: click.echo(line, err=True))
    try:
        rows = tuple(method_names(methods))
        table = evaluate_medical(weights, list(files), limit=limit, level=level, methods=rows or None,
                                 progress=progress, device="cpu", tile=tile)
    except (FileNotFoundError, MedicalReadError, ValueError) as error:  # WeightsError is a ValueError
        raise click.UsageError(str(error)) from error
    click.echo(table.to_text())
    if json_path:
        table.write_json(json_path)

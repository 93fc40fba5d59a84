"""Options shared by the task commands, declared once."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from restore.io.limits import MAX_PIXELS

if TYPE_CHECKING:
    from restore.engine.batch import BatchReport

DEVICES = ["auto", "cpu", "cuda", "mps"]
PRECISIONS = ["fp32", "bf16", "fp16"]


def auto_or_number(parse: Callable[[str], Any], usage: str, problem: Callable[[Any], str | None]) -> Callable:
    """A click callback for an option that takes ``auto`` or a number: ``parse`` makes the
    number, ``usage`` is the message when it is not one, ``problem`` says what is wrong
    with a number out of range (None when it is fine)."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: str) -> Any:
        if value == "auto":
            return value
        try:
            number = parse(value)
        except ValueError:
            raise click.BadParameter(usage) from None
        if (message := problem(number)) is not None:
            raise click.BadParameter(message)
        return number

    return callback


_parse_tile = auto_or_number(
    int, "give a number of pixels, 0 (whole image) or auto",
    lambda size: "tiles must be 0 (whole image) or at least 32 pixels" if size < 0 or 0 < size < 32 else None,
)
_parse_batch_size = auto_or_number(
    int, "give a number of tiles (1 or more) or auto",
    lambda size: "give a number of tiles (1 or more) or auto" if size < 1 else None,
)


class Location(click.ParamType):
    """A local path, checked by ``local`` (a ``click.Path``), or a storage URL (``s3://``,
    ``gs://``, ``az://``, ``memory://``...) made an ObjectPath once refused if it holds
    credentials or if its protocol's package is missing."""

    name = "path"

    def __init__(self, local: click.Path) -> None:
        self.local = local

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from restore.io.storage import StorageError, is_url, location

        if not is_url(value):
            return self.local.convert(value, param, ctx)
        try:
            place = location(value)
        except StorageError as error:
            self.fail(str(error), param, ctx)
        return self.local.convert(place, param, ctx) if isinstance(place, Path) else place


REPORT_OPTION = click.option(
    "--report", "report_format", type=click.Choice(["json", "html"]), default="json", show_default=True,
    help="json: report.json only. html: also report.html, a page of before/after sliders of every input with its "
         "status, reason and settings (previews in OUT/.restore-report/; same as `restore report OUT`).")

CLUSTER_SETTINGS = ("cluster", "cluster_actors")  # where a command's batch runs: ClusterSettings's fields
CLUSTER_OPTIONS = [
    click.option("--cluster", metavar="ADDRESS", default=None,
                 help="Run the batch on a Ray cluster (pip install 'restore[cluster]'): auto (RAY_ADDRESS, or the "
                      "cluster started on this machine), HOST:PORT or ray://HOST:PORT. Decoding and writing run in "
                      "CPU tasks, the network in actors (one GPU each where there are GPUs); outputs go straight "
                      "to --out, which every node must reach: a storage URL or a shared folder "
                      "(docs/scale-out.md)."),
    click.option("--cluster-actors", type=click.IntRange(1), default=None, metavar="N",
                 help="Actors running the network on the cluster. Default: one per GPU, or one per node on a "
                      "cluster without GPUs."),
]

DEVICE_OPTION = click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                             help="Where the network runs: auto picks CUDA, then Apple MPS, then the CPU.")


def with_options(function: Callable, options: list[Callable]) -> Callable:
    """``function`` with the click ``options``, shown in ``--help`` in the order listed."""
    for option in reversed(options):
        function = option(function)
    return function


def strength_option(detail: str) -> Callable:
    """``--strength``, the share of a denoiser's change kept; ``detail`` ends the help text."""
    return click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
                        help="How much of the denoising to keep: output = input + strength x (restored - input)"
                             + detail)


def device_options(function: Callable) -> Callable:
    """Device and precision of a training run."""
    return with_options(function, [
        DEVICE_OPTION,
        click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
                     help="Arithmetic of the network: bf16 is ~2x faster on recent CPUs and GPUs; "
                          "fp16 needs a GPU."),
    ])


def inference_options(function: Callable) -> Callable:
    """How the network runs: device and precision, tiling, batching, self-ensemble (every
    command that runs a model over images or scans)."""
    options = [
        DEVICE_OPTION,
        click.option("--precision", type=click.Choice(["auto", *PRECISIONS, "int8"]), default="auto",
                     show_default=True,
                     help="Arithmetic of the network. auto: bf16 for 8-bit images where the hardware has it "
                          "(CPUs with AVX512-BF16/AMX, recent GPUs; about 2x faster) with shipped weights whose "
                          "bf16 outputs were measured against fp32 (`restore weights show`); fp32 for any other "
                          "weights file, for 16-bit, float and medical images, and elsewhere. fp16 needs a GPU. "
                          "int8: the graph quantised on training crops, with --backend onnxruntime or openvino "
                          "and shipped weights (docs/backends.md)."),
        click.option("--tile", default="auto", callback=_parse_tile, show_default=True, metavar="N|auto",
                     help="Split big images into N-pixel tiles blended without seams (bounded memory); "
                          "0 = whole image, auto = the largest size that fits in half the free memory "
                          "(at most 512 on the CPU, where larger tiles are not faster)."),
        click.option("--tile-overlap", default=32, show_default=True, type=click.IntRange(0),
                     help="Pixels shared by neighbouring tiles."),
        click.option("--batch-size", default="auto", callback=_parse_batch_size, show_default=True,
                     metavar="N|auto",
                     help="Tiles of an image per forward pass. auto: 1 on the CPU (batches of tiles are "
                          "slower there, bench/README.md), 4 on a GPU."),
        click.option("--ensemble", is_flag=True,
                     help="Run the 8 flips/rotations of each image and average them: slightly better "
                          "(about 0.1-0.2 dB on denoising benchmarks), 8 times slower."),
        click.option("--compile", is_flag=True,
                     help="Compile the network with torch.compile (needs a C++ compiler on the CPU). Pays "
                          "only on long runs of same-size images: each new tile shape compiles for seconds "
                          "to a minute. On a 2-core CPU it ranged from 0.57x (superres x4, bf16) to 1.18x "
                          "(denoise, bf16) the eager speed: measure yours with bench/compile_speed.py."),
        click.option("--backend", type=click.Choice(["torch", "onnxruntime", "openvino", "auto"]), default="torch",
                     show_default=True,
                     help="What runs the network: torch, or the network exported once to ONNX (cached) and run "
                          "by ONNX Runtime or OpenVINO on the CPU (pip install 'restore[onnx]' or "
                          "'restore[openvino]'; often 2-3x faster than torch there). auto: the fastest path "
                          "measured for the weights within 0.05 dB of torch fp32 (int8 under --precision auto, for 8-bit "
                          "images; docs/backends.md), else torch."),
    ]
    return with_options(function, options)


def task_options(function: Callable) -> Callable:
    """--in/--out, weights, device, tiling and batch options of every task command."""
    options = [
        click.option("--in", "source", required=True, type=Location(click.Path(exists=True, path_type=Path)),
                     help="An image file, or a folder searched recursively; or a storage URL (s3://bucket/prefix/, "
                          "gs://, az://, memory://...; docs/scale-out.md)."),
        click.option("--out", "destination", required=True,
                     type=Location(click.Path(file_okay=False, path_type=Path)),
                     help="Output folder (or storage URL). The input's sub-folder tree is mirrored here, with "
                          "report.json."),
        click.option("--weights", default=None, metavar="NAME|PATH",
                     help="Shipped weights or user model name (see `restore weights list`), a restore "
                          ".safetensors, or a community checkpoint (.pth/.pt/.ckpt/.safetensors of any "
                          "architecture spandrel recognises; docs/bring-your-own-model.md). "
                          "Default: the task's shipped weights for each image's channels."),
        click.option("--suffix", default="", help="Appended to each output name, e.g. _clean."),
        click.option("--ext", type=click.Choice(["same", "png", "jpg", "tif", "bmp", "webp"]), default="same",
                     show_default=True, help="Output format; same keeps each input's. JPEG/BMP cannot hold "
                                             "16-bit or alpha: those are reduced."),
        click.option("--jpeg-quality", default=95, show_default=True, type=click.IntRange(1, 100),
                     help="Quality of JPEG and WebP outputs (1-100; higher is larger and closer to the "
                          "network's output)."),
        *batch_options("decoding and encoding images", click.option(
            "--max-pixels", default=MAX_PIXELS, show_default=True, type=click.IntRange(1),
            help="Inputs with more pixels are refused before decoding (decompression bombs).")),
    ]
    return with_options(inference_options(function), options)


def batch_options(work: str, size_limit: Callable) -> list[Callable]:
    """The options of every batch command after its own (images or scans): resume or
    overwrite, the I/O threads (doing ``work``), ``size_limit``, progress, report, cluster."""
    return [
        click.option("--overwrite", is_flag=True,
                     help="Redo outputs that exist. By default they are skipped, so a re-run resumes."),
        click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
                     help=f"Threads {work} while the network runs."),
        size_limit,
        click.option("--quiet", is_flag=True, help="No progress bars (inputs done; tiles or slices of the one in work)."),
        REPORT_OPTION,
        *CLUSTER_OPTIONS,
    ]


def check_tiling(settings: dict[str, Any]) -> None:
    """--tile-overlap against --tile, before any image (not as a failure of each)."""
    from restore.engine.tiling import check_overlap

    try:
        check_overlap(settings["tile"], settings["tile_overlap"])
    except ValueError as error:
        raise click.UsageError(str(error)) from error


def command_settings(command: click.Command, arguments: Sequence[str], excluded: Collection[str], prog: str,
                     checked: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """``command``'s options but ``excluded`` (the batch's) parsed from command-line words by
    its own click parameters, defaults filled in, then ``checked`` and the tiling and
    precision checks the command makes before any image. What ``restore chain`` parses a
    step with and ``restore serve`` a request's form fields with, so both take exactly what
    the command takes. Raises ValueError with the command's message."""
    from restore.engine.device import check_precision, resolve_device

    excluded = {*excluded, *CLUSTER_SETTINGS}  # a chain's step or a web request runs here, not on a cluster
    parser = click.Command(command.name, params=[param for param in command.params if param.name not in excluded],
                           add_help_option=False)
    try:
        settings = checked(parser.make_context(prog, list(arguments)).params)
        check_tiling(settings)
        check_precision(resolve_device(settings["device"]), settings["precision"], allow_auto=True)
    except click.ClickException as error:
        raise ValueError(error.format_message()) from error
    return settings


def run_task(task: str, settings: dict[str, Any]) -> None:
    """Run a task command's folder batch and exit 0 (all done), 1 (some failed) or 2."""
    from restore.api import process_folder

    run_batch_command(settings, partial(process_folder, task))


def run_batch_command(settings: dict[str, Any], run: Callable[..., BatchReport]) -> None:
    """Run a batch command (images or scans): ``run(source, destination, **settings)``
    after the checks made before any input, then exit 0 (all done), 1 (some failed) or 2
    (a usage error, with its message)."""
    from restore.engine.batch import BatchUsageError
    from restore.engine.cluster import ClusterError
    from restore.engine.device import DeviceError, PrecisionError, check_precision, resolve_device
    from restore.io.storage import StorageError
    from restore.weights import WeightsError

    check_tiling(settings)
    source, destination = settings.pop("source"), settings.pop("destination")
    report_format = settings.pop("report_format", "json")
    check_report_format(destination, report_format)
    try:
        check_precision(resolve_device(settings["device"]), settings["precision"], allow_auto=True)
        report = run(source, destination, **settings)
    except (BatchUsageError, DeviceError, PrecisionError, WeightsError, StorageError, ClusterError) as error:
        raise click.UsageError(str(error)) from error
    finish(report, destination, report_format)


def check_report_format(destination: Any, report_format: str) -> None:
    """--report html writes a page and its previews into a local --out only (for now)."""
    if report_format == "html" and not isinstance(destination, Path):
        raise click.UsageError("--report html writes into a local --out only for now; run `restore report` on a "
                               "local copy of the output (its report.json and images)")


def finish(report: BatchReport, destination: Path, report_format: str = "json") -> None:
    """Say what went wrong or differently, write the page if ``report_format`` is html, and
    exit 0 (all done) or 1 (some inputs failed)."""
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for outcome in report.outcomes:
        if outcome.status == "failed":
            click.echo(f"failed: {outcome.input}: {outcome.reason}", err=True)
        elif outcome.info.get("warning"):  # done, but not as asked (e.g. inpaint: no mask found)
            click.echo(f"warning: {outcome.input}: {outcome.info['warning']}", err=True)
    click.echo(f"{report.summary()}; report: {destination / 'report.json'}")
    if report_format == "html":
        from restore.cli.report import write_page

        click.echo(f"page: {write_page(destination)}")
    raise SystemExit(report.exit_code)

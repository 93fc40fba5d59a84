"""``restore weights``: what is shipped, and how each file was made and measured."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def weights() -> None:
    """Shipped weights (weights/manifest.toml), your own models, and what any weights file holds."""


@weights.command(name="list")
def list_weights() -> None:
    """One line per shipped weights file (task, size, headline metric; `restore weights show
    NAME` has every measured number), then the user's own models (`restore weights add`)."""
    from restore.weights import headline_metric, load_manifest
    from restore.weights.user_models import load_registry, restore_home

    manifest = load_manifest()
    if not manifest:
        click.echo("no weights are shipped in this installation")
    else:
        click.echo("shipped:")
        rows = [("name", "task", "channels", "params", "file", "headline metric")]
        for entry in manifest.values():
            size = f"{entry.path.stat().st_size / 1e6:.1f} MB" if entry.path.is_file() else "missing"
            rows.append((entry.name, entry.task, str(entry.channels), f"{entry.parameters / 1e6:.2f}M", size,
                         headline_metric(entry.metrics)))
        _echo_table(rows)
    users = _usage_errors(load_registry)
    click.echo(f"\nuser models ({restore_home()}):")
    if not users:
        click.echo("  none: add one with `restore weights add FILE --name NAME`")
        return
    rows = [("name", "task", "architecture", "scale", "params", "file")]
    for model in users.values():
        rows.append((model.name, model.task, model.architecture, f"x{model.scale}", f"{model.parameters / 1e6:.2f}M",
                     f"{model.path}{' (linked)' if model.linked else ''}"))
    _echo_table(rows)


def _echo_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _usage_errors(function, *args, **kwargs):  # noqa: ANN001, ANN202 - any call, its result
    """``function(*args, **kwargs)``, a weights error becoming a usage error (exit 2)."""
    from restore.weights import WeightsError

    try:
        return function(*args, **kwargs)
    except WeightsError as error:
        raise click.UsageError(str(error)) from error


@weights.command()
@click.argument("file", metavar="FILE|NAME")
@click.option("--task", type=click.Choice(["superres", "denoise", "inpaint"]), default=None,
              help="Check the file as weights for this command (a wrong purpose is refused).")
def inspect(file: str, task: str | None) -> None:
    """What a weights file holds, without running anything from it: architecture, purpose,
    scale, channels, parameters, size requirements, supported precisions and sha256. For
    restore's files and community checkpoints (.pth, .pt, .ckpt, .safetensors) alike."""
    from restore.weights import resolve_weights, sha256_of
    from restore.zoo.models import describe_file

    path, _ = _usage_errors(resolve_weights, file)
    described = _usage_errors(describe_file, path, task)
    click.echo(f"file: {path}")
    for key, value in described.items():
        if value not in (None, ""):
            click.echo(f"{key}: {value}")
    click.echo(f"sha256: {sha256_of(path)}")


@weights.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The name to pass to --weights.")
@click.option("--task", type=click.Choice(["superres", "denoise", "inpaint"]), default=None,
              help="The command that runs it. Default: the one its architecture's purpose fits.")
@click.option("--link", is_flag=True, help="Record the file where it is instead of copying it (it must not move).")
def add(file: Path, name: str, task: str | None, link: bool) -> None:
    """Add a weights file (restore's or any architecture spandrel recognises) to your own
    models, copied into restore's data folder (RESTORE_HOME overrides it), so that
    `--weights NAME` finds it. Its sha256 is recorded: a file changed later is refused."""
    from restore.zoo.registry import add_model

    model = _usage_errors(add_model, file, name, task=task, link=link)
    click.echo(f"added {model.name}: {model.architecture}, {model.task} x{model.scale}, "
               f"{model.parameters / 1e6:.2f}M parameters, sha256 {model.sha256[:12]} ({model.path})")


@weights.command()
@click.argument("name")
def remove(name: str) -> None:
    """Forget a user model (restore's copy is deleted, a linked file is left alone)."""
    from restore.zoo.registry import remove_model

    model = _usage_errors(remove_model, name)
    click.echo(f"removed {model.name}" + (f" (the linked file {model.path} is kept)" if model.linked else ""))


@weights.command()
@click.argument("name")
def show(name: str) -> None:
    """Everything the manifest records about NAME, and whether its file checks out."""
    from restore.weights import load_manifest, sha256_of

    manifest = load_manifest()
    if name not in manifest:
        raise click.UsageError(f"no shipped weights named {name!r}; known: {', '.join(sorted(manifest))}")
    entry = manifest[name]
    for field_name, value in vars(entry).items():
        click.echo(f"{field_name}: {value}")
    status = "ok" if entry.path.is_file() and sha256_of(entry.path) == entry.sha256 else "MISSING OR DAMAGED"
    click.echo(f"file check: {status} ({entry.path})")


@weights.command()
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(["safetensors", "onnx"]), default="safetensors", show_default=True,
              help="safetensors: ship a trained SOURCE in weights/ (maintainers). onnx: write the ONNX graph of "
                   "any weights restore loads (a shipped or user model's NAME, or a file), checked against torch.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="onnx: the graph file to write (default: NAME.onnx in the working folder).")
@click.option("--task", type=click.Choice(["superres", "denoise", "inpaint"]), default=None,
              help="onnx: the command that runs a community checkpoint. Default: the one its architecture's "
                   "purpose fits.")
@click.option("--name", default=None, help="Name users will pass to --weights, e.g. denoise-color (safetensors).")
@click.option("--recipe", default=None,
              help="The recipe that trained it, e.g. weights/recipes/denoise-color.toml (safetensors).")
@click.option("--description", default="", help="One line for `restore weights list`.")
@click.option("--notes", default="", help="Anything a user should know (training length, limits).")
@click.option("--grey", is_flag=True,
              help="Ship the 1-channel equivalent of an RGB U-Net: same output as the RGB model on a grey "
                   "image replicated to RGB and averaged back, at a third of the input/output cost.")
@click.option("--int8", is_flag=True,
              help="Store the convolution weights as 8-bit integers with one scale per output channel: half "
                   "the size of fp16, for big networks. Loading turns them back into floats; re-run the "
                   "benchmark to check the outputs did not change.")
@click.pass_context
def export(ctx: click.Context, source: str, fmt: str, out: Path | None, task: str | None, name: str | None,
           recipe: str | None, description: str, notes: str, grey: bool, int8: bool) -> None:
    """Ship a trained SOURCE (e.g. RUN/best.safetensors) as fp16 (or int8) weights in weights/ and
    record it in the manifest (for maintainers; the bench/ scripts then add its metrics). With
    --format onnx: write the ONNX graph of NAME (dynamic batch, height and width; opset 17) for
    ONNX Runtime, OpenVINO or any ONNX runtime, once it matches torch fp32 within 1e-3 on test tiles."""
    if fmt == "onnx":
        _export_onnx(source, out, task)
        return
    params = {param.name: param for param in ctx.command.params}
    source = click.Path(exists=True, dir_okay=False).convert(source, params["source"], ctx)  # click's own message
    for option, value in (("name", name), ("recipe", recipe)):
        if value is None:
            raise click.MissingParameter(ctx=ctx, param=params[option])
    from restore.weights import export_weights

    entry = export_weights(Path(source), name, recipe, description, notes, grey=grey, int8=int8)
    click.echo(f"exported {entry.name}: {entry.path} ({entry.parameters / 1e6:.2f}M parameters, sha256 {entry.sha256[:12]})")


def _export_onnx(source: str, out: Path | None, task: str | None) -> None:
    """``restore weights export NAME --format onnx``: load as every command does, export, check, write."""
    from restore.engine.backends import BackendError
    from restore.engine.backends.export import OPSET, graph_input, write_graph
    from restore.model import Restorer
    from restore.weights import resolve_weights
    from restore.zoo.models import describe_file

    if task is None:  # a community checkpoint is recognised for the command its purpose fits
        task = _usage_errors(describe_file, _usage_errors(resolve_weights, source)[0])["task"]
    model = _usage_errors(Restorer.from_weights, source, task=task, device="cpu", precision="fp32")
    out = out if out is not None else Path(f"{Path(source).stem}.onnx")
    try:
        difference = write_graph(model.network, model.metadata["network"], out)
    except BackendError as error:
        raise click.UsageError(str(error)) from error
    graph = graph_input(model.network, model.metadata["network"])
    inputs = f"{graph.channels} channels" + (" (the last: noise-level map or hole mask)" if graph.condition else "")
    click.echo(f"exported {model.name} to {out}: ONNX opset {OPSET}, input (batch, {inputs}, height, width) "
               f"float32 in [0, 1], {model.task.name} x{model.scale}; largest difference from torch fp32 "
               f"{difference:.1e}")

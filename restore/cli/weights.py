"""``restore weights``: what is shipped, and how each file was made and measured."""

from __future__ import annotations

import click


@click.group()
def weights() -> None:
    """Shipped default weights (weights/manifest.toml)."""


@weights.command(name="list")
def list_weights() -> None:
    """One line per shipped weights file: task, size, and its headline metric."""
    from restore.weights import load_manifest

    manifest = load_manifest()
    if not manifest:
        click.echo("no weights are shipped in this installation")
        return
    rows = [("name", "task", "params", "channels", "metrics")]
    for entry in manifest.values():
        metrics = ", ".join(f"{key} {value}" for key, value in entry.metrics.items())
        rows.append((entry.name, entry.task, f"{entry.parameters / 1e6:.2f}M", str(entry.channels), metrics))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


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
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="Name users will pass to --weights, e.g. denoise-color.")
@click.option("--recipe", required=True, help="The recipe that trained it, e.g. weights/recipes/denoise-color.toml.")
@click.option("--description", default="", help="One line for `restore weights list`.")
@click.option("--notes", default="", help="Anything a user should know (training length, limits).")
@click.option("--grey", is_flag=True,
              help="Ship the 1-channel equivalent of an RGB U-Net: same output as the RGB model on a grey "
                   "image replicated to RGB and averaged back, at a third of the input/output cost.")
@click.option("--int8", is_flag=True,
              help="Store the convolution weights as 8-bit integers with one scale per output channel: half "
                   "the size of fp16, for big networks. Loading turns them back into floats; re-run the "
                   "benchmark to check the outputs did not change.")
def export(source: str, name: str, recipe: str, description: str, notes: str, grey: bool, int8: bool) -> None:
    """Ship a trained SOURCE (e.g. RUN/best.safetensors) as fp16 (or int8) weights in weights/ and
    record it in the manifest (for maintainers; the bench/ scripts then add its metrics)."""
    from pathlib import Path

    from restore.weights import export_weights

    entry = export_weights(Path(source), name, recipe, description, notes, grey=grey, int8=int8)
    click.echo(f"exported {entry.name}: {entry.path} ({entry.parameters / 1e6:.2f}M parameters, sha256 {entry.sha256[:12]})")

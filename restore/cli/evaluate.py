"""``restore eval``: measure outputs against references, or run a task's standard protocol."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(name="eval", invoke_without_command=True)
@click.option("--pred", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of outputs to measure.")
@click.option("--ref", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of references, matched to --pred by relative path and name (any extension).")
@click.option("--strip-suffix", default="", help="Removed from prediction names before matching, e.g. _clean.")
@click.option("--y-channel", is_flag=True, help="Measure BT.601 luma only (the super-resolution convention).")
@click.option("--crop", default=0, show_default=True, type=click.IntRange(0),
              help="Pixels removed from every border before measuring (super-resolution: the scale).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table as CSV.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table as JSON.")
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

"""``restore report``: the page of a batch or of an eval table, written where it lies."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
              help="Threads decoding images for the previews.")
def report(target: Path, workers: int) -> None:
    """Write an HTML page of a run, to open in any browser (it loads nothing from the network).

    \b
    TARGET is one of:
      OUT/ (or OUT/report.json) of a task command: OUT/report.html, a before/after slider per
        image with its status, reason, time and settings, filters and sorting; previews in
        OUT/.restore-report/ (made again only for files that changed);
      a `restore eval ... --json FILE.json` table: FILE.html beside it, the means, the metric
        per image and its plot (needs matplotlib: pip install 'restore[report]').
    Task commands write the batch page themselves with --report html.
    """
    page = write_page(target, workers)
    click.echo(f"page: {page}")


def write_page(target: Path, workers: int = 2) -> Path:
    """Write the page of ``target``; a target restore cannot make a page of is a usage error."""
    from restore.report import ReportError, write_report_page

    try:
        return write_report_page(target, workers)
    except ReportError as error:
        raise click.UsageError(str(error)) from error


def table_report_option(function: Callable) -> Callable:
    """``--report json|html`` for a ``restore eval`` command with ``--json FILE``: ``html``
    also writes FILE.html beside the table (what ``restore report FILE`` writes)."""

    @functools.wraps(function)
    def command(*args: Any, report_format: str, **settings: Any) -> None:
        if report_format == "html" and settings.get("json_path") is None:
            raise click.UsageError("--report html writes the page beside the table: give --json FILE.json too")
        function(*args, **settings)
        if report_format == "html":
            click.echo(f"page: {write_page(settings['json_path'])}")

    return click.option("--report", "report_format", type=click.Choice(["json", "html"]), default="json",
                        show_default=True,
                        help="html: also FILE.html beside the --json table: the means, the metric per image and "
                             "its plot (as `restore report FILE.json`).")(command)

"""The page of a ``restore eval --json`` file: each table's means, a plot of the metric per
image (matplotlib) and the per-image values, as static HTML."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from restore.report.evaluation import MetricTable, formatted
from restore.report.page import html_page
from restore.report.plot import MissingMatplotlib, plot_per_image
from restore.report.store import previews_folder


def eval_page(tables: list[MetricTable], title: str, folder: Path, stem: str) -> str:
    """The page's HTML; plots are written to ``folder/.restore-report/<stem>-<table>-<metric>.png``."""
    plots = previews_folder(folder)
    sections = [f"<header><h1>{html.escape(title)}</h1>"
                f'<p class="meta">restore eval: {len(tables)} table(s)</p></header>', "<main>"]
    for index, table in enumerate(tables):
        sections.append(_section(table, plots, f"{stem}-{index}"))
    sections.append("</main>")
    return html_page(title, "\n".join(sections))


def _section(table: MetricTable, plots: Path, prefix: str) -> str:
    parts = [f'<section class="table"><h2>{html.escape(table.title)}</h2>', _means(table)]
    if table.settings:
        parts.append("<details><summary>Settings</summary>" + _settings(table) + "</details>")
    for metric, series in table.per_image.items():
        name = f"{prefix}-{metric}.png"
        try:
            plot_per_image(plots / name, metric, series)
            parts.append(f'<h3>{metric.upper()} per image</h3><img class="plot" src="{quote(plots.name)}/{quote(name)}" '
                         f'alt="{metric} per image, one line per method">')
        except MissingMatplotlib as error:
            parts.append(f'<p class="meta">{html.escape(str(error))}</p>')
        parts.append(f"<details><summary>{metric.upper()} of every image</summary>{_per_image(metric, series)}</details>")
    parts.append("</section>")
    return "\n".join(parts)


def _means(table: MetricTable) -> str:
    columns = list(dict.fromkeys(key for row in table.means for key in row))
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(formatted(column, row.get(column)))}</td>" for column in columns) + "</tr>"
        for row in table.means
    )
    return f'<table class="metrics means"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _per_image(metric: str, series: dict[str, dict[str, float]]) -> str:
    names = list(series)
    images = sorted({image for values in series.values() for image in values})
    head = "<th>image</th>" + "".join(f"<th>{html.escape(name)}</th>" for name in names)
    body = "".join(
        f"<tr><td>{html.escape(image)}</td>"
        + "".join(f"<td>{formatted(metric, series[name].get(image))}</td>" for name in names) + "</tr>"
        for image in images
    )
    return f'<table class="metrics per-image"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _settings(table: MetricTable) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
                   for key, value in table.settings.items())
    return f'<table class="keys">{rows}</table>'

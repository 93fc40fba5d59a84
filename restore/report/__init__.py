"""``restore report``: a run's results as a page to open in a browser, written into the run's
own folder and requesting nothing from anywhere else.

- a batch (``OUT/`` or its ``report.json``): ``OUT/report.html``, a before/after slider per
  image with its status, reason, time and settings, filters and sorting; small previews in
  ``OUT/.restore-report/`` (restore.report.gallery);
- a ``restore eval --json`` table: ``NAME.html`` beside ``NAME.json``, the means, the metric
  per image and its plot (restore.report.eval_page).
"""

from __future__ import annotations

import json
from pathlib import Path

from restore.engine.batch import PAGE_NAME, REPORT_NAME, is_report_page
from restore.engine.ledger import read_report
from restore.io.files import display_path
from restore.report.eval_page import eval_page
from restore.report.evaluation import metric_tables
from restore.report.gallery import gallery_data
from restore.report.page import asset, html_page, write_page
from restore.report.store import ReportError

__all__ = ["ReportError", "write_report_page"]


def write_report_page(target: str | Path, workers: int = 2) -> Path:
    """Write the page of ``target`` (a batch's --out folder, its report.json, or an eval
    JSON file) and return the page's path. ``workers`` threads make the previews."""
    target = Path(target)
    source = target / REPORT_NAME if target.is_dir() else target
    shown = display_path(source)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ReportError(f"{shown}: not found; give the --out folder of a restore run or a `restore eval --json` "
                          f"file") from error
    except (OSError, ValueError) as error:
        raise ReportError(f"{shown}: cannot be read as JSON ({error})") from error
    if read_report(source) is not None:
        page = source.parent / PAGE_NAME
        _check_replaceable(page)
        gallery = gallery_data(source.parent, data, workers)
        write_page(page, html_page(gallery["title"], asset("gallery.html"), "gallery.js", gallery))
        return page
    tables = metric_tables(data, source.stem)
    if tables is None:
        raise ReportError(f"{shown}: neither the report.json of a restore run nor a `restore eval --json` table")
    page = source.with_suffix(".html")
    _check_replaceable(page)
    write_page(page, eval_page(tables, f"restore eval: {source.name}", source.parent, source.stem))
    return page


def _check_replaceable(page: Path) -> None:
    """A page is written over only if it is one restore wrote (a user's file is never replaced)."""
    if page.is_symlink() or (page.exists() and not is_report_page(page)):
        raise ReportError(f"{display_path(page)} exists and is not a page restore wrote; move it away")

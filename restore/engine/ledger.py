"""What an earlier run left in ``--out``: the settings its outputs were made with and the
input each output was made from (both in its ``report.json``).

A rerun into the same ``--out`` reads them before it decides what is already done: an
output made with other settings, or from another input that now gives its name up (``shot.jpg``
made ``shot.png`` with ``--ext png``, then ``shot.png`` joined ``--in``), is not a finished
output of this run, however much it exists."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restore.io.storage import ObjectPath

_READ_LIMIT = 256 * 1024 * 1024  # bytes of a report.json read to tell whether restore wrote it


def read_report(path: Path | ObjectPath) -> dict[str, Any] | None:
    """The content of ``path`` if it is the report.json of a restore run, else None."""
    try:
        if isinstance(path, ObjectPath):
            report = json.loads(path.read_bytes(_READ_LIMIT))
        else:
            with open(path, "rb") as handle:
                report = json.loads(handle.read(_READ_LIMIT))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and {"summary", "files"} <= report.keys() else None


def as_json(value: Any) -> Any:
    """``value`` as it reads back from report.json (tuples as lists, paths as text), so that a
    run's settings compare equal to the same settings read from an earlier report."""
    return json.loads(json.dumps(value, default=str))


class RerunError(ValueError):
    """A rerun into an --out whose outputs were made with other settings."""


@dataclass
class Ledger:
    """What is known of the outputs already in ``--out``.

    ``made_from`` maps each output (relative to --out) to the real path of the input it was
    made from with this run's settings. ``known`` is False where nothing is known (no
    report, or one written by a restore that did not record its settings): an existing
    output then counts as done, as it always did, since nothing says otherwise."""

    made_from: dict[str, str]
    known: bool
    warning: str = ""


def previous_outputs(
    report: dict[str, Any] | None, settings: dict[str, Any], overwrite: bool, out: Path, shown: str,
    defaults: dict[str, Any] | None = None, ignored: Collection[str] = (),
) -> Ledger:
    """The ledger a run with ``settings`` starts from, given the ``report`` of the previous run
    into ``out`` (None: there is none; ``shown``: ``out`` in messages). A setting that report
    does not record was ``defaults[name]`` when it was made, where given; the ``ignored``
    settings cannot change this run's outputs (a JPEG quality where none is written as JPEG)
    and are not compared.

    Raises :class:`RerunError` when that run's outputs were made with other settings and
    ``overwrite`` is not set: skipping them would report them as this run's. A run that left
    none of its outputs (stopped at once, or every input failed) has nothing at stake."""
    if report is None:
        return Ledger({}, known=False)
    old = report.get("settings")
    if not isinstance(old, dict):
        return Ledger({}, known=False, warning=(
            f"{shown}/report.json was written by an older restore that did not record its settings: outputs "
            f"already there are kept (skipped) whatever settings made them; use --overwrite to redo them"))
    made_from = report.get("made_from")
    made_from = made_from if isinstance(made_from, dict) else {}
    compared = {name: value for name, value in settings.items() if name not in ignored}
    changed = differences({name: value for name, value in old.items() if name not in ignored}, compared,
                          defaults or {})
    if not changed:
        return Ledger({str(k): str(v) for k, v in made_from.items()}, known=True)
    if not overwrite and any((out / str(name)).exists() for name in made_from):
        raise RerunError(
            f"--out {shown} holds the outputs of a run with other settings ({'; '.join(changed)}): use "
            f"--overwrite to redo them with these settings, or choose another --out"
        )
    return Ledger({}, known=True)  # all made with the old settings: none is this run's


def differences(old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """``name: old -> new`` for each setting that differs (one missing on a side included; one
    missing on the old side is its entry in ``defaults``, where it has one)."""
    missing = "(not recorded)"
    old = {**{name: value for name, value in defaults.items() if name in new}, **old}
    return [
        f"{name}: {_shown(old.get(name, missing))} -> {_shown(new.get(name, missing))}"
        for name in sorted(old.keys() | new.keys())
        if old.get(name, missing) != new.get(name, missing)
    ]


def _shown(value: Any) -> str:
    """A setting's value in a message: text as is, anything else as JSON, sha256 digests cut to
    12 digits (enough to tell two files apart)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1...", text)

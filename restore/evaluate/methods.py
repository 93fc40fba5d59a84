"""The rows a benchmark table can have, built in one place for `restore eval` and bench/.

A row is a classical baseline, found by name in its protocol module's ``BASELINES``, or
the model: ``ours`` (one pass) or ``ours+`` (the x8 flip/rotation self-ensemble), built by
the module's ``model_method``. This module names the rows without importing the protocols
(OpenCV, torch), so the CLI lists them in its help at no cost; a protocol is imported when
a table is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The model's rows, each with whether it runs the x8 flip/rotation self-ensemble: "ours+"
# is the "+" row of EDSR's and RCAN's tables (8 times the time), reported beside the
# single pass so both stay comparable.
MODEL_METHODS = {"ours": False, "ours+": True}


@dataclass(frozen=True)
class Protocol:
    """A benchmark's rows: ``module`` holds its ``BASELINES`` and ``model_method``."""

    module: str
    methods: tuple[str, ...]  # every row it can have, in the order help lists them
    defaults: tuple[str, ...]  # the rows `restore eval` computes when none are asked for


PROTOCOLS = {
    "denoise": Protocol("restore.evaluate.denoise", ("ours", "bm3d", "nlmeans", "noisy"),
                        ("ours", "bm3d", "nlmeans", "noisy")),
    "superres": Protocol("restore.evaluate.superres", ("bicubic", "lanczos", "ours", "ours+"), ("bicubic",)),
    "inpaint": Protocol("restore.evaluate.inpaint", ("ours", "ours+", "telea", "navier_stokes", "biharmonic"),
                        ("ours", "telea", "navier_stokes", "biharmonic")),
}


def method_names(values: Iterable[str]) -> list[str]:
    """The rows asked for in ``values`` (each one name or a comma-separated list), in order, each once."""
    return list(dict.fromkeys(name.strip() for value in values for name in value.split(",") if name.strip()))


def parse_methods(protocol: str, values: Iterable[str]) -> list[str]:
    """:func:`method_names` of ``values``, checked: a ValueError names the unknown ones and the
    known ones, or says there are none when nothing is asked for."""
    names = method_names(values)
    known = PROTOCOLS[protocol].methods
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        prefix = f"unknown method(s) {', '.join(unknown)}; " if unknown else ""
        raise ValueError(f"{prefix}choose from {', '.join(known)}")
    return names


def table_methods(protocol: str, names: Sequence[str], weights: Sequence[str], **settings: Any) -> dict[str, Any]:
    """The table's methods by row name, in the order of ``names``: each baseline once, each
    model row once per model in ``weights`` (:func:`model_row_names`). ``settings`` go to
    the protocol's ``model_method`` (device, precision, tile; superres also ``scale``)."""
    module = importlib.import_module(PROTOCOLS[protocol].module)
    methods: dict[str, Any] = {}
    for name in names:
        if name not in MODEL_METHODS:
            methods[name] = module.BASELINES[name]
            continue
        for row, model in model_row_names(name, weights).items():
            methods[row] = module.model_method(model, ensemble=MODEL_METHODS[name], **settings)
    return methods


def model_row_names(method: str, weights: Sequence[str]) -> dict[str, str]:
    """Row name -> model for a model method (``ours``/``ours+``): the method's own name for
    one model; for several, each model's name (its file stem), ``+`` for ``ours+``."""
    if len(weights) == 1:
        return {method: weights[0]}
    plus = "+" if MODEL_METHODS[method] else ""
    rows: dict[str, str] = {}
    for name in weights:
        label = Path(name).stem if Path(name).suffix else name
        label = label if label + plus not in rows else f"{label}#{len(rows) + 1}"
        rows[label + plus] = name
    return rows

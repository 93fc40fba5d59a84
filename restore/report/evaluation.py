"""The tables of ``restore eval --json`` files in one shape, whatever the protocol wrote.

A :class:`MetricTable` is what the page shows of one table: its mean rows (one per method,
or per method and noise level / hole bin) and, where the protocol measured images one by
one, each series' value per image for each metric (``per_image[metric][series][image]``).
The protocols' own JSON is recognised by its keys (restore.evaluate's ``to_dict`` and
``write_json``): ``restore eval --pred --ref``, ``eval denoise`` (one table per set),
``eval superres``, ``eval inpaint`` (bins, no per-image values), ``eval medical`` (per
slice) and ``eval style`` (distribution distances only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PerImage = dict[str, dict[str, dict[str, float]]]  # metric -> series -> image -> value
PER_IMAGE_METRICS = ("psnr", "ssim")


@dataclass
class MetricTable:
    title: str
    settings: dict[str, Any] = field(default_factory=dict)
    means: list[dict[str, Any]] = field(default_factory=list)  # one row per method (and level), keys = columns
    per_image: PerImage = field(default_factory=dict)


def number(value: Any) -> float | None:
    """A table value as a float (JSON's ``"inf"``/``"nan"`` strings included), None if not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _per_image(series: dict[str, dict[str, Any]]) -> PerImage:
    """``{series: {image: {metric: value}}}`` turned into :data:`PerImage`."""
    table: PerImage = {}
    for name, images in series.items():
        for image, values in images.items():
            for metric in PER_IMAGE_METRICS:
                value = number(values.get(metric)) if isinstance(values, dict) else None
                if value is not None:
                    table.setdefault(metric, {}).setdefault(name, {})[image] = value
    return table


def _pairs(data: dict[str, Any], title: str) -> list[MetricTable]:
    images = {item["name"]: item for item in data["images"] if isinstance(item, dict) and "name" in item}
    mean = {"method": "prediction", **data["mean"]}
    return [MetricTable(title, data.get("settings", {}), [mean], _per_image({"prediction": images}))]


def _superres(data: dict[str, Any], title: str) -> list[MetricTable]:
    methods = data["methods"]
    means = [{"method": name, **{k: v for k, v in values.items() if k != "images"}} for name, values in methods.items()]
    settings = {"scale": data.get("scale"), **data.get("protocol", {}), **data.get("settings", {})}
    return [MetricTable(f"{data.get('dataset', title)} x{data.get('scale', '?')}", settings, means,
                        _per_image({name: values.get("images", {}) for name, values in methods.items()}))]


def _denoise_set(data: dict[str, Any]) -> MetricTable:
    means, series = [], {}
    for name, method in data["methods"].items():
        for sigma, values in method.get("sigma", {}).items():
            means.append({"method": name, "sigma": sigma, "psnr": values.get("psnr"), "ssim": values.get("ssim"),
                          "seconds_per_megapixel": method.get("seconds_per_megapixel")})
            series[f"{name} \u03c3{sigma}"] = values.get("per_image", {})
    settings = {"channels": data.get("channels"), **data.get("settings", {})}
    return MetricTable(str(data.get("dataset", "denoise")), settings, means, _per_image(series))


def _inpaint(data: dict[str, Any], title: str) -> list[MetricTable]:
    return [MetricTable(str(data.get("dataset", title)), {**data.get("settings", {}), "seconds": data.get("seconds")},
                        list(data["rows"]))]


def _medical(data: dict[str, Any], title: str) -> list[MetricTable]:
    means = [{"method": name, **values} for name, values in data["means"].items()]
    series: dict[str, dict[str, Any]] = {}
    for row in data["rows"]:
        series.setdefault(str(row.get("method")), {})[f"{row.get('file')} #{row.get('slice')}"] = row
    return [MetricTable(title, data.get("settings", {}), means, _per_image(series))]


def _style(data: dict[str, Any], title: str) -> list[MetricTable]:
    row = {"method": data.get("method"), "predictions": data.get("predictions"), "targets": data.get("targets"),
           **data.get("values", {})}
    return [MetricTable(title, data.get("settings", {}), [row])]


# (keys that identify a protocol's JSON, the reader of it), most specific first
_FORMATS: list[tuple[frozenset[str], Callable[[dict[str, Any], str], list[MetricTable]]]] = [
    (frozenset({"mean", "images"}), _pairs),
    (frozenset({"methods", "scale"}), _superres),
    (frozenset({"rows", "pairs"}), _inpaint),
    (frozenset({"means", "rows"}), _medical),
    (frozenset({"values", "predictions", "targets"}), _style),
]


def metric_tables(data: Any, title: str) -> list[MetricTable] | None:
    """The tables of an eval JSON file, or None when ``data`` is no eval table (``title``:
    what to call a table that names no dataset, e.g. the file's name)."""
    if not isinstance(data, dict):
        return None
    for keys, reader in _FORMATS:
        if keys <= data.keys():
            try:
                return reader(data, title)
            except (AttributeError, KeyError, TypeError):
                return None
    sets = [value for value in data.values() if isinstance(value, dict) and "methods" in value and "sigmas" in value]
    if sets and len(sets) == len(data):  # restore eval denoise: {set name: table}
        try:
            return [_denoise_set(value) for value in sets]
        except (AttributeError, KeyError, TypeError):
            return None
    return None


def formatted(column: str, value: Any) -> str:
    """A table cell: PSNR-like numbers with 2 decimals, SSIM with 4, others (text, whole
    numbers, JSON's ``"inf"``) as they are."""
    if value is None:
        return ""
    value_number = number(value)
    if value_number is None or isinstance(value, (int, str)) or not math.isfinite(value_number):
        return str(value)
    if "ssim" in column:
        return f"{value_number:.4f}"
    return f"{value_number:.2f}" if abs(value_number) >= 1 else f"{value_number:.4g}"

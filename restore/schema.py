"""Settings against the dataclass fields they fill: keyword options by name, values read
from files (recipes, weights headers) by type.

Keyword options (``process_folder(..., sigma=25)``) are divided among the dataclasses of
the layers that take them (batch, model, task) by the fields each declares, so a
misspelt or misplaced name is an error that names it, not a silently ignored setting.

TOML and JSON hand over whatever the file says: ``steps = "forty"`` would otherwise fail
deep inside training with a ``TypeError``, and ``train = "folder"`` (a list expected) would
be read as the folders ``f``, ``o``, ``l``... Each field's annotation says what it takes.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import typing
from collections.abc import Iterable, Mapping
from typing import Any


def option_names(owner: type) -> tuple[str, ...]:
    """The keyword options dataclass ``owner`` takes (its fields set by ``__init__``)."""
    return tuple(field.name for field in dataclasses.fields(owner) if field.init)


def option_defaults(owner: type) -> dict[str, Any]:
    """``{name: default}`` of the keyword options of dataclass ``owner`` that have a plain default."""
    return {field.name: field.default for field in dataclasses.fields(owner)
            if field.init and field.default is not dataclasses.MISSING}


def check_option_names(given: Iterable[str], known: Iterable[str], where: str) -> None:
    """Raise TypeError naming the first of ``given`` that is not one of ``known``, with the
    closest known name when one is close (a typo) or else every known name."""
    known = list(known)
    for name in given:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known)) or 'none'}"
        raise TypeError(f"{where}: unknown option {name!r}; {hint}")


def split_options(options: Mapping[str, Any], *owners: type, where: str) -> list[dict[str, Any]]:
    """``options`` divided among the dataclasses ``owners``, one dict per owner with the
    names it declares (a name several declare goes to each, e.g. ``max_pixels`` to the
    batch and to a task that reads files or makes outputs by it). A name no owner declares
    raises TypeError (see :func:`check_option_names`); ``where`` says whose options they are."""
    declared = [option_names(owner) for owner in owners]
    check_option_names(options, [name for names in declared for name in names], where)
    return [{name: value for name, value in options.items() if name in names} for names in declared]


def options_of(owner: type, options: Mapping[str, Any], where: str) -> Any:
    """The dataclass ``owner`` built from keyword ``options``, an unknown name being a
    TypeError that names it (see :func:`check_option_names`)."""
    check_option_names(options, option_names(owner), where)
    return owner(**options)


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type annotations of dataclass ``cls`` (its module uses postponed ones)."""
    return typing.get_type_hints(cls)


def type_problem(value: Any, hint: Any) -> str | None:
    """What ``value`` should have been for a field annotated ``hint``, or None when it fits.

    Numbers other than seeds are never negative in these settings, so a negative one is a
    problem too. Types this does not know (``Any``) accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if hint is str:
        return None if isinstance(value, str) else "text (in quotes)"
    if origin is list:
        item = args[0] if args else Any
        if not isinstance(value, list) or any(type_problem(element, item) for element in value):
            # one item where a list belongs: show it in brackets
            example = json.dumps(value) if type_problem(value, item) is None else _example(item)
            return f"a list of {_plural(item)}, e.g. [{example}]"
        return None
    if origin is tuple:  # written as a TOML list: tuple[float, float] (fixed length) or tuple[str, ...]
        items = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if isinstance(value, (list, tuple)) and len(value) == len(items) and not any(
                type_problem(element, item) for element, item in zip(value, items)):
            return None
        count = "" if args[-1] is Ellipsis else f"{len(args)} "
        return f"a list of {count}{_plural(args[0])}, e.g. [{_example(args[0])}]"
    if origin is dict or hint is dict:
        return None if isinstance(value, dict) else "a table"
    return None


def check_field(owner: type, name: str, value: Any, where: str = "") -> None:
    """Raise ValueError naming ``where + name`` when ``value`` does not fit the field
    ``name`` of dataclass ``owner`` (a whole number, text, a list of text...); negative
    numbers are refused except in fields named ``seed``."""
    expected = type_problem(value, field_types(owner)[name])
    if expected is not None:
        raise ValueError(f"{where}{name} must be {expected}, not {_shown(value)}")
    if name != "seed" and isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"{where}{name} must be 0 or more, not {_shown(value)}")


def _plural(hint: Any) -> str:
    return {int: "whole numbers", float: "numbers", str: "text items", bool: "true/false values"}.get(hint, "values")


def _example(hint: Any) -> str:
    return {int: "1, 2", float: "0.5, 0.9", str: '"a", "b"', bool: "true"}.get(hint, "...")


def _shown(value: Any) -> str:
    """``value`` as the file spelled it (strings quoted), cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

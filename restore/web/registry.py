"""The weights a request may name: shipped ones and the user's own (``restore weights
list``), by name only. A path from the network could make the server read any file."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from restore.web.errors import ApiError
from restore.weights import load_manifest
from restore.weights.user_models import load_registry

PATH_OPTIONS = ("--masks",)  # options whose value is a folder on the server: never taken from a request


def registered_weights() -> list[dict[str, Any]]:
    """Every name ``--weights`` takes without a path: shipped first, then the user's models."""
    shipped = [{"name": entry.name, "task": entry.task, "channels": entry.channels, "origin": "shipped",
                "description": entry.description} for entry in load_manifest().values()]
    users = [{"name": model.name, "task": model.task, "channels": model.channels, "origin": "user",
              "description": f"{model.architecture} x{model.scale}"} for model in load_registry().values()]
    return shipped + users


def check_weights(name: str | None) -> None:
    """422 unless ``name`` is None (the task's default) or a registered name."""
    if name is None or name in {entry["name"] for entry in registered_weights()}:
        return
    raise ApiError(422, f"weights {name!r} is not a registered name: over HTTP, weights may only name shipped "
                        f"weights or models added with `restore weights add` (GET /api/v1/weights lists them); "
                        f"file paths are refused")


def check_step(text: str) -> None:
    """A chain step's words: ``--weights`` a registered name, no option naming a server
    path (the mask comes as the ``mask`` upload). Words that do not split are left to the
    step's parser, which says why."""
    try:
        words = shlex.split(text)
    except ValueError:
        return
    for index, word in enumerate(words):
        name, _, value = word.partition("=")
        if name in PATH_OPTIONS:
            raise ApiError(422, f"{name} names a folder on the server, which a request may not: send the mask "
                                f"as the 'mask' file field")
        if name == "--weights":
            check_weights(value or _next(words, index))


def _next(words: Sequence[str], index: int) -> str | None:
    return words[index + 1] if index + 1 < len(words) else None

"""Task registry: ``get_task("denoise")``. Tasks are imported on first use only."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry itself must not import torch (restore --help lists the tasks)
    from restore.tasks.base import Task

# task name -> "module:Class", imported lazily so one task's dependencies never break another
TASKS: dict[str, str] = {
    "denoise": "restore.tasks.denoise:DenoiseTask",
    "superres": "restore.tasks.superres:SuperResTask",
    "medical": "restore.tasks.medical:MedicalTask",
    "inpaint": "restore.tasks.inpaint:InpaintTask",
    "style": "restore.tasks.style:StyleTask",
}


def task_class(name: str) -> type[Task]:
    """The class of task ``name``: its ``options_type`` says which options a run of it takes."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    module_name, class_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_task(name: str, options: dict[str, Any] | None = None) -> Task:
    """The task ``name``, built with the run's ``task_options`` (see :class:`Task`)."""
    return task_class(name)(options)

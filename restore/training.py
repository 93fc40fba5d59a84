"""Training a task: resolve its config and hand the engine's :class:`Trainer` the task.

The engine trains whatever it is handed and never imports the tasks; this module, above
both, is where a task name becomes a task (``restore train`` and the tests start here).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from restore.engine.config import ConfigError, TrainConfig, load_toml, merge_into
from restore.engine.run_folder import open_run
from restore.engine.train import Trainer
from restore.tasks import get_task
from restore.zoo.finetune import community_training


def resolve_config(task_name: str, config_file: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """defaults < task defaults < config file < CLI overrides.

    The task's defaults are built from the options and data layout the file and flags
    give it, because they can depend on them: super-resolution's ``scale`` sets the
    generator's ``upscale``; style transfer is pix2pix on aligned data, CycleGAN on unaligned."""
    file_settings = load_toml(config_file) if config_file else {}
    try:  # every key and type checked first: the task's defaults below read some of them
        merge_into(TrainConfig(task=task_name), file_settings)
    except ConfigError as error:
        raise ConfigError(f"{config_file}: {error}") from None
    if file_settings.get("task", task_name) != task_name:
        raise ValueError(f"{config_file} is a recipe for {file_settings['task']!r}, not {task_name!r}")
    options = {**file_settings.get("task_options", {}), **overrides.get("task_options", {})}
    layout = overrides.get("data", {}).get("layout") or file_settings.get("data", {}).get("layout") or "clean"
    config = merge_into(TrainConfig(task=task_name), get_task(task_name, options).default_config_for(layout))
    config = merge_into(config, file_settings)
    config = merge_into(config, overrides)
    community = community_training(config.init_weights, task_name) if config.init_weights else None
    if community is not None:  # train the checkpoint's own architecture, at its scale
        config = dataclasses.replace(config, generator=community["generator"],
                                     task_options={**config.task_options, **community["task_options"]})
    return config


def build_trainer(
    config: TrainConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True, overwrite: bool = False
) -> Trainer:
    """A :class:`Trainer` of ``config`` into ``run_dir``, its task built from the run's own
    config (a resumed run's saved one). ``resume`` continues the run in the folder;
    ``overwrite`` starts afresh in a folder that holds an earlier run, deleting that run's
    outputs first (without either, such a folder is refused: a new run would replace its
    best weights and mix its metrics)."""
    run = open_run(config, run_dir, resume=resume, overwrite=overwrite)
    return Trainer(run, get_task(run.config.task, run.config.task_options), progress=progress)

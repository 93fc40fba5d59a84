"""The run folder a training run owns: whether a run may start in it, the config a resumed
run continues with, and what a killed run left behind. What the folder holds is listed in
:mod:`restore.engine.train`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from restore.engine.config import TrainConfig, from_dict, load_toml
from restore.io.atomic import atomic_write, remove_stale_temps

# what a run writes into its folder, as globs under it
RUN_OUTPUTS = (
    "config.toml", "last.pt", "metrics.jsonl", "best*.safetensors", "last*.safetensors",
    "samples/step_*.png", "tensorboard/events.out.tfevents.*",
)


class RunExists(ValueError):
    """The run folder holds an earlier run, and neither resuming nor replacing it was asked."""


@dataclass(frozen=True)
class RunFolder:
    """A folder a run may train into (see :func:`open_run`)."""

    path: Path
    config: TrainConfig  # a resumed run's own config, its step count extended if asked
    resume: bool
    replaced: list[Path]  # an earlier run's outputs, deleted when the new run starts


def open_run(config: TrainConfig, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> RunFolder:
    """Check that a run may train into ``run_dir``. ``resume`` continues the run there with
    its own config (only the step count may be extended); ``overwrite`` starts afresh where
    an earlier run is, deleting that run's outputs first. Without either, such a folder is
    refused: a new run would replace its best weights and mix its metrics."""
    path = Path(run_dir)
    if resume and overwrite:
        raise ValueError("resume continues the run in the folder, overwrite replaces it: choose one")
    replaced = [] if resume else previous_run_files(path)
    if replaced and not overwrite:
        shown = ", ".join(file.relative_to(path).as_posix() for file in replaced[:3])
        raise RunExists(
            f"{path} already holds a training run ({shown}...): continue it with --resume, "
            f"train into a fresh --out folder, or replace it with --overwrite"
        )
    if resume:
        config = _config_for_resume(path, config)
    return RunFolder(path, config, resume, replaced)


def _config_for_resume(run_dir: Path, config: TrainConfig) -> TrainConfig:
    """The run's own config; only the step count may be extended."""
    saved_path = run_dir / "config.toml"
    if not (run_dir / "last.pt").is_file() or not saved_path.is_file():
        raise FileNotFoundError(f"{run_dir}: nothing to resume (no last.pt/config.toml)")
    saved = from_dict(load_toml(saved_path))
    saved.steps = max(saved.steps, config.steps)
    return saved


def previous_run_files(run_dir: Path) -> list[Path]:
    """The outputs of an earlier run in ``run_dir`` (only files the trainer names itself)."""
    if not run_dir.is_dir():
        return []
    return sorted({path for pattern in RUN_OUTPUTS for path in run_dir.glob(pattern) if path.is_file()})


def discard_past_checkpoint(run_dir: Path, resumed_step: int) -> None:
    """A killed run may have got further than its last checkpoint: remove the temp files
    of the writes it was killed in, and the validation lines of the steps that now run
    again, so that metrics.jsonl keeps one line per step (TensorBoard events are
    dropped the same way, by the writer's ``purge_step``)."""
    remove_stale_temps([run_dir, run_dir / "samples"])
    log = run_dir / "metrics.jsonl"
    if log.is_file():
        lines = log.read_text().splitlines(keepends=True)
        kept = [line for line in lines if _logged_step(line) <= resumed_step]
        atomic_write(log, lambda temp: temp.write_text("".join(kept)))


def _logged_step(line: str) -> float:
    """The step of one metrics.jsonl line; infinite for a line a kill cut short."""
    try:
        return json.loads(line)["step"] if line.endswith("\n") else math.inf
    except (ValueError, KeyError, TypeError):
        return math.inf

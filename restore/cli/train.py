"""``restore train TASK``: the one training engine, configured by a TOML recipe + flags."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from restore.cli.options import Location, device_options
from restore.tasks import TASKS


def _overrides(settings: dict[str, Any]) -> dict[str, Any]:
    """CLI flags as config updates; flags left unset do not override the recipe."""
    data: dict[str, Any] = {}
    if settings["data"]:
        data["train"] = [str(path) for path in settings["data"]]
    for flag, key in (("batch_size", "batch_size"), ("crop", "crop"), ("workers", "workers"), ("direction", "direction")):
        if settings[flag] is not None:
            data[key] = settings[flag]
    if settings["val"] is not None:
        data["val"] = str(settings["val"])
    if settings["aligned"]:
        data["layout"] = "aligned"
    elif settings["data"] and all((p / "trainA").is_dir() and (p / "trainB").is_dir() for p in settings["data"]):
        data["layout"] = "unaligned"
    overrides: dict[str, Any] = {"data": data} if data else {}
    if settings["init_weights"] is not None:
        overrides["init_weights"] = settings["init_weights"]
    for flag in ("steps", "seed"):
        if settings[flag] is not None:
            overrides[flag] = settings[flag]
    if settings["device"] != "auto":
        overrides["device"] = settings["device"]
    if settings["precision_set"]:
        overrides["precision"] = settings["precision"]
    if settings["lr"] is not None:
        overrides["optim"] = {"lr_g": settings["lr"], "lr_d": settings["lr"]}
    return overrides


@click.command()
@click.argument("task", type=click.Choice(sorted(TASKS)))
@click.option("--data", multiple=True, type=Location(click.Path(exists=True, file_okay=False, path_type=Path)),
              help="Training folder (repeatable), or a storage URL (s3://bucket/photos/...: copied to the user "
                   "cache once, then only new or changed files). Clean images for restoration tasks; trainA/ + "
                   "trainB/ for unpaired style transfer; side-by-side A|B images with --aligned.")
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: config.toml, last.pt (resumable), best.safetensors, samples/, tensorboard/.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML recipe (see weights/recipes/); flags given here override it.")
@click.option("--steps", type=click.IntRange(1), help="Total optimisation steps (with --resume: extend to this).")
@click.option("--batch-size", type=click.IntRange(1), help="Images per step.")
@click.option("--crop", type=click.IntRange(8), help="Training crop size in (input) pixels.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="Learning rate of generator and discriminator.")
@click.option("--val", type=Location(click.Path(exists=True, file_okay=False, path_type=Path)),
              help="Held-out folder validated every log.val_every steps; picks best.safetensors.")
@click.option("--workers", type=click.IntRange(0), help="Data-loader processes.")
@click.option("--seed", type=int, help="Seed for weights, crops and degradations (runs are reproducible).")
@click.option("--init-weights", type=click.Path(exists=True, dir_okay=False),
              help="Start the generator from this weights file instead of random weights (fine-tuning), "
                   "e.g. a best.safetensors of an earlier run; its network must match the run's.")
@click.option("--aligned", is_flag=True, help="--data holds pix2pix-style A|B side-by-side images.")
@click.option("--direction", type=click.Choice(["AtoB", "BtoA"]), help="Translation direction for paired/unpaired data.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last.pt, exactly where it stopped, up to the run's "
                   "own step count (give --steps to train longer).")
@click.option("--overwrite", is_flag=True,
              help="Train afresh into an --out that holds an earlier run, deleting that run's outputs "
                   "(without it such a folder is refused: use --resume to continue it).")
@click.option("--print-config", is_flag=True, help="Print every setting (defaults + recipe + flags) as TOML and exit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@device_options
def train(**settings: Any) -> None:
    """Train TASK's network; the same loop for every task (reconstruction, pix2pix, CycleGAN).

    \b
    Examples:
      restore train denoise --config weights/recipes/denoise-color.toml --out runs/dn
      restore train denoise --data photos/ --out runs/mine --steps 20000
      restore train denoise --out runs/dn --resume
    """
    from restore.engine.config import ConfigError, to_toml
    from restore.engine.train import TrainingDiverged
    from restore.training import build_trainer, resolve_config

    ctx = click.get_current_context()
    settings["precision_set"] = ctx.get_parameter_source("precision") != click.core.ParameterSource.DEFAULT
    try:
        config = resolve_config(settings["task"], settings["config_file"], _overrides(settings))
    except (ConfigError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    if settings["print_config"]:
        click.echo(to_toml(config))
        return
    if settings["run_dir"] is None:
        raise click.UsageError("--out RUN_DIR is required to train")
    if settings["resume"] and settings["steps"] is None:
        # the run's own step count: only --steps extends it, never the default or a recipe's
        config = dataclasses.replace(config, steps=0)
    try:
        trainer = build_trainer(
            config, settings["run_dir"], resume=settings["resume"], progress=not settings["quiet"],
            overwrite=settings["overwrite"],
        )
        metrics = trainer.fit()
    except (FileNotFoundError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    except TrainingDiverged as error:
        raise click.ClickException(str(error)) from error
    summary = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    click.echo(f"trained {trainer.step} steps into {settings['run_dir']}" + (f"; validation: {summary}" if summary else ""))

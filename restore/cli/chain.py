"""``restore chain``: several tasks in one pass, each step written as the task command's own
options and parsed by that command's own click parameters.

The step syntax belongs to the task commands, so the function that reads steps written
as text, ``restore.chain``, lives here too; :func:`restore.pipeline.run_chain` runs steps
given as ``(task, options)`` and is what code below the CLI (a web handler) calls, or it is
handed :func:`parse_step`."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from restore.cli.options import check_report_format, command_settings, finish
from restore.cli.tasks import denoise, inpaint, inpaint_settings, style, style_settings, superres, superres_settings
from restore.io.limits import MAX_PIXELS

if TYPE_CHECKING:
    from restore.engine.batch import BatchReport
    from restore.pipeline import ChainStep

# The options of a task command that are the batch's (--in, --out and BatchSettings's fields):
# the whole chain's, refused inside a step (tests/test_chain.py checks them against BatchSettings).
CHAIN_SETTINGS = ("source", "destination", "suffix", "ext", "jpeg_quality", "overwrite", "workers", "max_pixels",
                  "quiet", "report_format")


def _as_given(settings: dict[str, Any]) -> dict[str, Any]:
    return settings


# task -> its command (whose parameters parse a step) and the checks its body makes of them
STEP_COMMANDS: dict[str, tuple[click.Command, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "denoise": (denoise, _as_given),
    "inpaint": (inpaint, inpaint_settings),
    "superres": (superres, superres_settings),
    "style": (style, style_settings),
}


def parse_step(text: str, number: int, max_pixels: int = MAX_PIXELS) -> ChainStep:
    """Step ``number`` of a chain written as ``restore TASK``'s options (``"superres --scale
    4"``) -> the task and its settings, parsed and checked as ``restore TASK`` does (its
    defaults filled in; ``max_pixels``: the chain's, which its checks compare with). Raises
    StepError naming the step: unknown task, unknown option, bad value, or an option of the
    whole chain (``--out``)."""
    from restore.pipeline import ChainStep, StepError

    where = f"step {number} ({text!r})"
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise StepError(f"{where}: {error}") from error
    known = ", ".join(STEP_COMMANDS)
    if not words or words[0] not in STEP_COMMANDS:
        found = f"unknown task {words[0]!r}" if words else "no task"
        raise StepError(f"{where}: {found}; a step starts with one of: {known}, e.g. \"denoise --sigma auto\"")
    task, *arguments = words
    command, checked = STEP_COMMANDS[task]
    own = [param for param in command.params if param.name in CHAIN_SETTINGS]
    for word in arguments:
        name = word.split("=", 1)[0]
        if any(name in param.opts for param in own):
            chain_options = ", ".join(param.opts[0] for param in own)
            raise StepError(f"{where}: {name} is an option of the whole chain, not of a step: give it once, after "
                            f"the steps (the chain's options: {chain_options}, --keep-steps)")
    try:
        settings = task_settings(task, arguments, max_pixels)
    except ValueError as error:
        raise StepError(f"{where}: {error}") from error
    return ChainStep(task, settings)


def task_settings(task: str, arguments: Sequence[str], max_pixels: int = MAX_PIXELS) -> dict[str, Any]:
    """``restore TASK ARGUMENTS...``'s own options (not --in, --out or the batch's) parsed and
    checked as the command does, its defaults filled in: the settings it hands
    ``process_folder``. Also what ``restore serve`` parses form fields with, so the HTTP API
    takes what the command takes. Raises ValueError with the command's message."""
    command, checked = STEP_COMMANDS[task]
    settings = command_settings(command, arguments, CHAIN_SETTINGS, f"restore {task}",
                                lambda parsed: checked({**parsed, "max_pixels": max_pixels}))
    del settings["max_pixels"]  # the batch's, given to process_folder or run_chain once
    return settings


def chain(
    steps: Sequence[str | ChainStep | tuple[str, Mapping[str, Any]]], src: str | Path, dst: str | Path,
    **batch_settings: Any,
) -> BatchReport:
    """Run several tasks in one pass over every image under ``src`` into ``dst``, as
    ``restore chain`` does: each image goes from step to step in memory.

    ``steps``: strings as the command line takes them (``"denoise --sigma auto"``, parsed
    by :func:`parse_step`), or ``(task, options)`` pairs (``("superres", {"scale": 4})``,
    options as ``process_folder`` takes them). ``batch_settings``: ``keep_steps`` and the
    batch settings (suffix, ext, jpeg_quality, overwrite, workers, quiet, max_pixels).
    Returns the report also saved as ``dst/report.json``. A step that cannot run raises
    :class:`restore.pipeline.StepError` (a ValueError) naming it, before any image."""
    from restore.pipeline import run_chain

    limit = batch_settings.get("max_pixels", MAX_PIXELS)
    parsed = [parse_step(step, number, limit) if isinstance(step, str) else step
              for number, step in enumerate(steps, 1)]
    return run_chain(parsed, src, dst, **batch_settings)


def _run(steps: tuple[str, ...], keep_steps: bool, **settings: Any) -> None:
    """The command: parse every step, then one batch run; exit 0, 1 (some inputs failed) or 2."""
    from restore.engine.batch import BatchUsageError
    from restore.pipeline import StepError

    source, destination = settings.pop("source"), settings.pop("destination")
    report_format = settings.pop("report_format")
    check_report_format(destination, report_format)
    try:
        report = chain(steps, source, destination, keep_steps=keep_steps, **settings)
    except (StepError, BatchUsageError) as error:
        raise click.UsageError(str(error)) from error
    finish(report, destination, report_format)


chain_command = click.Command(
    "chain",
    callback=_run,
    params=[
        click.Argument(["steps"], nargs=-1, required=True, metavar='"TASK [OPTIONS]"...'),
        *(param for param in denoise.params if param.name in CHAIN_SETTINGS),
        click.Option(["--keep-steps"], is_flag=True,
                     help="Also write each step's output but the last under OUT/.steps/N-TASK/ (the tree "
                          "mirrored, named as the final outputs)."),
    ],
    short_help="Several tasks in one pass (denoise, then inpaint, then superres...).",
    help="""Run several tasks in one pass: each image goes from step to step in memory.

    Each step is one quoted argument: a task and its own options, exactly as `restore TASK`
    takes them (weights, precision, tile... included; see `restore TASK --help`). --in,
    --out and the other options below are the whole chain's, given once after the steps.
    Inpainting finds each image's mask beside the original input or under --masks DIR.

    \b
    Example:
      restore chain "denoise --sigma auto" "inpaint --masks scratches/" \\
          "superres --scale 4 --model real" --in old_photos/ --out restored/
    """,
)

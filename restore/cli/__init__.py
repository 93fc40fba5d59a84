"""The ``restore`` command. Only click is imported here: each command imports torch and
the rest of the package inside its body, so ``restore --help`` is instant."""

from __future__ import annotations

import click

from restore._version import __version__
from restore.cli.chain import chain_command
from restore.cli.evaluate import evaluate
from restore.cli.medical import medical
from restore.cli.report import report
from restore.cli.serve import serve
from restore.cli.tasks import denoise, inpaint, style, superres
from restore.cli.train import train
from restore.cli.weights import weights


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="restore")
def main() -> None:
    """Repair and restyle images with conditional GANs.

    Run a task on a file or a whole folder tree (outputs mirror the tree, finished files
    are skipped on re-runs, a report.json lists every input):

        restore denoise --in photos/ --out clean/

    Train your own weights with `restore train TASK --data DIR --out RUN_DIR`, measure
    them with `restore eval`, list the shipped ones with `restore weights list`.
    """


for command in (denoise, superres, inpaint, style, chain_command, medical, train, evaluate, weights, report, serve):
    main.add_command(command)

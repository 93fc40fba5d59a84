"""``restore eval style``: distribution distance between translated images and the target domain."""

from __future__ import annotations

from pathlib import Path

import click

from restore.cli.report import table_report_option


@click.command(name="style")
@click.option("--pred", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of translated images (e.g. the --out of `restore style`).")
@click.option("--target", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of real images of the target domain (e.g. testB/); no pairing by name.")
@click.option("--features", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A torchvision Inception-v3 or VGG state dict (.pth, read with weights_only, or "
                   ".safetensors) to compute FID and KID on. Without it: per-channel colour-histogram "
                   "distance (colours only).")
@click.option("--kid-subsets", default=100, show_default=True, type=click.IntRange(1),
              help="Random subsets KID is averaged over.")
@click.option("--kid-subset-size", default=1000, show_default=True, type=click.IntRange(2),
              help="Images per KID subset (at most the smaller folder's count).")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1),
              help="Images per forward pass of the feature network.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "mps"]), default="cpu", show_default=True,
              help="Where the feature network runs.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the scores as JSON.")
@table_report_option
def evaluate_style(pred: Path, target: Path, features: Path | None, kid_subsets: int, kid_subset_size: int,
                   batch_size: int, device: str, json_path: Path | None) -> None:
    """How close a set of translated images is to the target domain, as distributions.

    With --features: FID and KID on that network's features (lower is better; compare
    runs measured with the same file, not with published FIDs, which use pytorch-fid's
    weights and many more images). Without: the Wasserstein-1 distance between the
    colour histograms of the two folders, per RGB channel, in units of the full range
    (0 = same colours, 1 = black vs white); it measures colour, not content or texture.
    """
    from restore.evaluate.style import evaluate_style as run_evaluation
    from restore.weights import WeightsError

    try:
        scores = run_evaluation(pred, target, features=features, kid_subsets=kid_subsets,
                                kid_subset_size=kid_subset_size, batch_size=batch_size, device=device)
    except (FileNotFoundError, ValueError, WeightsError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(scores.to_text())
    if json_path:
        scores.write_json(json_path)

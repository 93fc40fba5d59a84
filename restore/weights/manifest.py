"""The shipped-weights registry: ``weights/manifest.toml`` and name-or-path resolution.

Each manifest entry records what a user needs to trust a file: the task, the network
config, the file and its sha256, the parameter count, the recipe that trained it, and the
metrics it measured with the command that measured them. ``--weights NAME`` resolves
through the manifest; anything else is taken as a path to a file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restore.weights.format import WeightsError, load_weights, save_weights, sha256_of
from restore.weights.user_models import checked_path, load_registry


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    task: str
    file: str  # relative to the weights folder
    sha256: str
    parameters: int
    network: dict[str, Any]
    recipe: str
    description: str = ""
    channels: int = 3  # image channels the network takes (1 = grey, 3 = colour)
    metrics: dict[str, Any] = field(default_factory=dict)
    metrics_command: str = ""
    notes: str = ""

    @property
    def path(self) -> Path:
        return weights_dir() / self.file


# the metrics key of bench/precision_check.py's record: bf16 outputs measured against fp32.
# Only weights that have it may run in bf16 under --precision auto.
BF16_CHECK = "bf16_vs_fp32"

# what `restore weights list` shows of an entry's metrics, most telling first: the first
# number under one of these keys, searched level by level in the first benchmark recorded
HEADLINE_KEYS = ("mean_hole_psnr_gain_over_telea", "psnr_y", "psnr", "ours_psnr", "mean_gradient",
                 "real")  # bench/real_noise.py: denoise-real's PSNR


def headline_metric(metrics: dict[str, Any]) -> str:
    """One measured number of a manifest entry, e.g. ``Set5 psnr_y 31.42`` (empty when none
    was recorded): the first benchmark set, its most telling key, where it was found."""
    if not metrics:
        return ""
    name, values = next(iter(metrics.items()))
    level: list[tuple[str, Any]] = [("", values)]
    while level:
        found = [(f"{where}{key}", value) for where, table in level if isinstance(table, dict)
                 for key, value in table.items() if key in HEADLINE_KEYS and isinstance(value, (int, float))]
        if found:
            where, value = min(found, key=lambda item: HEADLINE_KEYS.index(item[0].rsplit(" ", 1)[-1]))
            return f"{name} {where} {value:.2f}"
        level = [(f"{where}{key} ", value) for where, table in level if isinstance(table, dict)
                 for key, value in table.items() if isinstance(value, dict)]
    return name


def weights_dir() -> Path:
    """The shipped weights folder.

    A wheel installs ``weights/`` as ``restore/_weights`` (see pyproject.toml); an
    editable install or a source checkout reads ``weights/`` beside the package."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "_weights"
    return installed if installed.is_dir() else package.parent / "weights"


def load_manifest(path: Path | None = None) -> dict[str, WeightsEntry]:
    path = path or weights_dir() / "manifest.toml"
    if not path.is_file():
        return {}
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    return {name: WeightsEntry(name=name, **fields) for name, fields in data.get("weights", {}).items()}


def resolve_weights(name_or_path: str, task: str | None = None) -> tuple[Path, WeightsEntry | None]:
    """A manifest name (checked against its sha256), a user model's name (``restore
    weights add``: checked likewise, and against ``task`` when given) or a path to a
    weights file."""
    manifest = load_manifest()
    if name_or_path in manifest:
        entry = manifest[name_or_path]
        if not entry.path.is_file():
            raise WeightsError(f"weights {entry.name!r}: file {entry.path} is missing from the installation")
        actual = sha256_of(entry.path)
        if actual != entry.sha256:
            raise WeightsError(
                f"weights {entry.name!r}: {entry.path} has sha256 {actual[:12]}..., the manifest says "
                f"{entry.sha256[:12]}...: the file is damaged or was replaced; reinstall restore"
            )
        return entry.path, entry
    users = load_registry()
    if name_or_path in users:
        model = users[name_or_path]
        if task is not None and model.task != task:
            raise WeightsError(f"user model {model.name!r} is registered for {model.task}: use `restore {model.task}`")
        return checked_path(model), None
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path, None
    known = ", ".join(sorted(manifest)) or "none shipped"
    mine = ", ".join(sorted(users)) or "none"
    raise WeightsError(f"{name_or_path!r} is neither a shipped weights name ({known}), a user model ({mine}) "
                       f"nor an existing file")


def fingerprint(name_or_path: str) -> dict[str, str]:
    """``{name: sha256}`` of the weights ``name_or_path`` stands for (as :func:`resolve_weights`
    finds them), as report.json records them: a shipped or user model's name with the sha256
    its manifest or registry records (the file is checked against it when loaded), a file as
    its real path with the sha256 of its bytes."""
    manifest = load_manifest()
    if name_or_path in manifest:
        return {name_or_path: manifest[name_or_path].sha256}
    users = load_registry()
    if name_or_path in users:
        return {name_or_path: users[name_or_path].sha256}
    path = Path(name_or_path).expanduser()
    return {os.path.realpath(path): sha256_of(path)}


MANIFEST_HEADER = (
    "# Shipped weights. Written by `restore weights export` (file, sha256, network) and by the\n"
    "# benchmark scripts in bench/ (metrics, metrics_command): edit recipes, not numbers.\n"
)


def save_manifest(entries: dict[str, WeightsEntry], path: Path | None = None) -> None:
    import dataclasses

    import tomli_w

    from restore.io.atomic import atomic_write

    path = path or weights_dir() / "manifest.toml"
    tables = {}
    for name, entry in sorted(entries.items()):
        fields = dataclasses.asdict(entry)
        del fields["name"]
        tables[name] = fields
    text = MANIFEST_HEADER + tomli_w.dumps({"weights": tables})
    atomic_write(path, lambda temp: temp.write_text(text))


def export_weights(
    source: Path, name: str, recipe: str, description: str = "", notes: str = "", grey: bool = False,
    int8: bool = False,
) -> WeightsEntry:
    """Ship a trained ``.safetensors`` as ``weights/<name>.safetensors`` (fp16, which halves
    the size at no measurable PSNR cost for these networks) and record it in the manifest.
    Metrics of an earlier entry with the same name are dropped: they measured another file.

    ``grey`` ships the 1-channel equivalent of an RGB U-Net (:func:`restore.nets.unet.fold_to_grey`);
    ``int8`` stores the convolution weights as int8 with a scale per output channel, half the
    size again (:func:`restore.weights.format.save_weights`): re-measure after exporting."""
    state_dict, metadata = load_weights(source)
    if "network" not in metadata or "task" not in metadata:
        raise WeightsError(f"{source}: no restore metadata; export weights written by `restore train`")
    from restore.nets import network_spec, parse_network_spec

    if grey:
        from restore.nets.unet import UNetConfig, fold_to_grey

        config = parse_network_spec(metadata["network"])
        if not isinstance(config, UNetConfig):
            raise WeightsError(f"{source}: only U-Net weights can be folded to grey, not {metadata['network']['arch']}")
        state_dict, config = fold_to_grey(state_dict, config)
        metadata = {**metadata, "network": network_spec(config)}
    file = f"{name}.safetensors"
    target = weights_dir() / file
    # every layout field spelled out, so later changes of defaults cannot change this network
    metadata = {**metadata, "source": name, "network": network_spec(parse_network_spec(metadata["network"]))}
    save_weights(target, state_dict, metadata, half=True, int8=int8)
    entry = WeightsEntry(
        name=name,
        task=metadata["task"],
        file=file,
        sha256=sha256_of(target),
        parameters=sum(tensor.numel() for tensor in state_dict.values() if tensor.is_floating_point()),
        network=metadata["network"],
        recipe=recipe,
        description=description,
        channels=int(metadata["network"].get("in_channels", 3)),
        notes=notes,
    )
    entries = load_manifest()
    entries[name] = entry
    save_manifest(entries)
    return entry


def record_metrics(name: str, metrics: dict[str, Any], command: str) -> None:
    """Merge measured metrics into the manifest entry (a top-level key, e.g. one benchmark
    set, replaces the same key measured before) and add the command that measured them."""
    import dataclasses

    entries = load_manifest()
    if name not in entries:
        raise WeightsError(f"no shipped weights named {name!r} to record metrics for")
    entry = entries[name]
    commands = [line for line in entry.metrics_command.splitlines() if line and line != command] + [command]
    entries[name] = dataclasses.replace(entry, metrics={**entry.metrics, **metrics}, metrics_command="\n".join(commands))
    save_manifest(entries)

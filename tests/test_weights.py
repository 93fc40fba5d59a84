"""Shipped weights: the manifest matches the files, export works, wheels include them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import restore.weights as registry
from restore.engine.checkpoint import load_weights
from restore.weights import export_weights, load_manifest, record_metrics, sha256_of
from tiny_weights import write_tiny_denoise_weights

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("entry", list(load_manifest().values()), ids=lambda entry: entry.name)
def test_manifest_entry_matches_its_file(entry: registry.WeightsEntry) -> None:
    assert sha256_of(entry.path) == entry.sha256
    state_dict, metadata = load_weights(entry.path)
    assert metadata["network"] == entry.network and metadata["task"] == entry.task
    assert sum(t.numel() for t in state_dict.values() if t.is_floating_point()) == entry.parameters
    assert (REPO / entry.recipe).is_file(), f"recipe {entry.recipe} is not committed"
    assert entry.metrics and entry.metrics_command, "shipped weights must record measured metrics"


def test_export_and_record_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    source = write_tiny_denoise_weights(tmp_path / "best.safetensors")
    entry = export_weights(source, "tiny", "weights/recipes/tiny.toml", "a test")
    assert load_manifest()["tiny"] == entry
    state_dict, _ = load_weights(entry.path)
    assert all(t.dtype.itemsize == 2 for t in state_dict.values() if t.is_floating_point())  # fp16
    record_metrics("tiny", {"setA": {"psnr": 12.5}}, "python bench/x.py --sets setA")
    record_metrics("tiny", {"setB": {"psnr": 13.0}}, "python bench/x.py --sets setB")
    record_metrics("tiny", {"setA": {"psnr": 12.0}}, "python bench/x.py --sets setA")
    entry = load_manifest()["tiny"]
    assert entry.metrics == {"setA": {"psnr": 12.0}, "setB": {"psnr": 13.0}}
    assert entry.metrics_command.splitlines() == ["python bench/x.py --sets setB", "python bench/x.py --sets setA"]


def test_export_grey_ships_a_one_channel_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    entry = export_weights(write_tiny_denoise_weights(tmp_path / "b.safetensors"), "tiny-gray", "r.toml", grey=True)
    assert entry.channels == 1 and entry.network["in_channels"] == 1 and entry.network["out_channels"] == 1
    state_dict, metadata = load_weights(entry.path)
    assert state_dict["head.weight"].shape[1] == 2  # grey + noise map
    assert metadata["network"] == entry.network


def test_damaged_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    entry = export_weights(write_tiny_denoise_weights(tmp_path / "b.safetensors"), "tiny", "r.toml")
    entry.path.write_bytes(entry.path.read_bytes()[:-1] + b"\0")
    with pytest.raises(registry.WeightsError, match="damaged"):
        registry.resolve_weights("tiny")


def test_wheel_contains_the_weights(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True,
    )
    (wheel,) = tmp_path.glob("restore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "restore/_weights/manifest.toml" in names
    for entry in load_manifest().values():
        assert f"restore/_weights/{entry.file}" in names

"""Shipped weights: the manifest matches the files, export works, wheels include them."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from restore.nets import build_network
import restore.weights.manifest as registry
from restore.weights import (
    WeightsEntry,
    WeightsError,
    export_weights,
    headline_metric,
    load_manifest,
    load_weights,
    record_metrics,
    resolve_weights,
    save_weights,
    sha256_of,
)
from tiny_weights import write_tiny_denoise_weights

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("entry", list(load_manifest().values()), ids=lambda entry: entry.name)
def test_manifest_entry_matches_its_file(entry: WeightsEntry) -> None:
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


def test_export_int8_halves_the_file_and_loads_back_as_floats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    torch.manual_seed(0)
    spec = {"arch": "unet", "in_channels": 3, "out_channels": 3, "base_channels": 32, "depth": 1,
            "max_channels": 32, "blocks_per_level": 1, "residual": True}
    network = build_network(spec)
    source = tmp_path / "best.safetensors"
    save_weights(source, network.state_dict(), {"task": "denoise", "network": spec, "task_options": {}})
    half = export_weights(source, "half", "r.toml")
    small = export_weights(source, "small", "r.toml", int8=True)
    assert small.path.stat().st_size < 0.6 * half.path.stat().st_size
    assert small.parameters == half.parameters
    state_dict, metadata = load_weights(small.path)
    assert metadata["network"] == small.network
    original = network.state_dict()
    assert state_dict.keys() == original.keys()
    quantized = [key for key, tensor in original.items() if tensor.ndim >= 2 and tensor.numel() >= 4096]
    assert quantized  # the 32-channel 3x3 convolutions
    for key in quantized:
        # at most half a step of 1/127 of the channel's largest magnitude (+1 % for the fp16 scale)
        channel_max = original[key].abs().flatten(1).amax(dim=1)
        error = (state_dict[key] - original[key]).abs().flatten(1).amax(dim=1)
        assert state_dict[key].dtype == torch.float32 and torch.all(error <= channel_max / 254 * 1.01), key
    image = torch.rand(1, 3, 32, 32)
    rebuilt = build_network(spec)
    rebuilt.load_state_dict({key: value.float() for key, value in state_dict.items()})
    with torch.no_grad():
        assert torch.allclose(rebuilt(image), network(image), atol=2e-2)


def test_unknown_quantization_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "q.safetensors"
    save_file({"w": torch.zeros(2, 2, dtype=torch.int8)}, str(path), metadata={"quantized": "int4-magic"})
    with pytest.raises(WeightsError, match="unknown quantization 'int4-magic'"):
        load_weights(path)


def test_damaged_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    entry = export_weights(write_tiny_denoise_weights(tmp_path / "b.safetensors"), "tiny", "r.toml")
    entry.path.write_bytes(entry.path.read_bytes()[:-1] + b"\0")
    with pytest.raises(WeightsError, match="damaged"):
        resolve_weights("tiny")


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


def test_weights_list_is_a_table_with_one_headline_number_each() -> None:
    from click.testing import CliRunner

    from restore.cli import main

    result = CliRunner().invoke(main, ["weights", "list"])
    assert result.exit_code == 0, result.output
    manifest = load_manifest()
    title, header, *lines = result.output.splitlines()[: len(manifest) + 2]
    assert title == "shipped:"
    assert header.split() == ["name", "task", "channels", "params", "file", "headline", "metric"]
    assert [line.split()[0] for line in lines] == list(manifest)
    for line in lines:
        entry = manifest[line.split()[0]]
        assert "{" not in line and "'" not in line, line  # no raw dicts
        assert line.split()[1] == entry.task
        if entry.metrics:
            assert re.search(r" -?\d+\.\d\d$", line), line  # the headline number, 2 decimals


def test_headline_metric_takes_the_most_telling_key_nearest_the_top() -> None:
    metrics = {"Set5": {"images": 5, "psnr_y": 31.42191, "ssim_y": 0.88, "x": {"psnr": 1.0}},
               "Set14": {"psnr_y": 28.0}}
    assert headline_metric(metrics) == "Set5 psnr_y 31.42"
    assert headline_metric({"CBSD68": {"images": 20, "sigma25": {"ssim": 0.9, "psnr": 31.4896}}}) == \
        "CBSD68 sigma25 psnr 31.49"
    assert headline_metric({"RealSRSet": {"psnr_model": "superres-x4", "images": 25}}) == "RealSRSet"
    assert headline_metric({}) == ""

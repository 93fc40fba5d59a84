"""Exported-graph backends (ONNX Runtime, OpenVINO): same outputs as torch fp32 within one
8-bit level, a graph exported once per weights, refused when it does not match torch, and
clear errors where a package is missing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import restore
import restore.engine.backends as backends
import restore.engine.backends.export as export
import restore.engine.backends.int8 as int8
from restore.calibration import train_data
from restore.cli import main
from tests.community_files import DNCNN, shared_model
from tests.tiny_weights import write_tiny_denoise_weights, write_tiny_superres_weights

EXPORTED = [
    pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(package) is None or
                                                importlib.util.find_spec("onnx") is None,
                                                reason=f"{package} (or onnx) is not installed: pip install 'restore[{extra}]'"))
    for name, (package, extra) in backends.PACKAGES.items()
]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test exports into its own cache folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RESTORE_CACHE", str(folder))
    return folder


def write_pictures(folder: Path) -> Path:
    """A noisy colour picture, a grey one and a 16-bit one, of sizes no tile divides."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    smooth = cv2.GaussianBlur(rng.random((37, 53, 3)).astype(np.float32), (0, 0), 3.0)
    noisy = np.clip(smooth + rng.normal(0, 0.08, smooth.shape), 0, 1)
    cv2.imwrite(str(folder / "colour.png"), (noisy * 255).round().astype(np.uint8))
    cv2.imwrite(str(folder / "grey.png"), (noisy[:, :, 0] * 255).round().astype(np.uint8))
    cv2.imwrite(str(folder / "deep.png"), (noisy[:29, :41] * 65535).round().astype(np.uint16))
    return folder


def denoise(tmp_path: Path, weights: Path, backend: str, *args: str):
    return CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(tmp_path / backend),
                                     "--weights", str(weights), "--sigma", "25", "--precision", "fp32",
                                     "--backend", backend, "--tile", "32", "--tile-overlap", "8", "--quiet", *args])


@pytest.mark.parametrize("backend", EXPORTED)
def test_restore_denoise_on_an_exported_backend_matches_torch_fp32(tmp_path: Path, backend: str) -> None:
    write_pictures(tmp_path / "in")
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    for name in ("torch", backend):
        result = denoise(tmp_path, weights, name)
        assert result.exit_code == 0, result.output
    for name in ("colour.png", "grey.png", "deep.png"):
        expected = cv2.imread(str(tmp_path / "torch" / name), cv2.IMREAD_UNCHANGED)
        actual = cv2.imread(str(tmp_path / backend / name), cv2.IMREAD_UNCHANGED)
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, name
        level = 257 if actual.dtype == np.uint16 else 1  # one 8-bit level in 16-bit units
        assert np.abs(actual.astype(int) - expected.astype(int)).max() <= level, name
    report = json.loads((tmp_path / backend / "report.json").read_text())
    assert report["execution"]["backend"] == backend
    assert {item["info"]["backend"] for item in report["files"]} == {backend}
    assert "backend" not in report["settings"]  # a rerun on another backend is not refused


@pytest.mark.parametrize("backend", EXPORTED)
def test_load_with_a_backend_matches_torch_and_exports_once(tmp_path: Path, cache: Path, backend: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    weights = write_tiny_superres_weights(tmp_path / "sr.safetensors", scale=2)
    image = (np.random.default_rng(0).random((23, 30, 3)) * 255).astype(np.uint8)
    expected = restore.load(weights, device="cpu", precision="fp32")(image)
    model = restore.load(weights, device="cpu", precision="fp32", backend=backend)
    assert model.backend == backend
    actual = model(image)
    assert actual.shape == expected.shape == (46, 60, 3)
    assert np.abs(actual.astype(int) - expected.astype(int)).max() <= 1
    (graph,) = (cache / "graphs").iterdir()
    written = graph.stat().st_mtime_ns

    exports = []
    monkeypatch.setattr(export, "export_onnx", lambda *args: exports.append(args) or pytest.fail("exported again"))
    again = restore.load(weights, device="cpu", precision="fp32", backend=backend)
    assert np.array_equal(again(image), actual)
    assert not exports and list((cache / "graphs").iterdir()) == [graph] and graph.stat().st_mtime_ns == written


def test_an_exported_superres_graph_upsamples_by_convolution(tmp_path: Path) -> None:
    """The residual's bicubic upsampling is exported as a convolution (OpenVINO's Resize was a
    fifth of superres-x4's time), and the graph still matches torch (write_graph checks it)."""
    onnx = pytest.importorskip("onnx")
    weights = write_tiny_superres_weights(tmp_path / "sr.safetensors", scale=4)
    out = tmp_path / "sr.onnx"
    result = CliRunner().invoke(main, ["weights", "export", str(weights), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    graph = onnx.load(str(out)).graph
    operators = {node.op_type for node in graph.node}
    assert "Resize" not in operators and "DepthToSpace" in operators
    # int8 keeps fp32 the convolutions at the ends: the first, the last and the bicubic one
    convolutions = [node.name for node in graph.node if node.op_type == "Conv"]
    ends = int8.end_convolutions(graph, {"Conv", "ConvTranspose"})
    assert len(ends) == 3 and ends[0] == convolutions[0] and set(ends[1:]) == set(convolutions[-2:])


@pytest.mark.parametrize("backend", EXPORTED)
def test_a_grey_community_model_runs_each_channel_of_a_colour_image(backend: str) -> None:
    weights = shared_model(DNCNN)
    image = (np.random.default_rng(1).random((20, 24, 3)) * 255).astype(np.uint8)
    expected = restore.load(weights, task="denoise", device="cpu")(image, sigma=15)
    actual = restore.load(weights, task="denoise", device="cpu", backend=backend)(image, sigma=15)
    assert np.abs(actual.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("backend", EXPORTED)
def test_weights_export_writes_a_graph_that_runs(tmp_path: Path, backend: str) -> None:
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    out = tmp_path / "tiny.onnx"
    result = CliRunner().invoke(main, ["weights", "export", str(weights), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 channels" in result.output and "opset 17" in result.output
    from restore.engine.backends.runtimes import compile_graph

    batch = torch.rand(2, 4, 24, 40)
    network = restore.load(weights, device="cpu", precision="fp32").network
    with torch.no_grad():
        expected = network(batch).numpy()
    assert np.abs(compile_graph(out, backend, "fp32")(batch.numpy()) - expected).max() <= export.TOLERANCE


def test_export_refuses_a_graph_that_does_not_match_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not any(backends.installed(name) for name in backends.EXPORTED) or importlib.util.find_spec("onnx") is None:
        pytest.skip("neither onnxruntime nor openvino (with onnx) is installed: pip install 'restore[onnx]'")
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    other = restore.load(write_tiny_denoise_weights(tmp_path / "other.safetensors", seed=1), device="cpu").network
    real_export = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda network, graph: real_export(other, graph))  # a wrong graph
    out = tmp_path / "tiny.onnx"
    result = CliRunner().invoke(main, ["weights", "export", str(weights), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 2 and "differs from torch" in result.output, result.output
    assert not out.exists() and not list(tmp_path.glob(".restore-tmp-*"))
    backend = next(name for name in backends.EXPORTED if backends.installed(name))
    with pytest.raises(backends.BackendError, match="differs from torch"):
        restore.load(weights, device="cpu", backend=backend)
    assert not list((tmp_path / "cache").rglob("*.*"))  # nothing cached, no temp file left


def test_a_missing_backend_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "installed", lambda backend: backend == "torch")
    write_pictures(tmp_path / "in")
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    result = denoise(tmp_path, weights, "onnxruntime")
    assert result.exit_code == 2 and "pip install 'restore[onnx]'" in result.output, result.output
    assert not (tmp_path / "onnxruntime").exists()
    with pytest.raises(backends.BackendError, match=r"restore\[openvino\]"):
        restore.load(weights, backend="openvino")
    result = denoise(tmp_path, weights, "auto")  # no measurements, no package: torch
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "auto" / "report.json").read_text())["files"][0]["info"]["backend"] == "torch"


def test_auto_takes_the_fastest_path_that_keeps_the_quality(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "installed", lambda backend: True)
    records = {"paths": {
        "torch-fp32": {"seconds_per_megapixel": 3.0, "psnr_loss_db": 0.0},
        "onnxruntime-fp32": {"seconds_per_megapixel": 1.2, "psnr_loss_db": 0.0},
        "openvino-fp32": {"seconds_per_megapixel": 1.0, "psnr_loss_db": 0.2},  # faster, but loses quality
        "openvino-bf16": {"seconds_per_megapixel": 0.5, "psnr_loss_db": 0.01},  # another precision
        "torch-fp32-nchw": {"seconds_per_megapixel": 0.1, "psnr_loss_db": 0.0},  # not a backend
    }}
    cpu = torch.device("cpu")
    assert backends.choose_backend("auto", cpu, "fp32", records) == ("onnxruntime", "fp32")
    assert backends.choose_backend("auto", cpu, "bf16", records) == ("openvino", "bf16")
    assert backends.choose_backend("auto", cpu, "fp32", {}) == ("torch", "fp32")
    assert backends.choose_backend("auto", torch.device("cuda"), "fp32", records) == ("torch", "fp32")
    assert backends.choose_backend("torch", cpu, "fp32", records) == ("torch", "fp32")
    with pytest.raises(backends.BackendError, match="runs on the CPU"):
        backends.choose_backend("openvino", torch.device("cuda"), "fp32", records)
    monkeypatch.setattr(backends, "installed", lambda backend: backend != "onnxruntime")
    assert backends.choose_backend("auto", cpu, "fp32", records)[0] == "torch"  # the fastest is not installed


def test_onnxruntime_runs_fp32_or_int8_only() -> None:
    assert backends.backend_precision("onnxruntime", "auto") == "fp32"
    assert backends.backend_precision("openvino", "bf16") == "bf16"
    assert backends.backend_precision("torch", "auto") == "auto"
    assert backends.backend_precision("openvino", "int8") == "int8"
    with pytest.raises(backends.BackendError, match="int8 graph"):
        backends.backend_precision("torch", "int8")
    with pytest.raises(backends.BackendError, match="runs fp32 or int8, not bf16"):
        backends.backend_precision("onnxruntime", "bf16")


def tiny_recipe(folder: Path) -> dict:
    """An int8 recipe for the tiny denoiser: 24 crops of four smooth training pictures made
    in ``folder`` (a stand-in for ../shared/data/train, so the test needs no data set)."""
    (folder / "set").mkdir(parents=True)
    rng = np.random.default_rng(5)
    for index in range(4):
        picture = cv2.GaussianBlur(rng.random((48, 48, 3)).astype(np.float32), (0, 0), 2.0)
        cv2.imwrite(str(folder / "set" / f"{index}.png"), (picture * 255).round().astype(np.uint8))
    crops = [[f"set/{index % 4}.png", int(rng.integers(17)), int(rng.integers(17))] for index in range(24)]
    return {"weights": "tiny", "task": "denoise", "task_options": {}, "training_options": {"sigma_max": 50.0},
            "crop": 32, "seed": 0, "crops": crops}


@pytest.mark.parametrize("backend", EXPORTED)
def test_int8_stays_within_a_few_levels_of_fp32_and_is_quantised_once(
        tmp_path: Path, cache: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import restore.engine.backends.int8 as int8
    import restore.model

    recipe = tiny_recipe(tmp_path / "train")
    monkeypatch.setenv("RESTORE_TRAIN_DATA", str(tmp_path / "train"))
    monkeypatch.setattr(restore.model, "find_recipe", lambda name, sha256: recipe)  # the tiny file has no entry
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    rng = np.random.default_rng(2)
    smooth = cv2.GaussianBlur(rng.random((40, 56, 3)).astype(np.float32), (0, 0), 3.0)
    image = (np.clip(smooth + rng.normal(0, 0.1, smooth.shape), 0, 1) * 255).round().astype(np.uint8)
    expected = restore.load(weights, device="cpu", precision="fp32")(image, sigma=25).astype(int)
    model = restore.load(weights, device="cpu", precision="int8", backend=backend)
    actual = model(image, sigma=25).astype(int)
    difference = np.abs(actual - expected)
    # quantising every convolution (first and last too) gave a mean of 5.2 levels and a maximum of 24 here
    assert difference.mean() <= 2.5 and difference.max() <= 12, (difference.mean(), difference.max())
    assert difference.max() > 0  # it really ran the quantised graph, not the fp32 one
    import onnx

    quantised = onnx.load(str(model._graph.graphs["int8"]))
    assert sum(node.op_type == "QuantizeLinear" for node in quantised.graph.node) >= 3
    files = sorted((cache / "graphs").iterdir())
    fp32 = model._graph.graphs["fp32"]
    assert len(files) == 2 and model._graph.graphs["int8"].name.startswith(fp32.stem + "-int8-") and fp32 in files

    monkeypatch.setattr(int8, "quantise", lambda *args: pytest.fail("quantised again"))
    monkeypatch.setattr(export, "export_onnx", lambda *args: pytest.fail("exported again"))
    again = restore.load(weights, device="cpu", precision="int8", backend=backend)(image, sigma=25)
    assert np.array_equal(again, actual) and sorted((cache / "graphs").iterdir()) == files


@pytest.mark.skipif(not train_data().is_dir(), reason="../shared/data/train (int8 calibration crops) is not available")
@pytest.mark.parametrize("backend", EXPORTED)
def test_shipped_superres_int8_keeps_its_bicubic_base(backend: str) -> None:
    """superres-x4's int8 graph, quantised by its committed recipe, stays near fp32 in both
    runtimes: the bicubic convolution under the output stays fp32 (an int8 graph with the
    channels folded into the batch instead came out 21 levels off on average in OpenVINO;
    tiny random networks do not show it, hence the shipped weights)."""
    image = (np.random.default_rng(0).random((96, 96, 3)) * 255).astype(np.uint8)
    expected = restore.load("superres-x4", device="cpu", precision="fp32")(image).astype(int)
    actual = restore.load("superres-x4", device="cpu", precision="int8", backend=backend)(image).astype(int)
    difference = np.abs(actual - expected)
    assert difference.mean() <= 2.5, (difference.mean(), difference.max())


def test_int8_without_a_recipe_is_refused_naming_what_to_do(tmp_path: Path) -> None:
    if not backends.installed("onnxruntime") or importlib.util.find_spec("onnx") is None:
        pytest.skip("onnxruntime (with onnx) is not installed: pip install 'restore[onnx]'")
    write_pictures(tmp_path / "in")
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    result = CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(weights), "--precision", "int8", "--backend", "onnxruntime"])
    assert result.exit_code == 2, result.output
    assert "needs a calibration recipe" in result.output and "--precision fp32" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
    with pytest.raises(backends.BackendError, match="use --backend onnxruntime or openvino"):
        restore.load(weights, device="cpu", precision="int8")


def test_auto_takes_an_int8_path_only_within_the_loss_bound_and_under_precision_auto(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "installed", lambda backend: True)
    cpu = torch.device("cpu")
    paths = {"torch-fp32": {"seconds_per_megapixel": 3.0, "psnr_loss_db": 0.0},
             "openvino-fp32": {"seconds_per_megapixel": 1.0, "psnr_loss_db": 0.0},
             "onnxruntime-int8": {"seconds_per_megapixel": 0.5, "psnr_loss_db": 0.04}}
    assert backends.choose_backend("auto", cpu, "fp32", {"paths": paths}, int8=True) == ("onnxruntime", "int8")
    assert backends.choose_backend("auto", cpu, "fp32", {"paths": paths}) == ("openvino", "fp32")  # fp32 asked
    lossy = {**paths, "onnxruntime-int8": {"seconds_per_megapixel": 0.5, "psnr_loss_db": 0.06}}
    assert backends.choose_backend("auto", cpu, "fp32", {"paths": lossy}, int8=True) == ("openvino", "fp32")
    assert backends.choose_backend("auto", cpu, "int8", {"paths": lossy}) == ("onnxruntime", "int8")  # int8 asked
    with pytest.raises(backends.BackendError, match="no int8 path was measured"):
        backends.choose_backend("auto", cpu, "int8", {"paths": {}})

"""Restorer (the inference engine) and the Python API around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import restore
from restore.engine.device import PrecisionError
from restore.weights import BF16_CHECK, WeightsError, load_manifest
from tiny_weights import write_tiny_denoise_weights


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    return write_tiny_denoise_weights(tmp_path / "tiny.safetensors")


@pytest.mark.parametrize(
    "shape,dtype",
    [((21, 30, 3), np.uint8), ((17, 19), np.uint16), ((16, 16, 1), np.float32), ((9, 40, 3), np.uint16)],
)
def test_array_in_same_array_out(weights: Path, shape: tuple, dtype: type) -> None:
    model = restore.load(weights, device="cpu")
    rng = np.random.default_rng(0)
    image = rng.random(shape).astype(np.float32)
    if dtype is not np.float32:
        image = (image * np.iinfo(dtype).max).astype(dtype)
    output = model(image, sigma=10)
    assert output.shape == image.shape and output.dtype == image.dtype


def test_tensor_in_same_tensor_out(weights: Path) -> None:
    model = restore.load(weights, device="cpu")
    batch = torch.rand(2, 3, 20, 20)
    assert model(batch, sigma=5).shape == batch.shape
    assert model(batch[0], sigma=5).shape == batch[0].shape


def test_tiled_equals_whole_for_the_network(weights: Path) -> None:
    image = np.random.default_rng(1).random((70, 90, 3)).astype(np.float32)
    whole = restore.load(weights, device="cpu")(image, sigma=15)
    tiled = restore.load(weights, device="cpu", tile=48, tile_overlap=16)(image, sigma=15)
    assert np.abs(whole - tiled).mean() < 2e-3  # blending differs only near tile borders


def test_batch_size_auto_is_one_tile_per_pass_on_the_cpu(weights: Path) -> None:
    """Batches of tiles are slower on the CPU (engine/tiling.py's measurement)."""
    assert restore.load(weights, device="cpu").batch_size == 1
    assert restore.load(weights, device="cpu", batch_size=3).batch_size == 3


@pytest.mark.slow  # torch.compile builds C++ kernels: tens of seconds
def test_compiled_model_gives_the_eager_result(weights: Path) -> None:
    image = np.random.default_rng(2).random((24, 40, 3)).astype(np.float32)
    eager = restore.load(weights, device="cpu", precision="fp32")(image, sigma=15)
    compiled = restore.load(weights, device="cpu", precision="fp32", compile=True)(image, sigma=15)
    assert np.abs(eager - compiled).max() < 1e-4


def test_a_failing_torch_compile_says_how_to_run_without_it(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class InvalidCxxCompiler(RuntimeError):  # what torch raises where no C++ compiler is installed
        pass

    InvalidCxxCompiler.__module__ = "torch._inductor.exc"

    def compile_without_a_compiler(network: torch.nn.Module):
        def run(batch: torch.Tensor) -> torch.Tensor:
            raise InvalidCxxCompiler("InvalidCxxCompiler: No working C++ compiler found")

        return run

    monkeypatch.setattr(torch, "compile", compile_without_a_compiler)
    model = restore.load(weights, device="cpu", compile=True)
    with pytest.raises(RuntimeError, match="No working C.. compiler found.*run without --compile"):
        model(np.zeros((8, 8, 3), np.float32), sigma=10)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples_are_refused(weights: Path, bad: float) -> None:
    """Not run: a single NaN would spread through the network and make every output pixel NaN."""
    image = np.random.default_rng(1).random((16, 16, 3)).astype(np.float32)
    image[3, 4, 1] = bad
    with pytest.raises(ValueError, match="1 NaN or infinite sample"):
        restore.load(weights, device="cpu")(image, sigma=15)


def test_sigma_auto_is_estimated_and_reported(weights: Path) -> None:
    model = restore.load(weights, device="cpu")
    noisy = np.clip(0.5 + np.random.default_rng(2).normal(0, 25 / 255, (64, 64, 3)), 0, 1).astype(np.float32)
    _, info = model.run(torch.from_numpy(noisy).permute(2, 0, 1)[None], sigma="auto")
    assert info["sigma_estimated"] and 20 < info["sigma"] < 30


def test_sigma_changes_the_output(weights: Path) -> None:
    model = restore.load(weights, device="cpu")
    image = np.random.default_rng(3).random((16, 16, 3)).astype(np.float32)
    assert not np.allclose(model(image, sigma=0), model(image, sigma=50))


def test_grey_image_on_colour_model_stays_grey(weights: Path) -> None:
    model = restore.load(weights, device="cpu")
    grey = np.random.default_rng(4).integers(0, 256, (12, 12), dtype=np.uint8)
    assert model(grey, sigma=10).shape == (12, 12)


def test_fp16_on_cpu_is_refused_with_a_message(weights: Path) -> None:
    with pytest.raises(PrecisionError, match="fp16 is not supported on the CPU"):
        restore.load(weights, device="cpu", precision="fp16")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_uses_bf16_only_for_8_bit_images_on_bf16_hardware_with_measured_weights(
    monkeypatch, native: bool
) -> None:
    """Shipped weights whose manifest records bench/precision_check.py's bf16-vs-fp32 check."""
    import restore.engine.device as device

    monkeypatch.setattr(device, "native_bf16", lambda _device: native)
    assert BF16_CHECK in load_manifest()["denoise-color"].metrics
    auto, fp32, bf16 = (restore.load("denoise-color", device="cpu", precision=p, tile=0) for p in ("auto", "fp32", "bf16"))
    rng = np.random.default_rng(3)
    eight = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    sixteen = rng.integers(0, 65536, (24, 24, 3), dtype=np.uint16)
    assert np.array_equal(auto(eight, sigma=10), (bf16 if native else fp32)(eight, sigma=10))
    assert not np.array_equal(bf16(eight, sigma=10), fp32(eight, sigma=10))  # (so the check above can fail)
    assert np.array_equal(auto(sixteen, sigma=10), fp32(sixteen, sigma=10))  # 16-bit levels need fp32
    tensor = torch.from_numpy(eight).permute(2, 0, 1).float() / 255  # float tensors count as exact
    assert torch.equal(auto(tensor, sigma=10), fp32(tensor, sigma=10))


def test_auto_precision_runs_unmeasured_weights_in_fp32(weights: Path, monkeypatch) -> None:
    """A user's own file (and the same bytes as a shipped one, given by path) has no record."""
    import restore.engine.device as device

    monkeypatch.setattr(device, "native_bf16", lambda _device: True)
    auto, fp32, bf16 = (restore.load(weights, device="cpu", precision=p, tile=0) for p in ("auto", "fp32", "bf16"))
    eight = np.random.default_rng(3).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    assert np.array_equal(auto(eight, sigma=10), fp32(eight, sigma=10))
    assert not np.array_equal(bf16(eight, sigma=10), fp32(eight, sigma=10))


def test_unknown_weights_name_names_the_shipped_ones() -> None:
    with pytest.raises(WeightsError, match="neither a shipped weights name"):
        restore.load("no-such-weights")


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pth"
    torch.save({"weight": Exploit()}, path)
    with pytest.raises(WeightsError, match="refused"):
        restore.load(path)
    assert not marker.exists()


def test_ensemble_averages_the_eight_flips_and_rotations(weights: Path) -> None:
    from restore.model import ENSEMBLE_TRANSFORMS

    plain = restore.load(weights, device="cpu", tile=0)
    with torch.no_grad():  # a small correction keeps outputs inside [0, 1], so clamping plays no part
        for parameter in plain.network.tail.parameters():
            parameter.mul_(0.05)
    ensembled = restore.load(weights, device="cpu", tile=0, ensemble=True)
    ensembled.network = plain.network
    image = 0.4 + 0.2 * torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    expected = sum(inverse(plain.run(forward(image), sigma=20)[0]) for forward, inverse in ENSEMBLE_TRANSFORMS) / 8
    result = ensembled.run(image, sigma=20)[0]
    torch.testing.assert_close(result, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(result, plain.run(image, sigma=20)[0], atol=1e-5)  # the rotations do matter
    assert len({str(forward(torch.arange(6.0).view(1, 1, 2, 3)).tolist()) for forward, _ in ENSEMBLE_TRANSFORMS}) == 8

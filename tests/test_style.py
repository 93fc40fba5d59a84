"""Style transfer: the published pix2pix/CycleGAN defaults, loading generators published by
pytorch-CycleGAN-and-pix2pix (checked against a reference written here from the paper's
and code's description, not from restore's networks), weights selection by direction,
and the ``restore style`` / ``restore train style`` commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from restore.cli import main
from restore.io.image import read_image
from restore.model import Restorer
from restore.nets import build_network
from restore.nets.pix2pix_checkpoint import recognise_generator
from restore.tasks.style import select_weights, split_aligned
from restore.training import build_trainer, resolve_config
from restore.weights import WeightsError, load_manifest, load_weights, save_weights

from conftest import write_images

REFERENCE_WIDTH = 8  # ngf of the reference generator: small, so the test is fast


# -- a ResnetGenerator written from the published description ------------------------------


class ReferenceBlock(nn.Module):
    """Residual block: reflection pad 1, 3x3 conv, instance norm, ReLU, reflection pad 1,
    3x3 conv, instance norm, plus the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def reference_resnet(width: int = REFERENCE_WIDTH, blocks: int = 9) -> nn.Module:
    """CycleGAN's generator as its paper and code describe it: reflection pad 3, 7x7 conv,
    two stride-2 3x3 convs, ``blocks`` residual blocks, two stride-2 transposed convs,
    reflection pad 3, 7x7 conv, tanh; instance norm (no affine) and ReLU after every conv
    but the last, convs with bias (instance norm). Attribute ``model`` as in their files."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, width, 7), nn.InstanceNorm2d(width), nn.ReLU(True)]
    for multiplier in (1, 2):
        layers += [nn.Conv2d(width * multiplier, width * multiplier * 2, 3, 2, 1), nn.InstanceNorm2d(width * multiplier * 2), nn.ReLU(True)]
    layers += [ReferenceBlock(width * 4) for _ in range(blocks)]
    for multiplier in (4, 2):
        layers += [
            nn.ConvTranspose2d(width * multiplier, width * multiplier // 2, 3, 2, 1, output_padding=1),
            nn.InstanceNorm2d(width * multiplier // 2),
            nn.ReLU(True),
        ]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh()]
    module = nn.Module()
    module.model = nn.Sequential(*layers)
    return module


@pytest.fixture(scope="module")
def reference() -> nn.Module:
    torch.manual_seed(0)
    return reference_resnet().eval()


@pytest.fixture
def published_file(reference: nn.Module, tmp_path: Path) -> Path:
    """The reference's weights as their code saves them (``torch.save(state_dict)``), plus
    the instance-norm running statistics that files from PyTorch < 0.4 carry."""
    state = reference.state_dict()
    for index in (2, 5, 8):  # the stem's and the downsamplings' norms
        state[f"model.{index}.running_mean"] = torch.zeros(REFERENCE_WIDTH * 2 ** (index // 3))
        state[f"model.{index}.running_var"] = torch.ones(REFERENCE_WIDTH * 2 ** (index // 3))
    state["model.10.conv_block.2.num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    return path


def reference_output(reference: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Their test-time path: [0, 1] -> Normalize(0.5, 0.5) -> G -> (y + 1) / 2."""
    with torch.no_grad():
        return (reference.model(image * 2 - 1) + 1) / 2


def test_published_resnet_checkpoint_matches_the_reference(reference: nn.Module, published_file: Path) -> None:
    model = Restorer.from_weights(published_file, task="style", device="cpu")
    assert model.metadata["network"]["n_blocks"] == 9 and model.metadata["network"]["norm"] == "instance"
    image = torch.rand(1, 3, 36, 44, generator=torch.Generator().manual_seed(1))  # multiples of 4: no padding
    output, _ = model.run(image)
    assert torch.allclose(output, reference_output(reference, image), atol=1e-5, rtol=0)


def test_auto_precision_runs_a_published_checkpoint_in_fp32(published_file: Path, monkeypatch) -> None:
    """bf16 moved a published CycleGAN ResNet-9 generator's outputs by up to 24 levels: a
    file without a measured bf16 check keeps its fp32 output even on bf16 hardware."""
    import restore.engine.device as device

    monkeypatch.setattr(device, "native_bf16", lambda _device: True)
    auto, fp32, bf16 = (Restorer.from_weights(published_file, task="style", device="cpu", precision=precision, tile=0)
                        for precision in ("auto", "fp32", "bf16"))
    assert auto.metadata["network"]["n_blocks"] == 9
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert np.array_equal(auto(image), fp32(image))
    assert not np.array_equal(bf16(image), fp32(image))  # (so the check above can fail)


def test_any_size_is_padded_and_cropped_back(published_file: Path) -> None:
    model = Restorer.from_weights(published_file, task="style", device="cpu")
    image = torch.rand(1, 3, 29, 38)
    output, _ = model.run(image)
    assert output.shape == image.shape
    assert 0 <= float(output.min()) and float(output.max()) <= 1


def test_plain_state_dict_needs_a_task_to_recognise_it(published_file: Path) -> None:
    with pytest.raises(WeightsError, match="no restore metadata"):
        Restorer.from_weights(published_file, device="cpu")


def test_pickle_that_would_run_code_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "latest_net_G.pth"
    torch.save({"model.1.weight": Exploit()}, path)
    with pytest.raises(WeightsError, match="refused"):
        Restorer.from_weights(path, task="style", device="cpu")
    assert not marker.exists()


def test_unknown_state_dict_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(WeightsError, match="not a pytorch-CycleGAN-and-pix2pix generator"):
        Restorer.from_weights(path, task="style", device="cpu")


@pytest.mark.parametrize(
    "spec",
    [
        {"arch": "resnet", "base_channels": 4, "n_blocks": 6, "norm": "instance", "dropout": False},
        {"arch": "resnet", "base_channels": 4, "n_blocks": 2, "norm": "batch", "dropout": True},
        {"arch": "resnet", "base_channels": 4, "n_blocks": 3, "norm": "none", "padding": "zero", "dropout": True},
        {"arch": "resnet", "in_channels": 1, "out_channels": 3, "base_channels": 4, "n_blocks": 1, "padding": "zero"},
        {"arch": "pix2pix_unet", "base_channels": 4, "num_downs": 8, "norm": "batch"},
        {"arch": "pix2pix_unet", "in_channels": 1, "out_channels": 2, "base_channels": 4, "num_downs": 6, "norm": "instance"},
    ],
)
def test_layouts_are_read_from_the_keys(spec: dict) -> None:
    state = build_network(spec).state_dict()
    _, recognised = recognise_generator(state)
    expected = build_network(spec).config
    # batch norm is read as per-image batch norm (pix2pix's test-time behaviour), same weights
    wanted = {**expected.__dict__, "norm": {"batch": "batch_per_image"}.get(expected.norm, expected.norm), "value_range": "unit"}
    if spec["arch"] == "pix2pix_unet":
        wanted["dropout"] = True  # invisible in the keys; off at inference either way
    assert {key: recognised[key] for key in wanted} == wanted


def test_pix2pix_unet_normalises_each_image_by_its_own_statistics(tmp_path: Path) -> None:
    """Their test script runs pix2pix in training mode: batch norm with the statistics of
    the one test image. The stored running averages must not be used."""
    torch.manual_seed(0)
    spec = {"arch": "pix2pix_unet", "base_channels": 4, "num_downs": 5, "norm": "batch", "dropout": False}
    theirs = build_network(spec)
    for module in theirs.modules():
        if isinstance(module, nn.BatchNorm2d):  # running stats far from any image's
            module.running_mean.fill_(5.0)
            module.running_var.fill_(9.0)
    path = tmp_path / "latest_net_G.pth"
    torch.save(theirs.state_dict(), path)
    model = Restorer.from_weights(path, task="style", device="cpu")
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = (theirs.train()(image * 2 - 1) + 1) / 2  # train mode, batch of one, no dropout
    output, _ = model.run(image)
    assert torch.allclose(output, expected.clamp(0, 1), atol=1e-5, rtol=0)


def test_per_image_batch_norm_is_batch_norm_over_one_image_at_a_time() -> None:
    from restore.nets.layers import PerImageBatchNorm2d

    torch.manual_seed(0)
    norm, reference = PerImageBatchNorm2d(3), nn.BatchNorm2d(3)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    reference.load_state_dict(norm.state_dict())
    images = torch.randn(2, 3, 5, 5) * 3 + 1
    expected = torch.cat([reference(image[None]) for image in images])  # train mode, batches of one
    assert torch.allclose(norm(images), expected, atol=1e-5)
    assert float(norm.running_mean.abs().sum()) > 0  # kept up to date in training
    stored = norm.running_mean.clone()
    assert torch.allclose(norm.eval()(images), expected, atol=1e-5)  # the same at test time
    assert torch.equal(norm.running_mean, stored)  # and inference does not touch the statistics


# -- defaults --------------------------------------------------------------------------------


def test_pix2pix_defaults_are_the_published_ones() -> None:
    config = resolve_config("style", None, {"data": {"layout": "aligned"}})
    assert config.generator["arch"] == "pix2pix_unet" and config.generator["num_downs"] == 8
    assert config.generator["norm"] == "batch_per_image" and config.generator["dropout"]
    assert config.discriminator == {**config.discriminator, "arch": "patch", "n_layers": 3, "in_channels": 6, "norm": "batch"}
    assert (config.loss.gan, config.loss.adversarial_weight) == ("vanilla", 1.0)
    assert (config.data.crop, config.data.load_size, config.data.batch_size) == (256, 286, 1)
    # lambda_L1 = 100 on [-1, 1] images is this weight on restore's [0, 1] images
    output, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    ours = config.loss.reconstruction_weight * (output - target).abs().mean()
    theirs = 100 * ((output * 2 - 1) - (target * 2 - 1)).abs().mean()
    assert float(ours) == pytest.approx(float(theirs))


def test_cyclegan_defaults_are_the_published_ones() -> None:
    config = resolve_config("style", None, {})
    assert config.data.layout == "unaligned"
    assert {k: config.generator[k] for k in ("arch", "n_blocks", "norm", "dropout", "padding")} == {
        "arch": "resnet", "n_blocks": 9, "norm": "instance", "dropout": False, "padding": "reflect"
    }
    assert config.discriminator["norm"] == "instance" and config.discriminator["n_layers"] == 3
    assert (config.loss.gan, config.loss.pool_size, config.loss.identity_weight) == ("lsgan", 50, 0.5)
    output, target = torch.rand(3, 8, 8), torch.rand(3, 8, 8)  # lambda_A = 10 on [-1, 1] images
    assert float(config.loss.cycle_weight * (output - target).abs().mean()) == pytest.approx(
        float(10 * (2 * output - 2 * target).abs().mean())
    )
    optim = config.optim
    assert (optim.lr_g, optim.lr_d, optim.betas_g, optim.betas_d) == (2e-4, 2e-4, [0.5, 0.999], [0.5, 0.999])
    assert (optim.schedule, optim.decay_start, optim.min_lr_ratio, optim.ema_decay) == ("linear", 0.5, 0.0, 0.0)


def test_style_does_not_train_on_clean_images() -> None:
    from restore.tasks import get_task

    with pytest.raises(ValueError, match="--aligned"):
        get_task("style").make_pair(torch.rand(3, 8, 8), {}, torch.Generator())


def test_load_size_resizes_each_half_before_the_crops() -> None:
    from restore.engine.data import AlignedPairs, UnalignedPairs

    left, right = torch.zeros(3, 10, 10), torch.ones(3, 10, 10)
    pairs = AlignedPairs([torch.cat([left, right], dim=-1)], crop=14, seed=0, direction="AtoB", load_size=15)
    assert pairs.images[0].shape == (3, 15, 30)
    for index in range(4):  # jittered crops, but A stays A and B stays B
        a, b = pairs[index]
        assert a.shape == b.shape == (3, 14, 14) and float(a.max()) == 0 and float(b.min()) == 1
    unaligned = UnalignedPairs([torch.rand(3, 10, 12)], [torch.rand(3, 20, 9)], crop=8, seed=0, load_size=11)
    assert [image.shape for image in unaligned.images_a + unaligned.images_b] == [(3, 11, 11)] * 2


# -- training and direction ------------------------------------------------------------------

TINY_RESNET = {"arch": "resnet", "base_channels": 4, "n_blocks": 1, "value_range": "unit"}
TINY_PATCH = {"arch": "patch", "base_channels": 4, "n_layers": 2, "norm": "instance"}


def tiny_cyclegan(data: Path, direction: str, steps: int = 2):
    return resolve_config(
        "style",
        None,
        {
            "steps": steps,
            "device": "cpu",
            "generator": TINY_RESNET,
            "discriminator": TINY_PATCH,
            "data": {"train": [str(data)], "layout": "unaligned", "direction": direction, "crop": 16, "load_size": 0, "workers": 0},
            "log": {"tensorboard": False},
        },
    )


def test_cyclegan_files_record_what_each_generator_translates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_images(data / "trainA", 3, 20, 20, seed=1)
    write_images(data / "trainB", 3, 20, 20, seed=2)
    run = tmp_path / "run"
    build_trainer(tiny_cyclegan(data, "BtoA"), run, progress=False).fit()
    assert load_weights(run / "best_A.safetensors")[1]["direction"] == "BtoA"  # G_A: the run's direction
    assert load_weights(run / "best_B.safetensors")[1]["direction"] == "AtoB"
    assert select_weights(str(run), "AtoB") == str(run / "best_B.safetensors")
    assert select_weights(str(run), "BtoA") == str(run / "best_A.safetensors")
    with pytest.raises(WeightsError, match="pass --direction"):
        select_weights(str(run), None)
    with pytest.raises(WeightsError, match=r"translates BtoA, not AtoB; best_B.safetensors"):
        select_weights(str(run / "best_A.safetensors"), "AtoB")


def test_cyclegan_sample_grids_show_both_domains_there_and_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_images(data / "trainA", 3, 20, 24, seed=1)
    write_images(data / "trainB", 2, 20, 24, seed=2)
    config = tiny_cyclegan(data, "AtoB")
    config.log.sample_every = 2
    build_trainer(config, tmp_path / "run", progress=False).fit()
    grid = read_image(tmp_path / "run" / "samples" / "step_0000002.png").pixels
    # torchvision's grid: 2-pixel borders; 3 columns (real | translated | back), 2 + 2 rows
    assert grid.shape[:2] == (4 * (20 + 2) + 2, 3 * (24 + 2) + 2)


def test_select_weights_passes_plain_files_and_names_through(tmp_path: Path, published_file: Path) -> None:
    assert select_weights(str(published_file), "BtoA") == str(published_file)  # no direction recorded
    assert select_weights(None, "AtoB") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="no best"):
        select_weights(str(empty), "AtoB")


def test_pix2pix_file_refuses_the_other_direction(tmp_path: Path) -> None:
    spec = {"arch": "resnet", "base_channels": 4, "n_blocks": 1}
    save_weights(tmp_path / "best.safetensors", build_network(spec).state_dict(),
                 {"task": "style", "network": spec, "direction": "BtoA"})
    assert select_weights(str(tmp_path), "BtoA") == str(tmp_path / "best.safetensors")
    with pytest.raises(WeightsError, match="translating AtoB"):
        select_weights(str(tmp_path), "AtoB")


# -- commands --------------------------------------------------------------------------------


def test_style_command_translates_a_folder_with_a_published_checkpoint(
    reference: nn.Module, published_file: Path, tmp_path: Path
) -> None:
    inputs = write_images(tmp_path / "in", 2, 24, 28, seed=5)
    result = CliRunner().invoke(
        main, ["style", "--weights", str(published_file), "--in", str(inputs), "--out", str(tmp_path / "out"),
               "--device", "cpu", "--precision", "fp32", "--quiet"]  # auto may pick bf16: a few levels off
    )
    assert result.exit_code == 0, result.output
    source = read_image(inputs / "000.png").pixels
    written = read_image(tmp_path / "out" / "000.png").pixels
    assert written.shape == source.shape
    expected = reference_output(reference, torch.from_numpy(source.astype(np.float32) / 255).permute(2, 0, 1)[None])
    expected = np.rint(expected[0].permute(1, 2, 0).numpy() * 255)
    assert np.abs(written.astype(np.float64) - expected).max() <= 1  # 8-bit rounding of a float match


def test_style_command_without_weights_explains(tmp_path: Path) -> None:
    inputs = write_images(tmp_path / "in", 1, 8, 8, seed=6)
    result = CliRunner().invoke(main, ["style", "--in", str(inputs), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code != 0
    assert "pass --weights" in result.output


def test_train_style_picks_pix2pix_for_aligned_data_and_cyclegan_for_folders(tmp_path: Path) -> None:
    aligned = write_images(tmp_path / "aligned", 1, 8, 16, seed=7)
    result = CliRunner().invoke(main, ["train", "style", "--data", str(aligned), "--aligned", "--print-config"])
    assert result.exit_code == 0, result.output
    assert 'arch = "pix2pix_unet"' in result.output and 'layout = "aligned"' in result.output
    unaligned = tmp_path / "unaligned"
    write_images(unaligned / "trainA", 1, 8, 8, seed=8)
    write_images(unaligned / "trainB", 1, 8, 8, seed=9)
    result = CliRunner().invoke(main, ["train", "style", "--data", str(unaligned), "--print-config"])
    assert result.exit_code == 0, result.output
    assert 'arch = "resnet"' in result.output and 'layout = "unaligned"' in result.output


FACADES_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train" / "facades" / "test"


@pytest.mark.skipif("style-facades-label2photo" not in load_manifest(), reason="no facades weights shipped")
@pytest.mark.skipif(not FACADES_TEST.is_dir(), reason="../shared/data (facades/test) not present")
def test_shipped_facades_model_brings_held_out_labels_closer_to_the_photos() -> None:
    """The issue's check: on held-out facades, output photos are nearer the real photos (L1)
    than the label maps they were made from. A weak bar (a 3-step model clears it: the
    labels' saturated colours are far from any photo), but it catches a model loaded in
    the wrong direction or value range."""
    import restore

    model = restore.load("style-facades-label2photo", device="cpu")
    label_l1 = output_l1 = 0.0
    for path in sorted(FACADES_TEST.glob("*.jpg"))[:8]:
        pixels = read_image(path).pixels.astype(np.float64) / 255
        photo, labels = pixels[:, :256], pixels[:, 256:512]  # A = photo, B = labels
        output = model(read_image(path).pixels[:, 256:512]).astype(np.float64) / 255
        label_l1 += np.abs(labels - photo).mean()
        output_l1 += np.abs(output - photo).mean()
    assert output_l1 < label_l1


def test_split_aligned_makes_unpaired_folders(tmp_path: Path) -> None:
    source = write_images(tmp_path / "pairs", 4, 8, 16, seed=10)
    assert split_aligned(source, tmp_path / "split") == (2, 2)
    a_names = sorted(p.name for p in (tmp_path / "split" / "trainA").iterdir())
    b_names = sorted(p.name for p in (tmp_path / "split" / "trainB").iterdir())
    assert a_names == ["000.png", "002.png"] and b_names == ["001.png", "003.png"]  # no pair on both sides
    pair = read_image(source / "001.png").pixels
    assert np.array_equal(read_image(tmp_path / "split" / "trainB" / "001.png").pixels, pair[:, 8:])


# -- bench scripts -----------------------------------------------------------------------------


def load_bench(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_style_bench_scores_held_out_pairs_writes_the_grid_and_records(tmp_path: Path, monkeypatch, capsys) -> None:
    import restore.weights.manifest as registry

    pairs = write_images(tmp_path / "test", 3, 16, 32, seed=4)  # A|B, 16x16 halves
    spec = {"arch": "resnet", "base_channels": 4, "n_blocks": 1}
    save_weights(tmp_path / "p2p.safetensors", build_network(spec).state_dict(),
                 {"task": "style", "network": spec, "direction": "BtoA"})
    monkeypatch.setattr(registry, "weights_dir", lambda: tmp_path / "weights")
    registry.export_weights(tmp_path / "p2p.safetensors", "p2p", "r.toml")
    load_bench("style_quality").main(["--weights", "p2p", "--data", str(pairs), "--grid", str(tmp_path / "grid.png"),
                                      "--grid-rows", "2", "--record"])
    assert "input " in capsys.readouterr().out
    assert read_image(tmp_path / "grid.png").pixels.shape == (2 * 16, 3 * 16, 3)  # input | ours | target
    metrics = registry.load_manifest()["p2p"].metrics[f"{tmp_path.name}/test"]
    assert metrics["images"] == 3 and metrics["direction"] == "BtoA"
    assert {"l1", "psnr", "ssim", "histogram_w1", "input_l1", "input_psnr"} <= set(metrics)
    images = [read_image(path).pixels.astype(np.float64) / 255 for path in sorted(pairs.glob("*.png"))]
    assert np.isclose(metrics["input_l1"], np.mean([np.abs(image[:, 16:] - image[:, :16]).mean() for image in images]))


def test_loss_trend_prints_window_means_of_the_logged_losses(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    write_images(data / "trainA", 2, 20, 20, seed=1)
    write_images(data / "trainB", 2, 20, 20, seed=2)
    config = tiny_cyclegan(data, "AtoB", steps=4)
    config.log.tensorboard, config.log.log_every = True, 1
    build_trainer(config, tmp_path / "run", progress=False).fit()
    load_bench("loss_trend").main([str(tmp_path / "run"), "--windows", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("4 steps, mean per 2 equal windows")
    cycle = next(line for line in lines if line.startswith("loss/cycle"))
    assert len(cycle.split()) == 3  # the tag and two window means

"""Community checkpoints (restore/zoo): safe loading, the engine matching a plain forward of
the same network, non-blind denoisers' noise level, wrong purposes, and the user registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from community_files import (
    DNCNN,
    REALESR,
    drunet_network,
    kair_ffdnet_forward,
    kair_ffdnet_state_dict,
    shared_model,
    to_levels,
    to_tensor,
    write_code_running_pth,
)
from restore.cli import main
from restore.io.image import Image, read_image, write_image


@pytest.fixture(autouse=True)
def restore_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("RESTORE_HOME", str(home))
    return home


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    return result.exit_code, result.output


def photo(height: int, width: int, channels: int = 3, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    """A smooth random image (structure for the networks), ``(H, W, C)``."""
    import cv2

    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.random((height, width, channels)).astype(np.float32), (0, 0), 2.0)
    smooth = smooth.reshape(height, width, channels)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    top = 255 if dtype == np.uint8 else 65535
    return (smooth * top).round().astype(dtype)


def restore_one(tmp_path: Path, command: str, weights: Path, image: np.ndarray, *options: str) -> np.ndarray:
    """``restore COMMAND`` on one image file; its output's pixels."""
    write_image(tmp_path / "one.png", Image(image))
    code, output = run(command, "--in", tmp_path / "one.png", "--out", tmp_path / "one_out", "--weights", weights,
                       *options, "--quiet")
    assert code == 0, output
    return read_image(tmp_path / "one_out" / "one.png").pixels


def spandrel_reference(path: Path, image: torch.Tensor) -> torch.Tensor:
    """The whole-image forward of the projects' own scripts, through spandrel's descriptor."""
    import spandrel

    state = spandrel.canonicalize_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    descriptor = spandrel.MAIN_REGISTRY.load(state).eval()
    with torch.inference_mode():
        return descriptor(image)


# -- code-running pickles are refused on every path -------------------------------------


def test_code_running_pth_is_refused_everywhere_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    evil = write_code_running_pth(tmp_path / "evil.pth", marker)
    source = tmp_path / "in"
    source.mkdir()
    write_image(source / "a.png", Image(photo(16, 16)))
    data = tmp_path / "clean"
    data.mkdir()
    write_image(data / "a.png", Image(photo(16, 16)))
    calls = [
        ("superres", "--in", source, "--out", tmp_path / "out", "--weights", evil),
        ("denoise", "--in", source, "--out", tmp_path / "out", "--weights", evil),
        ("inpaint", "--in", source, "--out", tmp_path / "out", "--weights", evil),
        ("weights", "inspect", evil),
        ("weights", "add", evil, "--name", "evil"),
        ("eval", "denoise", "--data", data, "--sigma", "25", "--weights", evil, "--methods", "ours"),
        ("train", "superres", "--data", data, "--out", tmp_path / "run", "--init-weights", evil, "--steps", "1"),
    ]
    for call in calls:
        code, output = run(*call)
        assert code == 2, (call, output)
        assert "refused" in output and "nothing in the file was run" in output, (call, output)
        assert not marker.exists(), call
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))
    torch.load(evil, weights_only=False)  # the file really runs code when unpickled
    assert marker.exists()


def test_torchscript_pt_is_refused_not_loaded(tmp_path: Path) -> None:
    """spandrel's loader opens .pt files with torch.jit.load; restore never does."""
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 3, 3)), str(scripted))
    code, output = run("weights", "inspect", scripted)
    assert code == 2 and "refused" in output


# -- real checkpoints against a plain forward ------------------------------------------


def test_realesr_matches_whole_image_forward_in_8_and_16_bit_grey_and_rgba(tmp_path: Path) -> None:
    weights = shared_model(REALESR)
    source = tmp_path / "in"
    source.mkdir()
    colour, deep = photo(23, 31, seed=1), photo(19, 17, dtype=np.uint16, seed=2)
    grey = photo(21, 18, channels=1, seed=3)
    alpha = photo(20, 22, channels=1, seed=4)[:, :, 0]
    write_image(source / "colour.png", Image(colour))
    write_image(source / "deep.png", Image(deep))
    write_image(source / "grey.png", Image(grey))
    write_image(source / "rgba.png", Image(colour[:20, :22], alpha))
    code, output = run("superres", "--in", source, "--out", tmp_path / "out", "--weights", weights,
                       "--tile", "0", "--precision", "fp32", "--quiet")
    assert code == 0, output

    out = read_image(tmp_path / "out" / "colour.png")
    reference = to_levels(spandrel_reference(weights, to_tensor(colour)))
    assert out.pixels.shape == (92, 124, 3)
    assert np.abs(out.pixels.astype(int) - reference).max() <= 1

    out = read_image(tmp_path / "out" / "deep.png")
    assert out.pixels.dtype == np.uint16 and out.pixels.shape == (76, 68, 3)
    reference = to_levels(spandrel_reference(weights, to_tensor(deep)), np.uint16)
    assert np.abs(out.pixels.astype(int) - reference).max() <= 1

    out = read_image(tmp_path / "out" / "grey.png")
    assert out.pixels.shape == (84, 72, 1)  # grey stays grey: replicated to RGB, averaged back
    reference = to_levels(spandrel_reference(weights, to_tensor(grey).expand(-1, 3, -1, -1)).mean(1, keepdim=True))
    assert np.abs(out.pixels.astype(int) - reference).max() <= 1

    out = read_image(tmp_path / "out" / "rgba.png")
    assert out.alpha is not None and out.alpha.shape == (80, 88)
    reference = to_levels(spandrel_reference(weights, to_tensor(colour[:20, :22])))
    assert np.abs(out.pixels.astype(int) - reference).max() <= 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {item["info"]["weights"] for item in report["files"]} == {"realesr-animevideov3.pth"}


def test_realesr_tiled_stays_within_a_few_levels(tmp_path: Path) -> None:
    weights = shared_model(REALESR)
    image = photo(100, 90, seed=5)
    out = restore_one(tmp_path, "superres", weights, image, "--tile", "48", "--precision", "fp32").astype(int)
    difference = np.abs(out - to_levels(spandrel_reference(weights, to_tensor(image))))
    assert difference.max() <= 4 and difference.mean() < 0.1


def test_grey_dncnn_runs_on_each_channel_of_a_colour_image(tmp_path: Path) -> None:
    weights = shared_model(DNCNN)
    image = photo(30, 26, seed=6)
    out = restore_one(tmp_path, "denoise", weights, image, "--tile", "0", "--precision", "fp32")
    channels = to_tensor(image).permute(1, 0, 2, 3)  # each channel an image of its own
    reference = to_levels(spandrel_reference(weights, channels).permute(1, 0, 2, 3))
    assert out.shape == image.shape and np.abs(out.astype(int) - reference).max() <= 1
    report = json.loads((tmp_path / "one_out" / "report.json").read_text())
    assert report["files"][0]["info"]["sigma"] is None  # blind: no noise level estimated


@pytest.mark.parametrize("model, command, fits", [(REALESR, "inpaint", "superres"), (REALESR, "denoise", "superres"),
                                                  (DNCNN, "superres", "denoise")])
def test_a_wrong_purpose_is_refused_naming_the_architecture_and_the_command(
    tmp_path: Path, model: Path, command: str, fits: str
) -> None:
    weights = shared_model(model)
    write_image(tmp_path / "a.png", Image(photo(8, 8)))
    code, output = run(command, "--in", tmp_path / "a.png", "--out", tmp_path / "out", "--weights", weights)
    assert code == 2, output
    architecture = "Compact" if model == REALESR else "DnCNN"
    assert architecture in output and f"restore {fits}" in output


def test_cuda_saved_params_wrapper_and_bf16_only_when_asked(tmp_path: Path) -> None:
    """The Real-ESRGAN file holds CUDA tensors in a params wrapper: it loads on a CPU-only
    machine; precision auto runs it in fp32 (unmeasured at lower precision)."""
    import restore

    weights = shared_model(REALESR)
    model = restore.load(weights, task="superres", device="cpu")
    assert model.scale == 4 and model.precision == "fp32"
    assert restore.load(weights, task="superres", device="cpu", precision="bf16").precision == "bf16"


# -- non-blind denoisers get --sigma ----------------------------------------------------


def test_ffdnet_kair_layout_is_not_taken_for_dncnn_and_matches_kair_forward(tmp_path: Path) -> None:
    import spandrel

    state = kair_ffdnet_state_dict(3)
    assert spandrel.MAIN_REGISTRY.load(dict(state)).architecture.id == "DnCNN"  # spandrel 0.4.2's mistake
    weights = tmp_path / "ffdnet_color.pth"
    torch.save(state, weights)
    image = photo(27, 33, seed=7)
    out = restore_one(tmp_path, "denoise", weights, image, "--sigma", "25", "--tile", "0", "--precision", "fp32")
    reference = to_levels(kair_ffdnet_forward(state, to_tensor(image), 25.0))
    assert np.abs(out.astype(int) - reference).max() <= 1
    code, output = run("weights", "inspect", weights)
    assert code == 0 and "FFDNet" in output and "noise_map" in output


def test_grey_ffdnet_sigma_changes_the_output(tmp_path: Path) -> None:
    weights = tmp_path / "ffdnet_gray.pth"
    state = kair_ffdnet_state_dict(1, seed=3)
    torch.save(state, weights)
    image = photo(20, 20, channels=1, seed=8)
    write_image(tmp_path / "g.png", Image(image))
    outputs = []
    for sigma in ("5", "50"):
        out = tmp_path / f"out{sigma}"
        code, output = run("denoise", "--in", tmp_path / "g.png", "--out", out, "--weights", weights, "--sigma", sigma,
                           "--tile", "0", "--precision", "fp32", "--quiet")
        assert code == 0, output
        outputs.append(read_image(out / "g.png").pixels)
        reference = to_levels(kair_ffdnet_forward(state, to_tensor(image), float(sigma)))
        assert np.abs(outputs[-1].astype(int) - reference).max() <= 1
    assert not np.array_equal(*outputs)


def test_drunet_gets_the_noise_map_and_sigma_auto(tmp_path: Path) -> None:
    network = drunet_network(3)
    weights = tmp_path / "drunet_color.pth"
    torch.save(network.state_dict(), weights)
    image = photo(29, 35, seed=9)  # not a multiple of 8: padded by the tiler, cropped back
    write_image(tmp_path / "d.png", Image(image))
    code, output = run("denoise", "--in", tmp_path / "d.png", "--out", tmp_path / "out", "--weights", weights,
                       "--sigma", "15", "--tile", "0", "--precision", "fp32", "--quiet")
    assert code == 0, output
    tensor = torch.nn.functional.pad(to_tensor(image), (0, 5, 0, 3), mode="reflect")
    with torch.inference_mode():
        reference = network(torch.cat([tensor, torch.full_like(tensor[:, :1], 15 / 255)], dim=1))[..., :29, :35]
    out = read_image(tmp_path / "out" / "d.png").pixels
    assert np.abs(out.astype(int) - to_levels(reference)).max() <= 1

    code, output = run("denoise", "--in", tmp_path / "d.png", "--out", tmp_path / "auto", "--weights", weights,
                       "--quiet")
    assert code == 0, output
    info = json.loads((tmp_path / "auto" / "report.json").read_text())["files"][0]["info"]
    assert info["sigma_estimated"] is True and info["sigma"] >= 0


# -- the user registry ------------------------------------------------------------------


def test_add_list_resolve_remove_and_a_changed_file_is_refused(tmp_path: Path, restore_home: Path) -> None:
    weights = tmp_path / "ffdnet_gray.pth"
    torch.save(kair_ffdnet_state_dict(1), weights)
    code, output = run("weights", "add", weights, "--name", "my-ffdnet")
    assert code == 0, output
    copied = restore_home / "models" / "my-ffdnet.pth"
    assert copied.is_file()
    code, output = run("weights", "list")
    assert code == 0 and "user models" in output and "my-ffdnet" in output and "FFDNet" in output
    assert output.index("shipped") < output.index("user models") < output.index("my-ffdnet")
    assert run("weights", "add", weights, "--name", "my-ffdnet")[0] == 2  # the name is taken

    write_image(tmp_path / "g.png", Image(photo(12, 12, channels=1)))
    code, output = run("denoise", "--in", tmp_path / "g.png", "--out", tmp_path / "out", "--weights", "my-ffdnet",
                       "--sigma", "10", "--quiet")
    assert code == 0, output
    code, output = run("superres", "--in", tmp_path / "g.png", "--out", tmp_path / "sr", "--weights", "my-ffdnet")
    assert code == 2 and "registered for denoise" in output

    copied.write_bytes(copied.read_bytes() + b"\0")
    code, output = run("denoise", "--in", tmp_path / "g.png", "--out", tmp_path / "out2", "--weights", "my-ffdnet")
    assert code == 2 and "sha256" in output and "changed" in output

    code, output = run("weights", "remove", "my-ffdnet")
    assert code == 0 and not copied.exists() and weights.is_file()
    assert "my-ffdnet" not in run("weights", "list")[1]


def test_linked_model_keeps_the_file_where_it_is(tmp_path: Path, restore_home: Path) -> None:
    weights = tmp_path / "drunet.pth"
    torch.save(drunet_network(1).state_dict(), weights)
    code, output = run("weights", "add", weights, "--name", "dr", "--link", "--task", "denoise")
    assert code == 0, output
    assert not (restore_home / "models").exists()
    code, output = run("weights", "inspect", "dr")
    assert code == 0 and "DRUNet" in output and "multiple of 8" in output
    assert run("weights", "remove", "dr")[0] == 0 and weights.is_file()


def test_add_refuses_a_task_the_model_does_not_fit(tmp_path: Path) -> None:
    weights = shared_model(REALESR)
    code, output = run("weights", "add", weights, "--name", "anime", "--task", "denoise")
    assert code == 2 and "restore superres" in output


# -- scoring and fine-tuning ------------------------------------------------------------


def compact_x2(path: Path, seed: int = 0) -> Path:
    """A small random Real-ESRGAN SRVGGNetCompact x2, saved as Real-ESRGAN does (``params``)."""
    from spandrel.architectures.Compact import Compact as SRVGGNetCompact

    torch.manual_seed(seed)
    network = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    torch.save({"params": network.state_dict()}, path)
    return path


def test_eval_superres_puts_several_models_and_baselines_in_one_table(tmp_path: Path) -> None:
    from restore.evaluate.superres import make_benchmark_set

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        write_image(photos / f"p{index}.png", Image(photo(24, 20, seed=index)))
    data = tmp_path / "set"
    make_benchmark_set(sorted(photos.iterdir()), data, [2])
    first, second = compact_x2(tmp_path / "first.pth", seed=1), compact_x2(tmp_path / "second.pth", seed=2)
    code, output = run("eval", "superres", "--data", data, "--scale", "2", "--weights", first, "--weights", second,
                       "--method", "bicubic", "--json", tmp_path / "table.json")
    assert code == 0, output
    header = next(line for line in output.splitlines() if line.startswith("image"))
    assert header.split() == ["image", "bicubic", "first", "second"]
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["settings"]["weights"] == [str(first), str(second)]


def fine_tune(tmp_path: Path, task: str, weights: Path, images: int, steps: int) -> Path:
    """``restore train TASK --init-weights WEIGHTS`` on ``images`` small photos; the run folder."""
    clean = tmp_path / "clean"
    clean.mkdir()
    for index in range(images):
        write_image(clean / f"{index}.png", Image(photo(32, 32, seed=10 + index)))
    code, output = run("train", task, "--data", clean, "--out", tmp_path / "run", "--init-weights", weights,
                       "--steps", str(steps), "--batch-size", "2", "--crop", "16", "--quiet")
    assert code == 0, output
    return tmp_path / "run"


def test_finetuned_community_model_is_rebuilt_without_the_original_file(tmp_path: Path) -> None:
    original = compact_x2(tmp_path / "compact.pth")
    fine_tune(tmp_path, "superres", original, images=4, steps=2)
    from safetensors.torch import load_file

    tuned = load_file(str(tmp_path / "run" / "last.safetensors"))
    started = torch.load(original, weights_only=True)["params"]
    assert set(tuned) == {f"model.{key}" for key in started}
    assert any(not torch.equal(tuned[f"model.{key}"], value) for key, value in started.items())  # it trained
    original.unlink()
    write_image(tmp_path / "a.png", Image(photo(10, 12)))
    code, output = run("superres", "--in", tmp_path / "a.png", "--out", tmp_path / "out", "--weights",
                       tmp_path / "run" / "last.safetensors", "--quiet")
    assert code == 0, output
    assert read_image(tmp_path / "out" / "a.png").pixels.shape == (20, 24, 3)


def test_finetuning_a_blind_grey_denoiser_trains_without_a_noise_map(tmp_path: Path) -> None:
    run_dir = fine_tune(tmp_path, "denoise", shared_model(DNCNN), images=2, steps=1)
    code, output = run("weights", "inspect", run_dir / "last.safetensors")
    assert code == 0 and "DnCNN" in output and "fine-tuned" in output and "in_channels: 1" in output


def test_lama_gets_the_mask_and_known_pixels_stay_bit_identical(tmp_path: Path) -> None:
    """A random LaMa (its published layout: ``model.model.*``, image + mask in) against
    spandrel's whole-image call; the image is no multiple of 8, LaMa's size requirement."""
    import spandrel
    from safetensors.torch import save_file
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    state = {key: value.contiguous() for key, value in LaMa(in_nc=4, out_nc=3).eval().state_dict().items()}
    weights = tmp_path / "big-lama.safetensors"
    save_file(state, str(weights))
    source = tmp_path / "in"
    source.mkdir()
    image = photo(30, 41, seed=11)
    hole = np.zeros((30, 41), dtype=bool)
    hole[10:20, 12:25] = True
    write_image(source / "a.png", Image(image))
    write_image(source / "a_mask.png", Image((hole * 255).astype(np.uint8)[:, :, None]))
    code, output = run("inpaint", "--in", source, "--out", tmp_path / "out", "--weights", weights,
                       "--tile", "0", "--precision", "fp32", "--quiet")
    assert code == 0, output
    out = read_image(tmp_path / "out" / "a.png").pixels
    assert np.array_equal(out[~hole], image[~hole])
    descriptor = spandrel.MAIN_REGISTRY.load(state).eval()
    with torch.inference_mode():
        reference = to_levels(descriptor(to_tensor(image), torch.from_numpy(hole[None, None].astype(np.float32))))
    assert np.abs(out.astype(int) - reference)[hole].max() <= 1

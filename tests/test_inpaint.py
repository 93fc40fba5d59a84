"""Inpainting: training pairs and masks, exact known pixels, tiling with the mask, the
`restore inpaint` folder command with every mask convention, and training."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import restore
from restore.cli import main
from restore.nets import build_network
from restore.tasks import get_task
from restore.tasks.inpaint import fill_holes
from restore.tasks.mask_generator import DEFAULT_MASK_KINDS, generate_mask
from restore.training import build_trainer, resolve_config
from restore.weights import WeightsError, save_weights

REPO = Path(__file__).resolve().parent.parent
RECIPES = [REPO / "weights" / "recipes" / f"{name}.toml" for name in ("inpaint-stage1", "inpaint-stage2", "inpaint")]
TINY_SPEC = {"arch": "unet", "in_channels": 3, "out_channels": 3, "extra_channels": 1, "base_channels": 4,
             "depth": 2, "max_channels": 8, "blocks_per_level": 1, "residual": False}


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A random tiny inpainting network saved as `restore train` saves one."""
    torch.manual_seed(0)
    path = tmp_path / "inpaint.safetensors"
    metadata = {"task": "inpaint", "network": TINY_SPEC, "task_options": {}}
    save_weights(path, build_network(TINY_SPEC).state_dict(), metadata)
    return path


# -- training pairs --------------------------------------------------------------------


def test_pair_zeroes_holes_adds_the_mask_and_weighs_holes() -> None:
    task = get_task("inpaint")
    options = {**task.default_config()["task_options"], "hole_weight": 6.0, "known_weight": 1.0}
    clean = torch.rand(3, 32, 32) + 0.1
    source, target, weight = task.make_pair(clean, options, torch.Generator().manual_seed(3))
    hole = source[3:]
    assert source.shape == (4, 32, 32) and torch.equal(target, clean)
    assert set(hole.unique().tolist()) == {0.0, 1.0}
    assert torch.all(source[:3][hole.expand(3, -1, -1) == 1] == 0)
    assert torch.equal(source[:3][hole.expand(3, -1, -1) == 0], clean[hole.expand(3, -1, -1) == 0])
    assert torch.equal(weight, 1.0 + 5.0 * hole)


def test_telea_fill_reads_only_known_pixels_and_keeps_them() -> None:
    clean = torch.full((3, 32, 32), 0.4)
    clean[:, :, 16:] = 0.8  # two flat halves; the hole lies inside the left one
    hole = torch.zeros(1, 32, 32)
    hole[:, 10:20, 4:10] = 1
    in_hole = hole.expand(3, -1, -1) == 1
    filled = fill_holes(clean, hole, "telea")
    assert torch.equal(filled[~in_hole], clean[~in_hole])
    assert torch.allclose(filled[:, 10:20, 4:10], torch.tensor(0.4), atol=2.5 / 255)  # Telea wobbles by 2 levels
    hidden = clean.clone()
    hidden[in_hole] = 1.0  # what is under the hole must not matter
    assert torch.equal(fill_holes(hidden, hole, "telea"), filled)
    # the training pair carries the same pre-fill, and its mask channel
    task = get_task("inpaint", {"fill": "telea"})
    source, _, _ = task.make_pair(clean, task.default_config()["task_options"], torch.Generator().manual_seed(1))
    assert torch.equal(source[:3], fill_holes(clean, source[3:], "telea"))


def zero_correction_weights(path: Path, task_options: dict) -> Path:
    """A residual tiny network whose correction is exactly 0: its output is its pre-filled input."""
    spec = {**TINY_SPEC, "residual": True}
    network = build_network(spec)
    for parameter in network.tail.parameters():
        parameter.data.zero_()
    save_weights(path, network.state_dict(), {"task": "inpaint", "network": spec, "task_options": task_options})
    return path


def test_model_fills_the_way_its_weights_say(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (0, 0), 2)
    hole = np.zeros((32, 32), bool)
    hole[8:20, 6:14] = True
    telea = restore.load(zero_correction_weights(tmp_path / "t.safetensors", {"fill": "telea"}),
                         device="cpu", precision="fp32", tile=0)
    holed = np.where(hole[:, :, None], 0, image).astype(np.uint8)
    expected = cv2.inpaint(holed, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    assert np.array_equal(telea(image, mask=hole), expected)
    zeros = restore.load(zero_correction_weights(tmp_path / "z.safetensors", {}), device="cpu", precision="fp32", tile=0)
    assert np.all(zeros(image, mask=hole)[hole] == 0)  # weights without the option: black holes, as trained


def test_unknown_fill_in_a_weights_file_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="unknown fill 'magic'"):
        restore.load(zero_correction_weights(tmp_path / "m.safetensors", {"fill": "magic"}), device="cpu")


def test_masks_are_a_pure_function_of_the_generator_and_obey_the_area_limits() -> None:
    options = {"hole_min": 0.01, "hole_max": 0.6}
    first = generate_mask(64, 64, options, torch.Generator().manual_seed(7))
    assert np.array_equal(first, generate_mask(64, 64, options, torch.Generator().manual_seed(7)))
    fractions = [generate_mask(64, 64, options, torch.Generator().manual_seed(seed)).mean() for seed in range(60)]
    assert all(0.01 <= fraction <= 0.6 for fraction in fractions)
    assert max(fractions) > 0.3 and min(fractions) < 0.1  # the range is really covered


def test_each_mask_kind_can_be_configured_alone() -> None:
    for kind in DEFAULT_MASK_KINDS:
        options = {"masks": {kind: DEFAULT_MASK_KINDS[kind]}, "hole_min": 0.0, "hole_max": 1.0}
        assert generate_mask(48, 48, options, torch.Generator().manual_seed(1)).any(), kind
    thin = {"masks": {"thin": DEFAULT_MASK_KINDS["thin"]}, "hole_min": 0.0, "hole_max": 1.0}
    thick = {"masks": {"thick": DEFAULT_MASK_KINDS["thick"]}, "hole_min": 0.0, "hole_max": 1.0}
    thin_area = np.mean([generate_mask(64, 64, thin, torch.Generator().manual_seed(s)).mean() for s in range(20)])
    thick_area = np.mean([generate_mask(64, 64, thick, torch.Generator().manual_seed(s)).mean() for s in range(20)])
    assert thick_area > 2 * thin_area


def test_impossible_area_falls_back_to_a_box_in_range() -> None:
    options = {"masks": {"thin": {**DEFAULT_MASK_KINDS["thin"], "strokes": [1, 1], "vertices": [1, 1]}},
               "hole_min": 0.4, "hole_max": 0.5}
    hole = generate_mask(40, 40, options, torch.Generator().manual_seed(0))
    assert 0.39 <= hole.mean() <= 0.51


def test_mask_recipe_typos_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        generate_mask(16, 16, {"masks": {"thin": {"widht": [1, 2]}}}, torch.Generator())
    with pytest.raises(ValueError, match="hole_min"):
        generate_mask(16, 16, {"hole_min": 0.7, "hole_max": 0.2}, torch.Generator())


# -- inference: known pixels, tiling ---------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_known_pixels_are_bit_identical(weights: Path, dtype: type) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((21, 30, 3)).astype(np.float32)
    if dtype is not np.float32:
        image = (image * np.iinfo(dtype).max).astype(dtype)
    hole = np.zeros((21, 30), bool)
    hole[5:12, 7:20] = True
    output = restore.load(weights, device="cpu")(image, mask=hole)
    assert output.dtype == image.dtype and output.shape == image.shape
    assert np.array_equal(output[~hole], image[~hole])
    assert not np.array_equal(output[hole], image[hole])  # the hole was filled


def test_grey_and_tensor_inputs_keep_known_pixels(weights: Path) -> None:
    model = restore.load(weights, device="cpu")
    grey = np.random.default_rng(1).integers(0, 65536, (16, 20), dtype=np.uint16)
    hole = np.zeros((16, 20), np.uint8)
    hole[4:9, 4:9] = 255
    output = model(grey, mask=hole)
    assert output.shape == grey.shape and np.array_equal(output[hole == 0], grey[hole == 0])
    tensor = torch.rand(3, 16, 20)
    filled = model(tensor, mask=hole)
    known = torch.from_numpy(hole == 0).expand(3, -1, -1)
    assert torch.equal(filled[known], tensor[known])


def test_missing_or_wrong_size_mask_is_a_clear_error(weights: Path) -> None:
    model = restore.load(weights, device="cpu")
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="needs a mask"):
        model(image)
    with pytest.raises(ValueError, match="mask is 9x8 but the image is 8x8"):
        model(image, mask=np.zeros((8, 9), bool))


def test_tiles_carry_the_mask(weights: Path) -> None:
    """Tiled inference tiles the mask channel with the image: the result equals the
    untiled one up to the blending near tile borders."""
    image = np.random.default_rng(2).random((70, 90, 3)).astype(np.float32)
    hole = np.zeros((70, 90), bool)
    hole[10:60, 20:80] = True
    whole = restore.load(weights, device="cpu")(image, mask=hole)
    tiled = restore.load(weights, device="cpu", tile=48, tile_overlap=16)(image, mask=hole)
    assert np.abs(whole - tiled).mean() < 2e-3
    assert np.array_equal(tiled[~hole], image[~hole])


# -- the folder command ------------------------------------------------------------------


def write(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), pixels)


def square(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[4:10, 4:12] = 255
    return mask


@pytest.fixture
def damaged(tmp_path: Path) -> tuple[Path, Path]:
    """A folder using every mask convention, plus an image without a mask and one whose
    mask has the wrong size; ``masks/`` mirrors it for ``--masks``."""
    rng = np.random.default_rng(0)
    root, masks = tmp_path / "damaged", tmp_path / "masks"
    photo = lambda: rng.integers(0, 200, (16, 20, 3), dtype=np.uint8)  # noqa: E731
    write(root / "dir" / "a.jpg", photo())
    write(masks / "dir" / "a.png", square(16, 20))
    write(root / "side.png", photo())
    write(root / "side_mask.png", square(16, 20))
    write(root / "lama.png", photo())
    write(root / "lama_mask000.png", square(16, 20))
    write(root / "lama_mask001.png", np.flipud(square(16, 20)))
    transparent = np.dstack([photo(), np.where(square(16, 20) > 0, 0, 255).astype(np.uint8)])
    write(root / "alpha.png", transparent)
    painted = photo()
    painted[square(16, 20) > 0] = (255, 0, 255)  # BGR magenta = RGB 255,0,255
    write(root / "paint.png", painted)
    write(root / "plain.png", photo())
    write(root / "wrong.png", photo())
    write(root / "wrong_mask.png", square(8, 8))
    return root, masks


def test_folder_with_every_mask_convention(damaged: tuple[Path, Path], weights: Path, tmp_path: Path) -> None:
    root, masks = damaged
    out = tmp_path / "fixed"
    result = CliRunner().invoke(main, ["inpaint", "--in", str(root), "--out", str(out), "--weights", str(weights),
                                       "--masks", str(masks), "--mask-color", "255,0,255", "--quiet"])
    assert result.exit_code == 1, result.output  # wrong.png failed, the others went on
    report = {Path(item["input"]).name: item for item in json.loads((out / "report.json").read_text())["files"]}
    assert set(report) == {"a.jpg", "side.png", "lama.png", "alpha.png", "paint.png", "plain.png", "wrong.png"}
    assert report["a.jpg"]["info"]["mask"].endswith("masks/dir/a.png")
    assert report["side.png"]["info"]["mask"].endswith("side_mask.png")
    assert "lama_mask000.png" in report["lama.png"]["info"]["mask"]
    assert "lama_mask001.png" in report["lama.png"]["info"]["mask"]
    assert report["alpha.png"]["info"]["mask"] == "alpha"
    assert report["paint.png"]["info"]["mask"].startswith("colour 255,0,255")
    assert report["wrong.png"]["status"] == "failed"
    assert "is 8x8 but the image is 20x16" in report["wrong.png"]["reason"]
    assert "wrong_mask.png" in result.output
    assert report["plain.png"]["status"] == "done" and "no mask" in report["plain.png"]["info"]["warning"]
    assert "warning:" in result.output and "plain.png" in result.output
    assert (out / "plain.png").read_bytes() != b""
    plain_in = cv2.imread(str(root / "plain.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(cv2.imread(str(out / "plain.png"), cv2.IMREAD_UNCHANGED), plain_in)

    hole = square(16, 20) > 0
    side_in = cv2.imread(str(root / "side.png"), cv2.IMREAD_UNCHANGED)
    side_out = cv2.imread(str(out / "side.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(side_out[~hole], side_in[~hole]) and not np.array_equal(side_out[hole], side_in[hole])
    alpha_out = cv2.imread(str(out / "alpha.png"), cv2.IMREAD_UNCHANGED)
    assert alpha_out.shape == (16, 20, 4) and (alpha_out[:, :, 3] == 255).all()  # filled, so opaque
    assert not list(out.rglob("*_mask*.png"))  # sidecars were never inputs


def test_masks_folder_inside_input_is_not_processed(
    damaged: tuple[Path, Path], weights: Path, tmp_path: Path
) -> None:
    root, masks = damaged
    masks.rename(root / "masks")
    out = tmp_path / "fixed"
    result = CliRunner().invoke(main, ["inpaint", "--in", str(root), "--out", str(out), "--weights", str(weights),
                                       "--masks", str(root / "masks"), "--quiet"])
    inputs = [item["input"] for item in json.loads((out / "report.json").read_text())["files"]]
    assert not any("/masks/" in name for name in inputs), result.output
    assert len(inputs) == 7


def test_single_file_input_finds_its_mask_in_the_masks_folder(
    damaged: tuple[Path, Path], weights: Path, tmp_path: Path
) -> None:
    root, masks = damaged
    write(masks / "side.png", square(16, 20))  # --masks wins over the side_mask.png sidecar
    out = tmp_path / "one"
    result = CliRunner().invoke(main, ["inpaint", "--in", str(root / "side.png"), "--out", str(out),
                                       "--weights", str(weights), "--masks", str(masks), "--quiet"])
    assert result.exit_code == 0, result.output
    (item,) = json.loads((out / "report.json").read_text())["files"]
    assert item["info"]["mask"].endswith("masks/side.png")


def test_bad_mask_colour_is_a_usage_error(damaged: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = damaged
    arguments = ["inpaint", "--in", str(root), "--out", str(tmp_path / "o"), "--mask-color", "red"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2 and "R,G,B" in result.output


# -- training ---------------------------------------------------------------------------


def test_inpaint_trains_with_the_gan_and_resumes(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    """The shared paired objective with the hole-weighted L1, PatchGAN and feature matching."""
    config = tiny_config("inpaint", clean_images, steps=3,
                         discriminator={"arch": "patch", "in_channels": 6, "base_channels": 4, "n_layers": 2})
    assert config.loss.adversarial_weight > 0 and config.loss.feature_matching_weight > 0
    trainer = build_trainer(config, tmp_path / "run", progress=False)
    trainer.fit()
    assert (tmp_path / "run" / "best.safetensors").is_file()
    model = restore.load(tmp_path / "run" / "best.safetensors", device="cpu")
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    hole = np.zeros((16, 16), bool)
    hole[2:6, 2:6] = True
    assert np.array_equal(model(image, mask=hole)[~hole], image[~hole])
    resumed = build_trainer(dataclasses.replace(config, steps=4), tmp_path / "run", resume=True, progress=False)
    resumed.fit()
    assert resumed.step == 4


def test_hole_weight_changes_the_loss(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    """The per-pixel weight reaches the loss: weighing holes differently changes training."""
    results = []
    for hole_weight in (1.0, 20.0):
        config = tiny_config("inpaint", clean_images, steps=2, loss={"adversarial_weight": 0.0},
                             task_options={"hole_weight": hole_weight})
        trainer = build_trainer(config, tmp_path / f"run{hole_weight}", progress=False)
        trainer.fit()
        results.append(torch.cat([p.detach().flatten() for p in trainer.objective.networks["G"].parameters()]))
    assert not torch.equal(results[0], results[1])


@pytest.mark.parametrize("recipe_path", RECIPES, ids=lambda path: path.stem)
def test_recipe_parses_and_runs_three_tiny_steps(recipe_path: Path, clean_images: Path, tmp_path: Path) -> None:
    """Each stage's recipe, at toy size: stages 2 and 3 start from the previous stage's
    12 M-parameter weights, which cannot fit the toy network, so they start from random
    weights here."""
    with open(recipe_path, "rb") as handle:
        recipe = tomllib.load(handle)
    assert recipe["task"] == "inpaint"
    overrides = {"steps": 3, "device": "cpu", "precision": "fp32", "init_weights": "",
                 "data": {"train": [str(clean_images)], "crop": 32, "batch_size": 2, "workers": 0, "val_holdout": 2},
                 "generator": {"base_channels": 4, "max_channels": 8},
                 "discriminator": {"base_channels": 4, "n_layers": 2},
                 "log": {"val_every": 3, "checkpoint_every": 3, "sample_every": 0, "tensorboard": False}}
    config = resolve_config("inpaint", str(recipe_path), overrides)
    assert config.generator["depth"] == recipe["generator"]["depth"]
    assert config.task_options["masks"].keys() == recipe["task_options"]["masks"].keys()
    trainer = build_trainer(config, tmp_path / "run", progress=False)
    metrics = trainer.fit()
    assert trainer.step == 3 and "psnr" in metrics

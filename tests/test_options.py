"""Options are typed: each entry point divides its keywords among the layers that declare
them, refuses a misspelt or misplaced one by name, and hands the rest to the task."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import cv2
import numpy as np
import pytest
import torch

import restore
from restore.api import ProcessorOptions, TaskProcessor
from restore.engine.batch import BatchSettings
from restore.engine.cluster import ClusterSettings
from restore.io.image import Image
from restore.io.limits import MAX_PIXELS, MAX_VOXELS
from restore.model import RestorerSettings
from restore.schema import split_options
from restore.tasks import TASKS, task_class
from restore.tasks.base import TaskOptions
from restore.tasks.denoise import DenoiseOptions
from restore.volumes import ScanBatchSettings, ScanOptions, process_scans
from tiny_weights import write_tiny_denoise_weights, write_tiny_superres_weights


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "a.png"), pixels)
    return folder


@pytest.fixture()
def denoiser(tmp_path: Path) -> str:
    return str(write_tiny_denoise_weights(tmp_path / "tiny.safetensors"))


@pytest.mark.parametrize(("option", "named", "suggested"), [
    ({"sigmaa": 25}, "sigmaa", "sigma"),  # a typo of the task's option
    ({"overwrit": True}, "overwrit", "overwrite"),  # of a batch setting
    ({"devcie": "cpu"}, "devcie", "device"),  # of a model setting
    ({"outscale": 2.0}, "outscale", None),  # super-resolution's, misplaced on denoising
    ({"max_voxels": 10}, "max_voxels", None),  # the scans', misplaced on images
])
def test_process_folder_refuses_an_unknown_option_by_name(
    photos: Path, denoiser: str, tmp_path: Path, option: dict, named: str, suggested: str | None
) -> None:
    with pytest.raises(TypeError, match=f"'{named}'") as error:
        restore.process_folder("denoise", photos, tmp_path / "out", weights=denoiser, **option)
    assert str(error.value).startswith("process_folder('denoise')")
    if suggested:
        assert f"did you mean '{suggested}'?" in str(error.value)
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_an_option_with_no_close_name_lists_the_known_ones(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown option 'zzz'; known: .*alpha.*sigma.*workers"):
        restore.process_folder("denoise", photos, tmp_path / "out", zzz=1)


def test_task_processor_and_restorer_refuse_unknown_options(denoiser: str) -> None:
    with pytest.raises(TypeError, match="denoise: unknown option 'sigmaa'; did you mean 'sigma'"):
        TaskProcessor("denoise", weights=denoiser, sigmaa=25)
    model = restore.load(denoiser, device="cpu")
    image = np.zeros((8, 8, 3), np.uint8)
    for call in (lambda: model(image, sigmaa=25), lambda: model(torch.zeros(3, 8, 8), sigmaa=25),
                 lambda: model.restore_array(image, sigmaa=25), lambda: model.run(torch.zeros(1, 3, 8, 8), sigmaa=25)):
        with pytest.raises(TypeError, match="'sigmaa'; did you mean 'sigma'"):
            call()
    with pytest.raises(TypeError, match="'mask'"):  # inpainting's option, misplaced on denoising
        model(image, mask=np.ones((8, 8), bool))
    with pytest.raises(TypeError, match="load: unknown option 'devcie'; did you mean 'device'"):
        restore.load(denoiser, devcie="cpu")


def test_process_scans_refuses_unknown_and_image_only_options(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(TypeError, match="'strenght'; did you mean 'strength'"):
        process_scans("denoise", tmp_path / "in", tmp_path / "out", modality="ct", strenght=0.5)
    for misplaced in ({"ext": "png"}, {"max_pixels": 10}, {"sigma": 25}):
        with pytest.raises(TypeError, match=f"process_scans\\('denoise'\\): unknown option '{next(iter(misplaced))}'"):
            process_scans("denoise", tmp_path / "in", tmp_path / "out", modality="ct", **misplaced)


def test_numpy_sigma_reaches_the_task_and_report_as_a_number(photos: Path, denoiser: str, tmp_path: Path) -> None:
    plain = restore.process_folder("denoise", photos, tmp_path / "plain", weights=denoiser, device="cpu", sigma=25,
                                   quiet=True)
    numpy = restore.process_folder("denoise", photos, tmp_path / "numpy", weights=denoiser, device="cpu",
                                   sigma=np.float32(25), quiet=True)
    assert plain.exit_code == numpy.exit_code == 0
    report = json.loads((tmp_path / "numpy" / "report.json").read_text())
    (outcome,) = report["files"]
    assert outcome["info"]["sigma"] == 25.0 and outcome["info"]["sigma_estimated"] is False
    assert report["settings"]["sigma"] == 25.0  # a number, so a rerun with sigma=25 compares equal
    assert (tmp_path / "numpy" / "a.png").read_bytes() == (tmp_path / "plain" / "a.png").read_bytes()
    again = restore.process_folder("denoise", photos, tmp_path / "numpy", weights=denoiser, device="cpu", sigma=25,
                                   quiet=True)
    assert again.count("skipped") == 1  # the same settings: resumed, not refused


def test_each_option_reaches_its_layer(photos: Path, tmp_path: Path) -> None:
    weights = str(write_tiny_superres_weights(tmp_path / "x2.safetensors", scale=2))
    seen = []
    processor = TaskProcessor("superres", weights=weights, device="cpu", tile=0, outscale=3.0, alpha="model")
    task = processor.model_for(3).task  # the weights' task, which runs the image
    original = task.postprocess
    task.postprocess = lambda output, image, options: seen.append(options) or original(output, image, options)
    report = restore.process_folder("superres", photos, tmp_path / "out", weights=weights, device="cpu", tile=0,
                                    outscale=3.0, suffix="_big", quiet=True)
    assert report.exit_code == 0
    assert cv2.imread(str(tmp_path / "out" / "a_big.png")).shape == (48, 48, 3)  # outscale reached the task
    assert processor.restorer_settings == RestorerSettings(device="cpu", tile=0)
    assert processor.processor_options == ProcessorOptions(weights=weights, alpha="model")
    assert processor.options.outscale == 3.0 and processor.options.max_pixels == MAX_PIXELS
    image = Image(np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 255, np.uint8))
    output, _ = processor(image)
    assert output.pixels.shape == (24, 24, 3) and output.alpha.shape == (24, 24)
    assert [options.outscale for options in seen] == [3.0, 3.0]  # the image, then its alpha through the network


def test_max_pixels_goes_to_the_batch_and_to_the_tasks_that_read_it() -> None:
    batch, processor, restorer, own = split_options(
        {"max_pixels": 7, "sigma": 3}, BatchSettings, ProcessorOptions, RestorerSettings, DenoiseOptions, where="x")
    assert batch == {"max_pixels": 7} and own == {"sigma": 3} and processor == restorer == {}
    _, inpaint = split_options({"max_pixels": 7}, BatchSettings, task_class("inpaint").options_type, where="x")
    assert inpaint == {"max_pixels": 7}


def test_every_task_declares_frozen_run_options() -> None:
    for name in TASKS:
        options_type = task_class(name).options_type
        assert issubclass(options_type, TaskOptions) and dataclasses.is_dataclass(options_type)
        with pytest.raises(dataclasses.FrozenInstanceError):
            options_type().max_pixels = 1  # type: ignore[misc]


def _parameters(command: click.Command) -> set[str]:
    return {parameter.name for parameter in command.params if parameter.name is not None}


@pytest.mark.parametrize("task", ["denoise", "superres", "inpaint", "style"])
def test_every_task_command_option_belongs_to_a_layer(task: str) -> None:
    """The CLI hands its options to process_folder by name: each must be declared there."""
    from restore.cli import tasks

    # direction picks the weights; report_format is the CLI's own (the page written after the batch)
    given = _parameters(getattr(tasks, task)) - {"source", "destination", "direction", "report_format"}
    layers = (BatchSettings, ClusterSettings, ProcessorOptions, RestorerSettings, task_class(task).options_type)
    split_options(dict.fromkeys(given), *layers, where=task)


@pytest.mark.parametrize("command", ["denoise", "superres"])
def test_every_medical_command_option_belongs_to_a_layer(command: str) -> None:
    from restore.cli.medical import medical

    given = _parameters(medical.commands[command]) - {"source", "destination", "modality", "scale", "report_format"}
    split_options(dict.fromkeys(given), ScanBatchSettings, ClusterSettings, ScanOptions, RestorerSettings,
                  where=command)


def test_the_size_limits_have_one_definition() -> None:
    from restore.cli.medical import medical
    from restore.cli.tasks import denoise
    from restore.io.image import read_image
    from restore.io.medical import read_volume
    from restore.tasks.masks import MaskOptions, read_mask

    defaults = {parameter.name: parameter.default for parameter in denoise.params}
    assert defaults["max_pixels"] == BatchSettings().max_pixels == MaskOptions().max_pixels == MAX_PIXELS
    assert read_image.__defaults__ == (MAX_PIXELS,) and read_mask.__defaults__ == (MAX_PIXELS,)
    scan_defaults = {parameter.name: parameter.default for parameter in medical.commands["denoise"].params}
    assert scan_defaults["max_voxels"] == ScanBatchSettings().max_voxels == read_volume.__defaults__[-1] == MAX_VOXELS

"""Nothing is lost under faults: kill -9 of a batch or a training run, a checkpoint write
that dies half-way, a folder full of bad inputs, and weights files that would run code.

The kill tests run the real command in a subprocess and SIGKILL it while it works; the
rest run in-process on tiny images and a tiny (untrained) network."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import pytest
import tifffile
import torch
from click.testing import CliRunner

import restore
from restore.api import process_folder
from restore.cli import main
from restore.engine import checkpoint
from restore.engine.checkpoint import load_training_state
from restore.engine.config import from_dict, load_toml, to_toml
from restore.io.image import read_image
from restore.nets import build_network
from restore.training import build_trainer
from restore.weights import WeightsError, load_weights, save_weights
from test_batch import dead_pid, write_distinct_images
from test_train import logged_scalars
from tiny_weights import tiny_denoise_spec, write_tiny_denoise_weights, write_tiny_superres_weights

KILL_TIMEOUT = 120.0  # seconds a subprocess may take to reach the point where it is killed


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "restore", *args]


def quiet_env() -> dict[str, str]:
    """One thread, as in-process (conftest), so results match to the bit."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def kill_when(process: subprocess.Popen, ready: Callable[[], bool]) -> None:
    """SIGKILL ``process`` as soon as ``ready()``; fails if it ended before that."""
    deadline = time.monotonic() + KILL_TIMEOUT
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before it could be killed mid-way")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the run never reached the point where it should be killed")
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def all_files(folder: Path) -> set[str]:
    """Every file under ``folder``, hidden ones (temp files) included, as relative paths."""
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir()}


# -- kill -9 of a batch run ---------------------------------------------------------------


def write_photos(folder: Path, count: int, size: int) -> list[str]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    names = []
    for index in range(count):
        smooth = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 3.0)
        noisy = np.clip(smooth * 255 + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)
        names.append(f"{index:03d}.png")
        cv2.imwrite(str(folder / names[-1]), noisy)
    return names


def test_killed_batch_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    names = write_photos(tmp_path / "in", count=60, size=96)
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    args = command("denoise", "--in", str(tmp_path / "in"), "--out", str(out), "--weights", str(weights),
                   "--sigma", "25", "--workers", "1", "--quiet")
    first = subprocess.Popen(args, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(first, lambda: len(list(out.glob("[0-9]*.png"))) >= 3)
    finished = {path.name for path in out.glob("[0-9]*.png")}
    assert 3 <= len(finished) < len(names)
    assert json.loads((out / "report.json").read_text())["complete"] is False  # the one written at the start

    other = subprocess.run([*args, "--sigma", "15"], env=quiet_env(), capture_output=True, text=True,
                           timeout=KILL_TIMEOUT, check=False)  # the killed run's settings are known
    assert other.returncode == 2 and "sigma: 25.0 -> 15.0" in other.stderr, other.stderr
    assert {path.name for path in out.glob("[0-9]*.png")} == finished

    second = subprocess.run(args, env=quiet_env(), capture_output=True, text=True, timeout=KILL_TIMEOUT, check=False)
    assert second.returncode == 0, second.stderr
    report = json.loads((out / "report.json").read_text())
    assert [Path(item["input"]).name for item in report["files"]] == names  # each input once
    assert report["summary"] == {"done": len(names) - len(finished), "skipped": len(finished), "failed": 0}
    assert all_files(out) == {*names, "report.json"}  # each output once, no temp files

    reference = process_folder("denoise", tmp_path / "in", tmp_path / "reference", weights=str(weights),
                               sigma=25.0, quiet=True)
    assert reference.exit_code == 0
    for name in names:
        np.testing.assert_array_equal(read_image(out / name).pixels, read_image(tmp_path / "reference" / name).pixels,
                                      err_msg=name)


def temp_files(folder: Path) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(folder) if entry.name.endswith(".tmp")]
    except FileNotFoundError:
        return []


def test_two_runs_on_one_out_both_finish(tmp_path: Path) -> None:
    """A second run starting while the first is writing an output: its start-up clean-up
    must leave the first run's temp file alone. The first run is frozen (SIGSTOP) while it
    holds one, the second runs to the end, then the first goes on: both exit 0."""
    names = write_photos(tmp_path / "in", count=4, size=1024)  # big outputs: their writes take a while
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    args = command("denoise", "--in", str(tmp_path / "in"), "--out", str(out), "--weights", str(weights),
                   "--sigma", "25", "--workers", "1", "--quiet")
    first = subprocess.Popen(args, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + KILL_TIMEOUT
        while True:
            if first.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the first run never held a temp file in --out long enough to be frozen")
            if temp_files(out):
                first.send_signal(signal.SIGSTOP)
                if temp_files(out):
                    break
                first.send_signal(signal.SIGCONT)
        second = subprocess.run(args, env=quiet_env(), capture_output=True, text=True, timeout=KILL_TIMEOUT,
                                check=False)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 0, second.stderr
    assert first.wait(timeout=KILL_TIMEOUT) == 0, first.stderr.read()
    assert all_files(out) == {*names, "report.json"}  # every output once, no temp file left
    for name in names:
        assert read_image(out / name).pixels.shape == (1024, 1024, 3), name


# -- kill -9 of a training run ------------------------------------------------------------


def checkpoint_step(run: Path) -> int:
    """The step in ``run/last.pt`` (atomic, so it is either absent or complete), or -1."""
    return load_training_state(run / "last.pt")["step"] if (run / "last.pt").is_file() else -1


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    config = tiny_config("denoise", clean_images, steps=120, data={"crop": 32, "batch_size": 4},
                         log={"checkpoint_every": 4, "val_every": 8, "sample_every": 0, "log_every": 4})
    (tmp_path / "tiny.toml").write_text(to_toml(config))
    run = tmp_path / "run"
    training = subprocess.Popen(command("train", "denoise", "--config", str(tmp_path / "tiny.toml"),
                                        "--out", str(run), "--quiet"),
                                env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(training, lambda: checkpoint_step(run) >= 8)
    killed_at = checkpoint_step(run)
    assert 8 <= killed_at < config.steps and killed_at % 4 == 0
    saved = from_dict(load_toml(run / "config.toml"))
    assert build_trainer(saved, run, resume=True, progress=False).step == killed_at  # where --resume starts

    # as documented: no --steps, so the run's own step count (not the default 10000)
    resumed = subprocess.run(command("train", "denoise", "--out", str(run), "--resume", "--quiet"),
                             env=quiet_env(), capture_output=True, text=True, timeout=KILL_TIMEOUT, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"trained {config.steps} steps" in resumed.stdout

    straight = build_trainer(saved, tmp_path / "straight", progress=False)
    straight.fit()
    final, expected = load_training_state(run / "last.pt"), load_training_state(tmp_path / "straight" / "last.pt")
    assert final["step"] == expected["step"] == config.steps
    for name, tensor in expected["networks"]["G"].items():
        assert torch.equal(final["networks"]["G"][name], tensor), name
    for file_name in ("last.safetensors", "best.safetensors"):
        resumed_weights = load_weights(run / file_name)[0]
        straight_weights = load_weights(tmp_path / "straight" / file_name)[0]
        assert all(torch.equal(resumed_weights[key], straight_weights[key]) for key in straight_weights), file_name
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(8, config.steps + 1, 8))  # each validation logged once
    assert not [path for path in run.rglob("*.tmp")]


class HalfWrittenCheckpoint(Exception):
    """Stands for the process dying while a checkpoint is being written."""


def test_failed_checkpoint_write_keeps_the_previous_one(
    clean_images: Path, tmp_path: Path, tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    config = tiny_config("denoise", clean_images, steps=4,
                         log={"checkpoint_every": 2, "val_every": 0, "sample_every": 0})
    build_trainer(config, run, progress=False).fit()
    before = load_training_state(run / "last.pt")
    real_save = torch.save

    def save_half_then_die(state: dict, path: Path) -> None:
        real_save(state, path)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise HalfWrittenCheckpoint

    monkeypatch.setattr(checkpoint.torch, "save", save_half_then_die)
    with pytest.raises(HalfWrittenCheckpoint):
        build_trainer(dataclasses.replace(config, steps=8), run, resume=True, progress=False).fit()
    monkeypatch.undo()
    after = load_training_state(run / "last.pt")
    assert after["step"] == before["step"] == 4
    for name, tensor in before["networks"]["G"].items():
        assert torch.equal(after["networks"]["G"][name], tensor)
    assert not [path for path in run.iterdir() if path.name.endswith(".tmp")]  # the failed write cleaned up
    resumed = build_trainer(dataclasses.replace(config, steps=8), run, resume=True, progress=False)
    assert resumed.step == 4
    resumed.fit()
    assert load_training_state(run / "last.pt")["step"] == 8


def test_resume_discards_what_a_killed_run_left_past_its_checkpoint(
    clean_images: Path, tmp_path: Path, tiny_config
) -> None:
    """Rebuilds what a kill leaves: the checkpoint of step 4, validation lines and
    TensorBoard events up to step 8 (logged before their checkpoint was written), a line
    cut short, and the temp file of a write that never finished."""
    run = tmp_path / "run"
    config = tiny_config("denoise", clean_images, steps=4,
                         log={"checkpoint_every": 4, "val_every": 2, "log_every": 2, "sample_every": 0})
    build_trainer(config, run, progress=False).fit()
    checkpoint_of_step_4 = (run / "last.pt").read_bytes()
    build_trainer(dataclasses.replace(config, steps=8), run, resume=True, progress=False).fit()
    (run / "last.pt").write_bytes(checkpoint_of_step_4)
    (run / f".restore-tmp-{dead_pid()}-k1ll3d00.tmp").write_bytes(checkpoint_of_step_4[:100])
    with open(run / "metrics.jsonl", "a") as log:
        log.write('{"step": 10, "ps')

    build_trainer(dataclasses.replace(config, steps=8), run, resume=True, progress=False).fit()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4, 6, 8]  # one line per validation
    assert logged_scalars(run / "tensorboard", "loss/G") == [2, 4, 6, 8]
    assert not list(run.rglob("*.tmp"))


KILL_DURING_SAVE = """
import os, signal, sys
from pathlib import Path
import torch
from restore.engine import checkpoint

real_save = torch.save
def save_half_then_die(state, path):
    real_save(state, path)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)

checkpoint.torch.save = save_half_then_die
checkpoint.save_training_state(sys.argv[1], {"step": 2, "weights": torch.ones(1000)})
"""


def test_checkpoint_killed_while_written_never_replaces_the_good_one(tmp_path: Path) -> None:
    good = tmp_path / "last.pt"
    checkpoint.save_training_state(good, {"step": 1, "weights": torch.zeros(1000)})
    killed = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, str(good)], env=quiet_env(), timeout=KILL_TIMEOUT,
                            check=False)
    assert killed.returncode == -signal.SIGKILL
    leftovers = [path for path in tmp_path.iterdir() if path.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".restore-tmp-")  # the half-written file
    state = load_training_state(good)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.zeros(1000))


def test_resuming_from_a_damaged_checkpoint_says_so(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    """last.pt is written atomically, so only damage from outside (a disk, a copy) does this."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(to_toml(tiny_config("denoise", clean_images, steps=2)))
    run = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", "denoise", "--config", str(recipe), "--out", str(run), "--quiet"])
    assert trained.exit_code == 0, trained.output
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(main, ["train", "denoise", "--out", str(run), "--resume", "--quiet"])
    assert result.exit_code == 2, result.output
    assert "cannot read this training state" in result.output and "damaged" in result.output


def test_training_into_an_earlier_run_is_refused_unless_overwrite(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(to_toml(tiny_config("denoise", clean_images, steps=2)))
    run = tmp_path / "run"
    train = ["train", "denoise", "--config", str(recipe), "--out", str(run), "--quiet"]
    assert CliRunner().invoke(main, train).exit_code == 0
    (run / "notes.txt").write_text("mine")
    before = {name: (run / name).read_bytes() for name in ("best.safetensors", "last.pt", "config.toml", "metrics.jsonl")}

    refused = CliRunner().invoke(main, [*train, "--steps", "4"])
    assert refused.exit_code == 2, refused.output
    assert "--resume" in refused.output and "fresh --out" in refused.output and "--overwrite" in refused.output
    assert {name: (run / name).read_bytes() for name in before} == before
    both = CliRunner().invoke(main, [*train, "--resume", "--overwrite"])
    assert both.exit_code == 2 and "choose one" in both.output

    replaced = CliRunner().invoke(main, [*train, "--steps", "4", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4]  # the new run's validation only, not mixed with the old run's
    assert load_training_state(run / "last.pt")["step"] == 4
    assert (run / "notes.txt").read_text() == "mine"  # not a file training writes


@pytest.mark.parametrize("recipe, message", [
    ('steps = "forty"', "steps must be a whole number, not 'forty'"),
    ('[optim]\nlr_g = "fast"', "optim.lr_g must be a number, not 'fast'"),
    ("[data]\ncrop = -16", "data.crop must be 0 or more, not -16"),
    ("[data]\ncrop = 4", "data.crop must be at least 8, not 4"),
    ('[data]\ntrain = "folder"', 'data.train must be a list of text items, e.g. ["folder"], not \'folder\''),
    ('generator = "unet"', "generator must be a table, not 'unet'"),
    ("[generator]\ndepth = 2.5", "unet: depth must be a whole number, not 2.5"),
])
def test_recipe_values_of_the_wrong_type_are_named(tmp_path: Path, recipe: str, message: str) -> None:
    (tmp_path / "recipe.toml").write_text(recipe + "\n")
    result = CliRunner().invoke(main, ["train", "denoise", "--config", str(tmp_path / "recipe.toml"),
                                       "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_unreadable_training_images_are_skipped_with_a_warning(clean_images: Path, tmp_path: Path, tiny_config) -> None:
    good = (clean_images / "000.png").read_bytes()
    (clean_images / "003.png").write_bytes(good[:80])  # truncated
    (clean_images / "005.png").write_text("not an image")
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(to_toml(tiny_config("denoise", clean_images, steps=2)))
    result = CliRunner().invoke(main, ["train", "denoise", "--config", str(recipe), "--out", str(tmp_path / "run"),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 2 and "003.png" in warnings[0] and "005.png" in warnings[1]
    assert "trained 2 steps" in result.output

    for path in clean_images.iterdir():
        path.write_bytes(good[:80])
    result = CliRunner().invoke(main, ["train", "denoise", "--config", str(recipe), "--out", str(tmp_path / "again"),
                                       "--quiet"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "none of the 6 training files" in result.output  # 2 of the 8 are held out for validation


def test_images_smaller_than_the_crop_and_the_network_train(tmp_path: Path, tiny_config) -> None:
    """3x5 images: smaller than the 16-pixel crop, and than the 4-pixel multiple the tiny
    U-Net needs, which validation crops to."""
    data = write_small_images(tmp_path / "small")
    config = tiny_config("denoise", data, steps=2)
    trainer = build_trainer(config, tmp_path / "run", progress=False)
    metrics = trainer.fit()
    assert trainer.step == 2 and np.isfinite(metrics["psnr"])


def write_small_images(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        cv2.imwrite(str(folder / f"{index}.png"), rng.integers(0, 256, (3, 5, 3), dtype=np.uint8))
    return folder


# -- a folder of bad inputs ---------------------------------------------------------------


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR claims ``width`` x ``height`` (a decompression bomb)."""
    data = bytearray(cv2.imencode(".png", np.zeros((2, 2, 3), np.uint8))[1].tobytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_with_scans(pixels: np.ndarray, scans: int) -> bytes:
    """A progressive JPEG of ``pixels`` with ``scans`` scans: Pillow's own (about 10), its
    smallest scan repeated to make up the count (decoders warn and decode every one)."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    starts = [index for index in range(len(data) - 1) if data[index : index + 2] == b"\xff\xda"]
    ends = [*starts[1:], data.rindex(b"\xff\xd9")]
    start, end = min(zip(starts, ends), key=lambda scan: scan[1] - scan[0])
    extra = scans - len(starts)
    return data[:end] + data[start:end] * extra + data[end:]


# bad input -> a word its reason must contain, and no other bad input's reason
BAD_INPUTS = {
    "truncated.png": "truncated PNG",
    "truncated.jpg": "truncated JPEG",
    "zero_bytes.png": "empty",
    "text.png": "unrecognised content",
    "animated.gif": "animated",
    "bomb.png": "50000x50000",
    "loop_a.png": "symbolic links",
    "loop_b.png": "symbolic links",
    "notes.txt": "extension",
    "pipe.png": "named pipe",  # reading it would wait forever for a writer
    "device.png": "character device",  # /dev/zero: reading it would never end
    "nan.tif": "NaN",  # float samples: one NaN would make the whole output NaN
    "many_scans.jpg": "1000 scans",  # each scan is decoded over the whole image: minutes for a small file
}


@pytest.fixture
def bad_and_good(tmp_path: Path) -> Path:
    """Every bad input of BAD_INPUTS next to unusual but valid ones."""
    root = tmp_path / "in"
    root.mkdir()
    rng = np.random.default_rng(3)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8), (0, 0), 2)
    png = cv2.imencode(".png", rgb)[1].tobytes()
    (root / "rgb.png").write_bytes(png)
    big = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # big enough to cut inside the pixel data
    for extension in (".png", ".jpg"):
        encoded = cv2.imencode(extension, big)[1].tobytes()
        (root / f"truncated{extension}").write_bytes(encoded[: len(encoded) // 2])
    (root / "zero_bytes.png").write_bytes(b"")
    (root / "text.png").write_text("a shopping list, not pixels\n")
    (root / "notes.txt").write_text("not an image either\n")
    frames = [PIL.Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).quantize(8) for _ in range(3)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    (root / "bomb.png").write_bytes(png_claiming_size(50000, 50000))
    os.symlink("loop_b.png", root / "loop_a.png")
    os.symlink("loop_a.png", root / "loop_b.png")
    os.mkfifo(root / "pipe.png")
    os.symlink("/dev/zero", root / "device.png")
    with_nan = rng.random((8, 8, 3), dtype=np.float32)
    with_nan[2, 3, 0] = np.nan
    tifffile.imwrite(root / "nan.tif", with_nan)
    (root / "many_scans.jpg").write_bytes(jpeg_with_scans(rgb, 1000))
    # valid inputs in unusual forms
    PIL.Image.fromarray(rgb[:1, :1]).save(root / "one_pixel.png")
    rgba16 = rng.integers(0, 65536, (12, 10, 4), dtype=np.uint16)
    tifffile.imwrite(root / "rgba16.tif", rgba16, photometric="rgb", extrasamples=["unassalpha"])
    PIL.Image.fromarray(rgb).convert("CMYK").save(root / "cmyk.jpg")
    PIL.Image.fromarray(rgb).quantize(16).save(root / "palette.png")
    PIL.Image.fromarray(rgb).quantize(16).save(root / "still.gif")
    return root


GOOD_OUTPUTS = {  # output -> (shape, dtype) as written
    "rgb.png": ((24, 20, 3), np.uint8),
    "one_pixel.png": ((1, 1, 3), np.uint8),
    "rgba16.tif": ((12, 10, 3), np.uint16),
    "cmyk.jpg": ((24, 20, 3), np.uint8),
    "palette.png": ((24, 20, 3), np.uint8),
    "still.png": ((24, 20, 3), np.uint8),  # GIF is not writable: PNG instead
}


def test_bad_inputs_each_get_their_own_reason_and_good_ones_are_processed(bad_and_good: Path, tmp_path: Path) -> None:
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["denoise", "--in", str(bad_and_good), "--out", str(out),
                                       "--weights", str(weights), "--quiet"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    report = {Path(item["input"]).name: item for item in json.loads((out / "report.json").read_text())["files"]}
    failed = {name: item["reason"] for name, item in report.items() if item["status"] == "failed"}
    assert set(failed) == set(BAD_INPUTS)
    for name, word in BAD_INPUTS.items():
        assert word in failed[name], (name, failed[name])
        others = [other for other in BAD_INPUTS if BAD_INPUTS[other] != word]
        assert not any(word in failed[other] for other in others), word
        assert name in result.output  # named on the terminal too
    for name, (shape, dtype) in GOOD_OUTPUTS.items():
        written = read_image(out / name)
        assert written.pixels.shape == shape and written.pixels.dtype == dtype, name
    assert read_image(out / "rgba16.tif").alpha is not None  # alpha carried through
    assert all_files(out) == {*GOOD_OUTPUTS, "report.json"}


def write_tiny_inpaint_weights(path: Path) -> Path:
    spec = {**tiny_denoise_spec(), "residual": False}
    save_weights(path, build_network(spec).state_dict(), {"task": "inpaint", "network": spec, "task_options": {}})
    return path


def test_bad_masks_fail_only_their_image(bad_and_good: Path, tmp_path: Path) -> None:
    """The same folder through ``restore inpaint``, which also reads a mask per image."""
    weights = write_tiny_inpaint_weights(tmp_path / "inpaint.safetensors")
    hole = np.zeros((24, 20), np.uint8)
    hole[5:12, 4:9] = 255
    for name in ("holed", "wrong_size", "cut_mask"):
        (bad_and_good / f"{name}.png").write_bytes((bad_and_good / "rgb.png").read_bytes())
    cv2.imwrite(str(bad_and_good / "holed_mask.png"), hole)
    cv2.imwrite(str(bad_and_good / "wrong_size_mask.png"), hole[:8, :8])
    (bad_and_good / "cut_mask_mask.png").write_bytes(cv2.imencode(".png", hole)[1].tobytes()[:60])
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["inpaint", "--in", str(bad_and_good), "--out", str(out),
                                       "--weights", str(weights), "--quiet"])
    assert result.exit_code == 1, result.output
    report = {Path(item["input"]).name: item for item in json.loads((out / "report.json").read_text())["files"]}
    failed = {name: item["reason"] for name, item in report.items() if item["status"] == "failed"}
    never_run = ("nan.tif",)  # no mask: copied unchanged, the network never sees it
    unread = {name: word for name, word in BAD_INPUTS.items() if name not in never_run}
    expected = {**unread, "wrong_size.png": "is 8x8 but the image is 20x24", "cut_mask.png": "cannot use mask"}
    assert set(failed) == set(expected)
    assert all(word in failed[name] for name, word in expected.items()), failed
    assert report["holed.png"]["status"] == "done" and report["holed.png"]["info"]["mask"].endswith("holed_mask.png")
    assert all_files(out) == {*GOOD_OUTPUTS, "holed.png", *never_run, "report.json"}


def test_output_that_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    write_photos(tmp_path / "in" / "sub", count=1, size=8)
    write_photos(tmp_path / "in" / "top", count=1, size=8)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").write_text("a file where the output folder should be")
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    report = process_folder("denoise", tmp_path / "in", tmp_path / "out", weights=str(weights), quiet=True)
    outcomes = {outcome.input.split("/in/")[1]: outcome for outcome in report.outcomes}
    assert outcomes["sub/000.png"].status == "failed" and "cannot write output" in outcomes["sub/000.png"].reason
    assert outcomes["top/000.png"].status == "done" and (tmp_path / "out" / "top" / "000.png").is_file()


def test_unreadable_input_is_reported(bad_and_good: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    locked = bad_and_good / "locked.png"
    locked.write_bytes((bad_and_good / "rgb.png").read_bytes())
    locked.chmod(0)
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    report = process_folder("denoise", bad_and_good, tmp_path / "out", weights=str(weights), quiet=True)
    reasons = {Path(outcome.input).name: outcome.reason for outcome in report.outcomes}
    assert "Permission denied" in reasons["locked.png"]
    assert (tmp_path / "out" / "rgb.png").is_file()


def test_non_utf8_file_name_is_processed_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    good = cv2.imencode(".png", np.full((8, 8, 3), 90, np.uint8))[1].tobytes()  # flat: sigma auto sees no noise
    try:
        with open(os.fsencode(root) + b"/caf\xe9.png", "wb") as handle:
            handle.write(good)
    except OSError as error:
        pytest.skip(f"file system refuses non-UTF-8 names: {error}")
    with open(os.fsencode(root) + b"/cut\xff.png", "wb") as handle:
        handle.write(good[:40])
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["denoise", "--in", str(root), "--out", str(out), "--weights", str(weights),
                                       "--quiet"])
    assert result.exit_code == 1, result.output
    assert b"caf\xe9.png" in os.listdir(os.fsencode(out))
    report = json.loads((out / "report.json").read_bytes().decode("utf-8"))  # valid UTF-8 JSON
    statuses = {Path(item["input"]).name: (item["status"], item["reason"]) for item in report["files"]}
    assert statuses["caf\\xe9.png"] == ("done", "")
    status, reason = statuses["cut\\xff.png"]
    assert status == "failed" and reason.startswith("not an image")  # the path, named once, is not repeated


# -- weights files that would run code ----------------------------------------------------


class RunsCodeWhenUnpickled:
    """Unpickling calls ``open(marker, "w")``: the file appears if the pickle is ever run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pth_that_would_run_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.zeros(1), "payload": RunsCodeWhenUnpickled(marker)}, evil)
    write_photos(tmp_path / "in", count=2, size=8)

    result = CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(evil), "--quiet"])
    assert result.exit_code == 2, result.output  # a usage error, before any image
    assert "refused" in result.output and "io.open" in result.output and "nothing in the file was run" in result.output
    assert "weights_only=False" not in result.output  # never advise running it
    assert not (tmp_path / "out" / "000.png").exists()
    with pytest.raises(WeightsError, match="refused"):
        restore.load(evil)
    assert not marker.exists()

    torch.load(evil, weights_only=False)  # the file really is dangerous: unpickling runs its code
    assert marker.exists()


def damaged_weights(good: Path, damage: str) -> Path:
    """``good`` (tiny denoise weights) damaged in one way; returns the damaged copy."""
    from safetensors.torch import load_file, save_file

    path = good.with_name(f"{damage}.safetensors")
    tensors = load_file(str(good))
    spec = {**tiny_denoise_spec(), "base_channels": 8}
    good_header = {"restore": json.dumps({"task": "denoise", "network": tiny_denoise_spec()})}
    header = {"truncated": None, "not_restore": {}, "bad_json": {"restore": "{not json"},
              "mismatch": {"restore": json.dumps({"task": "denoise", "network": spec})},
              "unknown_arch": {"restore": json.dumps({"task": "denoise", "network": {"arch": "vit"}})},
              "unknown_task": {"restore": json.dumps({"task": "colourise", "network": tiny_denoise_spec()})},
              "task_list": {"restore": json.dumps({"task": ["denoise"], "network": tiny_denoise_spec()})},
              "network_text": {"restore": json.dumps({"task": "denoise", "network": "unet"})},
              "spec_value": {"restore": json.dumps({"task": "denoise",
                                                    "network": {**tiny_denoise_spec(), "depth": "two"}})},
              "nan": good_header, "inf": good_header}[damage]
    if damage in ("nan", "inf"):
        first = next(iter(tensors))
        tensors[first] = tensors[first].clone()
        tensors[first].view(-1)[0] = float(damage)
    if header is None:
        path.write_bytes(good.read_bytes()[:300])
    else:
        save_file(tensors, str(path), metadata=header)
    return path


@pytest.mark.parametrize("damage, message", [
    ("truncated", "not a valid safetensors file"),
    ("not_restore", "no restore metadata"),
    ("bad_json", "damaged restore metadata"),
    ("mismatch", "cannot build the network the file describes (the tensors do not fit the network in the header"),
    ("unknown_arch", "unknown network arch 'vit'"),
    ("unknown_task", "unknown task 'colourise'"),
    ("task_list", 'damaged restore metadata in the file\'s header (task is ["denoise"], not a string)'),
    ("network_text", 'damaged restore metadata in the file\'s header (network is "unet", not a table)'),
    ("spec_value", "unet: depth must be a whole number, not 'two'"),
    ("nan", "holds 1 NaN or infinite value(s)"),
    ("inf", "holds 1 NaN or infinite value(s)"),
])
def test_unusable_weights_stop_the_run_before_any_image(tmp_path: Path, damage: str, message: str) -> None:
    weights = damaged_weights(write_tiny_denoise_weights(tmp_path / "good.safetensors"), damage)
    write_photos(tmp_path / "in", count=2, size=8)
    result = CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(weights), "--quiet"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert message in result.output and str(weights) in result.output
    assert not (tmp_path / "out" / "000.png").exists()
    with pytest.raises(WeightsError, match=re.escape(message)):
        restore.load(weights)


# -- paths that would lose data or end in a traceback --------------------------------------


def denoise_cli(tmp_path: Path, *args: str):
    """``restore denoise`` with one tiny weights file per test (written once: a rerun uses the same file)."""
    weights = tmp_path / "tiny.safetensors"
    if not weights.exists():
        write_tiny_denoise_weights(weights)
    return CliRunner().invoke(main, ["denoise", "--weights", str(weights), "--sigma", "25", "--quiet", *args])


def test_a_suffix_that_leads_out_of_out_is_a_usage_error(tmp_path: Path) -> None:
    write_photos(tmp_path / "deep" / "er" / "in", count=3, size=8)
    before = all_files(tmp_path)
    result = denoise_cli(tmp_path, "--in", str(tmp_path / "deep" / "er" / "in"), "--out", str(tmp_path / "deep" / "out"),
                         "--suffix", "/../../../escaped")
    assert result.exit_code == 2 and "--suffix" in result.output, result.output
    assert all_files(tmp_path) == before | {"tiny.safetensors"}  # nothing written anywhere


@pytest.mark.parametrize("suffix", ["", "_clean"])
def test_out_equal_to_in_is_refused_with_or_without_suffix(tmp_path: Path, suffix: str) -> None:
    names = write_photos(tmp_path / "in", count=2, size=8)
    result = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(tmp_path / "in"), "--suffix", suffix)
    assert result.exit_code == 2, result.output
    assert all_files(tmp_path / "in") == set(names)


def unusable_out_folders(tmp_path: Path) -> dict[str, Path]:
    """--out folders that cannot be written, each as a user would meet it."""
    (tmp_path / "a_file").write_text("not a folder")
    folders = {"under a regular file": tmp_path / "a_file" / "out"}
    if os.geteuid() != 0:  # root writes whatever the permissions
        for name, locked in (("read-only", tmp_path / "locked"), ("read-only parent", tmp_path / "locked_parent")):
            locked.mkdir()
            locked.chmod(0o555)
            folders[name] = locked if name == "read-only" else locked / "out"
    if Path("/sys/kernel").is_dir():  # sysfs: no folder can be made there, even by root
        folders["parent that refuses new folders"] = Path("/sys/restore-out")
    return folders


def test_an_out_folder_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    write_photos(tmp_path / "in", count=1, size=8)
    for problem, out in unusable_out_folders(tmp_path).items():
        result = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out))
        assert result.exit_code == 2, (problem, result.output)
        assert f"--out {out}: cannot write there" in result.output, (problem, result.output)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_pipe_or_device_given_as_in_is_a_failed_input(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        source = tmp_path / "pipe.png"
        os.mkfifo(source)
    else:
        source = Path("/dev/zero")
    out = tmp_path / "out"
    result = denoise_cli(tmp_path, "--in", str(source), "--out", str(out))
    assert result.exit_code == 1, result.output
    word = "named pipe" if kind == "fifo" else "character device"
    assert f"failed: {source}: not a regular file but a {word}" in result.output
    assert json.loads((out / "report.json").read_text())["summary"] == {"done": 0, "skipped": 0, "failed": 1}


# -- settings that could only fail every image: refused before the first ------------------


@pytest.mark.parametrize(("tile", "overlap"), [("64", "64"), ("64", "200"), ("auto", "128")])
def test_an_overlap_as_large_as_the_tile_is_a_usage_error(tmp_path: Path, tile: str, overlap: str) -> None:
    write_photos(tmp_path / "in", count=1, size=8)
    result = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                         "--tile", tile, "--tile-overlap", overlap)
    assert result.exit_code == 2 and "--tile-overlap" in result.output, result.output
    assert not (tmp_path / "out").exists()  # before any image


def test_an_output_too_large_for_max_pixels_is_refused(tmp_path: Path) -> None:
    write_photos(tmp_path / "in", count=1, size=8)
    weights = write_tiny_superres_weights(tmp_path / "sr.safetensors")
    args = ["superres", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights", str(weights), "--quiet"]
    result = CliRunner().invoke(main, [*args, "--outscale", "1e7"])  # no image could be written
    assert result.exit_code == 2 and "--outscale" in result.output, result.output
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(main, [*args, "--outscale", "10", "--max-pixels", "400"])  # 80x80: not this image
    assert result.exit_code == 1 and "--outscale 10.0 makes a 80x80 output" in result.output, result.output
    result = CliRunner().invoke(main, [*args, "--outscale", "4", "--max-pixels", "400"])  # the network's own x4 is fine
    assert result.exit_code == 0, result.output


def test_a_huge_dilation_is_refused_and_a_large_one_stays_cheap(tmp_path: Path) -> None:
    write_photos(tmp_path / "in", count=1, size=16)
    hole = np.zeros((16, 16), np.uint8)
    hole[4:6, 4:6] = 255
    cv2.imwrite(str(tmp_path / "in" / "000_mask.png"), hole)
    weights = write_tiny_inpaint_weights(tmp_path / "inpaint.safetensors")
    args = ["inpaint", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights", str(weights), "--quiet"]
    result = CliRunner().invoke(main, [*args, "--dilate", "1000000"])
    assert result.exit_code == 2 and "--dilate" in result.output, result.output
    result = CliRunner().invoke(main, [*args, "--dilate", "5000"])  # a disc wider than the image: all of it is hole
    assert result.exit_code == 0, result.output


def test_max_pixels_reaches_mask_files(tmp_path: Path) -> None:
    write_photos(tmp_path / "in", count=1, size=16)
    (tmp_path / "in" / "000_mask.png").write_bytes(png_claiming_size(5000, 5000))
    weights = write_tiny_inpaint_weights(tmp_path / "inpaint.safetensors")
    result = CliRunner().invoke(main, ["inpaint", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(weights), "--quiet", "--max-pixels", "1000"])
    assert result.exit_code == 1, result.output
    assert "5000x5000" in result.output and "limit 1000" in result.output
# -- fidelity: what a photo's file says besides its pixels ------------------------------------


def photo_with_metadata(path: Path) -> None:
    """A JPEG as a camera or scanner writes it: sRGB profile, EXIF turned 90 degrees, 300 DPI."""
    import PIL.ImageCms

    exif = PIL.Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Scanner maker"
    exif.get_ifd(0x8769)[0x9003] = "1971:05:04 10:00:00"
    profile = PIL.ImageCms.ImageCmsProfile(PIL.ImageCms.createProfile("sRGB")).tobytes()
    pixels = np.random.default_rng(3).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes(), icc_profile=profile, dpi=(300, 300))


@pytest.mark.parametrize("ext", ["same", "png", "tif", "webp"])
def test_superres_keeps_profile_exif_and_physical_size(tmp_path: Path, ext: str) -> None:
    from tiny_weights import write_tiny_superres_weights

    (tmp_path / "in").mkdir()
    photo_with_metadata(tmp_path / "in" / "scan.jpg")
    weights = write_tiny_superres_weights(tmp_path / "x2.safetensors", scale=2)
    result = CliRunner().invoke(main, ["superres", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(weights), "--ext", ext, "--quiet"])
    assert result.exit_code == 0, result.output
    output = tmp_path / "out" / f"scan.{'jpg' if ext == 'same' else ext}"
    with PIL.Image.open(output) as written, PIL.Image.open(tmp_path / "in" / "scan.jpg") as original:
        assert written.size == (24, 40)  # turned upright, then x2
        assert written.info["icc_profile"] == original.info["icc_profile"]
        exif = written.getexif()
        assert exif.get(0x0112, 1) == 1 and exif[0x010F] == "Scanner maker"  # TIFF: no tag means 1
        assert exif.get_ifd(0x8769)[0x9003] == "1971:05:04 10:00:00"
    assert read_image(output).metadata.dpi == (600, 600)  # x2 the pixels over the same print size


@pytest.mark.parametrize("quality", ["0", "101", "high"])
def test_jpeg_quality_out_of_range_is_a_usage_error(tmp_path: Path, quality: str) -> None:
    write_photos(tmp_path / "in", count=1, size=8)
    result = CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--jpeg-quality", quality, "--quiet"])
    assert result.exit_code == 2 and "--jpeg-quality" in result.output
    assert not (tmp_path / "out").exists()


def test_jpeg_quality_sets_the_quality_of_jpeg_outputs(tmp_path: Path) -> None:
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    write_photos(tmp_path / "in", count=1, size=64)
    sizes = {}
    for quality in ("30", "95"):
        out = tmp_path / f"q{quality}"
        result = CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(out), "--ext", "jpg",
                                           "--weights", str(weights), "--sigma", "10", "--jpeg-quality", quality,
                                           "--quiet"])
        assert result.exit_code == 0, result.output
        (sizes[quality],) = [path.stat().st_size for path in out.glob("*.jpg")]
    assert sizes["30"] < sizes["95"]


def grey_photo_as_rgb(path: Path, size: int = 24) -> np.ndarray:
    """A grey picture stored as RGB, with the one-level channel differences a JPEG of one has."""
    rng = np.random.default_rng(8)
    grey = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 2.0)
    grey = np.rint(255 * (grey - grey.min()) / (grey.max() - grey.min())).astype(np.int16)
    rgb = np.clip(np.stack([grey, grey + rng.integers(-1, 2, grey.shape), grey], axis=2), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), rgb[:, :, ::-1])
    return rgb


def channel_spread(pixels: np.ndarray) -> int:
    return int((pixels.astype(int).max(axis=2) - pixels.astype(int).min(axis=2)).max())


@pytest.mark.parametrize("task", ["superres", "denoise"])
def test_grey_photo_stored_as_rgb_comes_out_grey(tmp_path: Path, task: str) -> None:
    """The untrained tiny networks add colour to a grey input, as superres-x4-real did (70 levels)."""
    from tiny_weights import write_tiny_superres_weights

    (tmp_path / "in").mkdir()
    grey_photo_as_rgb(tmp_path / "in" / "grey.png")
    cv2.imwrite(str(tmp_path / "in" / "colour.png"), write_colour_photo())
    weights = (write_tiny_superres_weights(tmp_path / "w.safetensors", scale=2) if task == "superres"
               else write_tiny_denoise_weights(tmp_path / "w.safetensors"))
    extra = ["--sigma", "25"] if task == "denoise" else []
    result = CliRunner().invoke(main, [task, "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(weights), "--quiet", *extra])
    assert result.exit_code == 0, result.output
    assert channel_spread(read_image(tmp_path / "out" / "grey.png").pixels) == 0
    assert channel_spread(read_image(tmp_path / "out" / "colour.png").pixels) > 10  # colour stays colour
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {item["input"].rsplit("/", 1)[1]: item["info"].get("grey_as_rgb", False)
            for item in report["files"]} == {"grey.png": True, "colour.png": False}


def write_colour_photo(size: int = 24) -> np.ndarray:
    rng = np.random.default_rng(9)
    return cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 1.0)


def test_inpainting_a_grey_photo_keeps_its_pixels_and_fills_grey(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    original = grey_photo_as_rgb(tmp_path / "in" / "photo.png", size=32)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 10:24] = 255
    cv2.imwrite(str(tmp_path / "in" / "photo_mask.png"), mask)
    weights = tmp_path / "inpaint.safetensors"
    torch.manual_seed(0)
    spec = {**tiny_denoise_spec(), "extra_channels": 1}
    save_weights(weights, build_network(spec).state_dict(), {"task": "inpaint", "network": spec, "task_options": {}})
    result = CliRunner().invoke(main, ["inpaint", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(weights), "--quiet"])
    assert result.exit_code == 0, result.output
    filled = read_image(tmp_path / "out" / "photo.png").pixels
    known = mask == 0
    np.testing.assert_array_equal(filled[known], original[known])
    assert channel_spread(filled[~known][None]) == 0


# -- progress within one image --------------------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True])
def test_a_single_large_image_shows_its_tiles_done(tmp_path: Path, quiet: bool) -> None:
    from restore.engine.tiling import tile_starts

    write_photos(tmp_path / "in", count=1, size=96)
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    result = CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(weights), "--sigma", "10", "--tile", "32",
                                       "--tile-overlap", "8", *(["--quiet"] if quiet else [])])
    assert result.exit_code == 0, result.output
    tiles = len(tile_starts(96, 32, 8)) ** 2
    shown = re.findall(r"(\d+)/(\d+) \[[^\]]*tile/s\]", result.output)
    if quiet:
        assert not shown and "tile" not in result.output
    else:
        assert (str(tiles), str(tiles)) in shown, result.output


def test_non_finite_output_fails_its_image_and_the_batch_goes_on(tmp_path: Path) -> None:
    """Finite weights so large that the network overflows on a bright image (fp32 ends at
    3.4e38); with no biases and ReLU a black image stays exactly 0 and is restored."""
    weights, metadata = load_weights(write_tiny_superres_weights(tmp_path / "sr.safetensors", scale=2))
    huge = {key: tensor * 1e8 if tensor.ndim > 1 else torch.zeros_like(tensor) for key, tensor in weights.items()}
    save_weights(tmp_path / "overflows.safetensors", huge, metadata)
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "black.png"), np.zeros((16, 16, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "in" / "bright.png"), np.full((16, 16, 3), 200, np.uint8))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["superres", "--in", str(tmp_path / "in"), "--out", str(out), "--weights",
                                       str(tmp_path / "overflows.safetensors"), "--quiet"])
    assert result.exit_code == 1, result.output
    report = {Path(item["input"]).name: item for item in json.loads((out / "report.json").read_text())["files"]}
    assert report["black.png"]["status"] == "done" and (out / "black.png").is_file()
    assert report["bright.png"]["status"] == "failed" and not (out / "bright.png").exists()
    assert "NaN or infinite" in report["bright.png"]["reason"]


def test_eval_names_an_unreadable_prediction(tmp_path: Path) -> None:
    names = write_photos(tmp_path / "ref", count=2, size=16)
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / names[0]).write_bytes((tmp_path / "ref" / names[0]).read_bytes())
    (tmp_path / "pred" / names[1]).write_bytes(b"")
    result = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"{names[1]}: file is empty (0 bytes)" in result.output


def test_non_finite_weights_in_a_published_pth_are_refused(tmp_path: Path) -> None:
    network = build_network(tiny_denoise_spec())
    state = {"params": {key: value.clone() for key, value in network.state_dict().items()}}  # BasicSR's wrapper
    first = next(iter(state["params"]))
    state["params"][first].view(-1)[0] = float("nan")
    torch.save(state, tmp_path / "model.pth")
    with pytest.raises(WeightsError, match=f"tensor '{first}' holds 1 NaN or infinite value"):
        restore.load(tmp_path / "model.pth", task="denoise")


# -- reruns into the same --out -------------------------------------------------------------


def test_report_records_the_resolved_settings(tmp_path: Path) -> None:
    write_photos(tmp_path / "in", count=1, size=16)
    result = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--sigma", "15",
                         "--ext", "jpg", "--jpeg-quality", "90", "--precision", "fp32", "--suffix", "_clean")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    weights = tmp_path / "tiny.safetensors"
    assert report["settings"] == {
        "task": "denoise", "weights": {str(weights.resolve()): hashlib.sha256(weights.read_bytes()).hexdigest()},
        "precision": "fp32", "ensemble": False, "sigma": 15.0, "strength": 1.0, "model": "gaussian",
        "suffix": "_clean", "ext": "jpg", "jpeg_quality": 90,
    }
    execution = report["execution"]
    assert execution["device"] != "auto" and isinstance(execution["batch_size"], int), execution
    (item,) = report["files"]
    assert item["info"]["precision"] == "fp32" and isinstance(item["info"]["tile"], int), item

    # default precision and weights: what auto resolved to, and each shipped default with its sha256
    result = CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "auto"),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "auto" / "report.json").read_text())
    manifest = restore.weights.load_manifest()
    assert report["settings"]["weights"] == {name: manifest[name].sha256 for name in ("denoise-color", "denoise-gray")}
    assert report["settings"]["precision"] in ("fp32", "bf16", "bf16 for 8-bit images, fp32 for others")
    (item,) = report["files"]
    assert item["info"]["weights"] == "denoise-color" and item["info"]["precision"] in ("fp32", "bf16"), item



def test_the_jpeg_quality_counts_on_a_rerun_only_where_outputs_are_jpeg(tmp_path: Path) -> None:
    """A JPEG quality cannot change PNG outputs, so another one does not hold back a resume of
    them; with JPEG outputs it is a settings change like any other."""
    write_photos(tmp_path / "in", count=2, size=16)
    for ext, refused in (("png", False), ("jpg", True)):
        out = tmp_path / ext
        first = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "15", "--ext", ext)
        assert first.exit_code == 0, first.output
        again = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "15", "--ext", ext,
                            "--jpeg-quality", "80")
        if refused:
            assert again.exit_code == 2 and "jpeg_quality: 95 -> 80" in again.output, again.output
        else:
            assert again.exit_code == 0 and "0 done, 2 skipped" in again.output, again.output


def test_an_option_added_since_an_older_report_counts_as_its_default(tmp_path: Path) -> None:
    write_photos(tmp_path / "in", count=2, size=16)
    out = tmp_path / "out"
    assert denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "15").exit_code == 0
    report = json.loads((out / "report.json").read_text())
    del report["settings"]["strength"]  # as a restore without --strength wrote it
    (out / "report.json").write_text(json.dumps(report))
    again = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "15")
    assert again.exit_code == 0 and "0 done, 2 skipped" in again.output, again.output
    changed = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "15", "--strength", "0.5")
    assert changed.exit_code == 2 and "strength: 1.0 -> 0.5" in changed.output, changed.output

def output_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.png"))}


def test_a_rerun_with_other_settings_is_refused_unless_overwrite(tmp_path: Path) -> None:
    write_photos(tmp_path / "in", count=2, size=16)
    out = tmp_path / "out"
    assert denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "15").exit_code == 0
    first, report = output_bytes(out), (out / "report.json").read_text()
    other = write_tiny_denoise_weights(tmp_path / "other.safetensors", seed=1)

    def rerun(*args: str):
        return CliRunner().invoke(main, ["denoise", "--in", str(tmp_path / "in"), "--out", str(out), "--quiet", *args])

    changed = ("--weights", str(other), "--sigma", "25", "--ensemble")
    refused = rerun(*changed)
    assert refused.exit_code == 2, refused.output
    for named in ("sigma: 15.0 -> 25.0", "ensemble: false -> true", "weights: {", "--overwrite"):
        assert named in refused.output, (named, refused.output)
    assert output_bytes(out) == first and (out / "report.json").read_text() == report

    # how the network runs (tiles, threads) is not a setting that changes the outputs
    same = rerun("--weights", str(tmp_path / "tiny.safetensors"), "--sigma", "15", "--tile", "64", "--workers", "1")
    assert same.exit_code == 0 and "0 done, 2 skipped" in same.output, same.output

    redone = rerun(*changed, "--overwrite")
    assert redone.exit_code == 0 and "2 done, 0 skipped" in redone.output, redone.output
    assert all(output_bytes(out)[name] != first[name] for name in first)
    assert json.loads((out / "report.json").read_text())["settings"]["sigma"] == 25.0
    again = rerun(*changed)
    assert again.exit_code == 0 and "0 done, 2 skipped" in again.output, again.output


def test_an_output_made_from_another_input_is_not_taken_as_done(tmp_path: Path) -> None:
    """``shot.jpg`` made ``shot.png`` (--ext png); then ``shot.png`` joins --in: it gets its
    own name, so the file there is not its output, and ``shot.jpg`` moves to ``shot.jpg.png``."""
    source, out = tmp_path / "in", tmp_path / "out"
    write_distinct_images(source, ["shot.jpg"])
    assert denoise_cli(tmp_path, "--in", str(source), "--out", str(out), "--ext", "png").exit_code == 0
    write_distinct_images(tmp_path / "later", ["other.png", "shot.png"])  # another grey level than shot.jpg's
    (tmp_path / "later" / "shot.png").rename(source / "shot.png")
    result = denoise_cli(tmp_path, "--in", str(source), "--out", str(out), "--ext", "png")
    assert result.exit_code == 0 and "2 done, 0 skipped" in result.output, result.output
    reference = denoise_cli(tmp_path, "--in", str(source), "--out", str(tmp_path / "reference"), "--ext", "png")
    assert reference.exit_code == 0, reference.output
    assert output_bytes(out) == output_bytes(tmp_path / "reference")  # shot.png and shot.jpg.png, each its own
    again = denoise_cli(tmp_path, "--in", str(source), "--out", str(out), "--ext", "png")
    assert "0 done, 2 skipped" in again.output, again.output


def test_an_output_of_an_input_of_an_earlier_run_is_kept(tmp_path: Path) -> None:
    write_distinct_images(tmp_path / "a", ["x.png"])
    write_distinct_images(tmp_path / "b", ["other.png", "x.png"])
    out = tmp_path / "out"
    assert denoise_cli(tmp_path, "--in", str(tmp_path / "a"), "--out", str(out)).exit_code == 0
    first = output_bytes(out)
    result = denoise_cli(tmp_path, "--in", str(tmp_path / "b"), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert f"holds the result of {tmp_path.resolve() / 'a' / 'x.png'}" in result.output, result.output
    assert "--overwrite" in result.output and output_bytes(out)["x.png"] == first["x.png"]
    result = denoise_cli(tmp_path, "--in", str(tmp_path / "b"), "--out", str(out), "--overwrite")
    assert result.exit_code == 0 and output_bytes(out)["x.png"] != first["x.png"], result.output


def test_a_file_restore_did_not_make_is_neither_skipped_nor_replaced(tmp_path: Path) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    write_distinct_images(source, ["a.png"])
    assert denoise_cli(tmp_path, "--in", str(source), "--out", str(out)).exit_code == 0
    write_distinct_images(tmp_path / "later", ["b.png"])
    (tmp_path / "later" / "b.png").rename(source / "b.png")
    (out / "b.png").write_bytes(b"the user's own file")
    result = denoise_cli(tmp_path, "--in", str(source), "--out", str(out))
    assert result.exit_code == 1 and "0 done, 1 skipped, 1 failed" in result.output, result.output
    assert "does not list it" in result.output and (out / "b.png").read_bytes() == b"the user's own file"


def test_a_report_without_settings_resumes_as_before_with_a_warning(tmp_path: Path) -> None:
    """A report.json of a restore that did not record settings: nothing says what made the
    outputs, so they are skipped as they always were, and the run says so."""
    write_photos(tmp_path / "in", count=2, size=16)
    out = tmp_path / "out"
    assert denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "15").exit_code == 0
    report = json.loads((out / "report.json").read_text())
    for key in ("settings", "execution", "made_from", "complete", "warnings"):
        report.pop(key, None)
    (out / "report.json").write_text(json.dumps(report))
    result = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "25")
    assert result.exit_code == 0 and "0 done, 2 skipped" in result.output, result.output
    assert "warning:" in result.output and "did not record its settings" in result.output, result.output


def test_a_run_that_left_no_output_does_not_hold_back_one_with_other_settings(tmp_path: Path) -> None:
    """Stopped at once, or every input failed: nothing made with the old settings is at stake."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "15").exit_code == 1
    result = denoise_cli(tmp_path, "--in", str(tmp_path / "in"), "--out", str(out), "--sigma", "25")
    assert result.exit_code == 1 and "0 done, 0 skipped, 1 failed" in result.output, result.output


@pytest.mark.parametrize(("change", "reason"), [
    ({"depth": 13}, "depth must be at most 12, not 13"),
    ({"depth": 6, "base_channels": 512, "max_channels": 512}, "the tensors do not fit the network in the header"),
])
def test_a_header_describing_another_network_is_refused_before_it_is_built(tmp_path: Path, change, reason) -> None:
    """A hostile or damaged header must not make restore build (for minutes) or allocate
    (gigabytes for) a network its tensors do not fill."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    tiny = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    with safe_open(str(tiny), "pt") as handle:
        metadata = handle.metadata()
    header = json.loads(metadata["restore"])
    header["network"].update(change)
    save_file(load_file(str(tiny)), str(tmp_path / "evil.safetensors"), metadata={**metadata, "restore": json.dumps(header)})
    with pytest.raises(WeightsError, match=reason):
        restore.load(tmp_path / "evil.safetensors", device="cpu")

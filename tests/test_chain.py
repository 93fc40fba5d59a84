"""`restore chain` and `restore.chain`: several tasks in one pass give, byte for byte, what
the task commands give run one after the other; steps parsed as the task commands parse
them; resume, report and failures as the batch engine's."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import restore
from restore.cli import main
from restore.cli.chain import CHAIN_SETTINGS
from restore.engine.batch import BatchSettings
from restore.pipeline import StepError
from restore.schema import option_names
from test_batch import dead_pid
from tiny_weights import write_tiny_denoise_weights, write_tiny_inpaint_weights, write_tiny_superres_weights

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "datasets" / "samples" / "noisy"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def smooth(rng: np.random.Generator, height: int, width: int, channels: int, dtype: type) -> np.ndarray:
    """A blurred random image at full range of ``dtype`` (structure for the networks to act on)."""
    noise = cv2.GaussianBlur(rng.random((height, width, channels)).astype(np.float32), (0, 0), 1.5)
    noise = noise.reshape(height, width, channels)
    scaled = (noise - noise.min()) / (noise.max() - noise.min()) * np.iinfo(dtype).max
    return scaled.round().astype(dtype)


def hole(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[4:9, 5:11] = 255
    return mask


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, Path]:
    """``in/``: 8-bit RGB (in a sub-folder), 16-bit grey, RGBA whose transparent pixels are
    its holes, RGBA with soft alpha (no hole: its mask is a file); ``masks/`` mirrors it."""
    rng = np.random.default_rng(0)
    root, masks = tmp_path / "in", tmp_path / "masks"
    (root / "rgb").mkdir(parents=True)
    (masks / "rgb").mkdir(parents=True)
    cv2.imwrite(str(root / "rgb" / "photo.png"), smooth(rng, 20, 24, 3, np.uint8))
    cv2.imwrite(str(masks / "rgb" / "photo.png"), hole(20, 24))
    cv2.imwrite(str(root / "grey16.png"), smooth(rng, 16, 20, 1, np.uint16)[:, :, 0])
    cv2.imwrite(str(masks / "grey16.png"), hole(16, 20))
    holed = np.dstack([smooth(rng, 16, 16, 3, np.uint8), 255 - hole(16, 16)])
    cv2.imwrite(str(root / "rgba.png"), holed)
    soft = np.dstack([smooth(rng, 16, 16, 3, np.uint8), np.linspace(150, 255, 16 * 16).reshape(16, 16)])
    cv2.imwrite(str(root / "soft.png"), soft.astype(np.uint8))
    cv2.imwrite(str(masks / "soft.png"), hole(16, 16))
    return root, masks


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Path]:
    return {
        "denoise": write_tiny_denoise_weights(tmp_path / "denoise.safetensors"),
        "inpaint": write_tiny_inpaint_weights(tmp_path / "inpaint.safetensors"),
        "superres": write_tiny_superres_weights(tmp_path / "x2.safetensors", scale=2),
    }


def three_steps(tiny: dict[str, Path], masks: Path, sigma: str = "auto") -> list[str]:
    return [
        f"denoise --weights {tiny['denoise']} --sigma {sigma} --precision fp32",
        f"inpaint --weights {tiny['inpaint']} --masks {masks} --precision fp32",
        f"superres --weights {tiny['superres']} --precision fp32 --tile 32 --tile-overlap 8",
    ]


def run_separately(steps: list[str], source: Path, work: Path, *options: str) -> list[Path]:
    """Each step as its own command, the first from ``source``, each next one from the
    previous one's --out; the --out folders, in order."""
    outs = []
    for number, step in enumerate(steps, 1):
        out = work / f"step{number}"
        task, *arguments = step.split()
        code, output = run(task, *arguments, "--in", str(source), "--out", str(out), "--quiet", *options)
        assert code == 0, output
        outs.append(out)
        source = out
    return outs


def images_under(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every output image under ``folder`` (not the report, not .steps)."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != "report.json" and ".steps" not in path.relative_to(folder).parts}


def report_of(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


@pytest.mark.parametrize("keep_steps", [False, True])
def test_chain_gives_byte_for_byte_what_the_commands_give_one_after_the_other(
    photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path, keep_steps: bool
) -> None:
    source, masks = photos
    steps = three_steps(tiny, masks)
    separate = run_separately(steps, source, tmp_path / "separate")
    out = tmp_path / "chain"
    code, output = run("chain", *steps, "--in", str(source), "--out", str(out), "--quiet",
                       *(["--keep-steps"] if keep_steps else []))
    assert code == 0, output
    expected = images_under(separate[-1])
    assert sorted(expected) == ["grey16.png", "rgb/photo.png", "rgba.png", "soft.png"]
    assert images_under(out) == expected
    if keep_steps:
        for number, (task, folder) in enumerate(zip(("denoise", "inpaint"), separate), 1):
            assert images_under(out / ".steps" / f"{number}-{task}") == images_under(folder)
        assert sorted(path.name for path in (out / ".steps").iterdir()) == ["1-denoise", "2-inpaint"]
    else:
        assert not (out / ".steps").exists()
    grey = cv2.imread(str(out / "grey16.png"), cv2.IMREAD_UNCHANGED)
    soft = cv2.imread(str(out / "soft.png"), cv2.IMREAD_UNCHANGED)
    holed = cv2.imread(str(out / "rgba.png"), cv2.IMREAD_UNCHANGED)
    assert grey.shape == (32, 40) and grey.dtype == np.uint16  # grey and 16-bit through every step
    assert soft.shape == (32, 32, 4) and soft[:, :, 3].min() < 200  # alpha upscaled with the image
    assert holed.shape == (32, 32, 4) and holed[:, :, 3].min() == 255  # its alpha was the holes: filled, opaque


def test_report_lists_each_step_of_each_image_and_the_chains_settings(
    photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    source, masks = photos
    out = tmp_path / "out"
    code, output = run("chain", *three_steps(tiny, masks), "--in", str(source), "--out", str(out), "--quiet")
    assert code == 0, output
    report = report_of(out)
    assert report["summary"] == {"done": 4, "skipped": 0, "failed": 0} and report["complete"]
    settings = report["settings"]
    assert settings["task"] == "chain" and settings["steps"] == ["denoise", "inpaint", "superres"]
    assert settings["1.denoise.sigma"] == "auto" and settings["1.denoise.precision"] == "fp32"
    assert settings["2.inpaint.masks_dir"] == str(masks.resolve())
    assert list(settings["3.superres.weights"]) == [str(tiny["superres"])]
    assert [step["task"] for step in report["execution"]["steps"]] == ["denoise", "inpaint", "superres"]
    files = {Path(entry["input"]).name: entry for entry in report["files"]}
    photo = files["photo.png"]["info"]["steps"]
    assert [step["task"] for step in photo] == ["denoise", "inpaint", "superres"]
    assert photo[0]["sigma_estimated"] and photo[0]["sigma"] > 0
    assert photo[1]["mask"].endswith("masks/rgb/photo.png") and photo[1]["hole_fraction"] > 0
    assert all(step["seconds"] >= 0 and step["weights"] for step in photo)
    assert files["rgba.png"]["info"]["steps"][1]["mask"] == "alpha"


def test_rerun_skips_done_images_and_another_chain_is_refused_naming_what_differs(
    photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    source, masks = photos
    out = tmp_path / "out"
    arguments = ["--in", str(source), "--out", str(out), "--quiet"]
    assert run("chain", *three_steps(tiny, masks, sigma="15"), *arguments)[0] == 0
    before = images_under(out)
    code, output = run("chain", *three_steps(tiny, masks, sigma="15"), *arguments)
    assert code == 0, output
    assert "0 done, 4 skipped" in output and images_under(out) == before
    code, output = run("chain", *three_steps(tiny, masks, sigma="25"), *arguments)
    assert code == 2 and "1.denoise.sigma: 15.0 -> 25.0" in output, output
    code, output = run("chain", *three_steps(tiny, masks, sigma="15")[::2], *arguments)
    assert code == 2 and "steps: " in output and "2.inpaint" in output, output
    code, output = run("chain", *three_steps(tiny, masks, sigma="15"), *arguments, "--keep-steps")
    assert code == 2 and "keep_steps: false -> true" in output, output
    code, output = run("chain", *three_steps(tiny, masks, sigma="25"), *arguments, "--overwrite")
    assert code == 0 and "4 done" in output, output
    assert images_under(out) != before


def test_rerun_after_a_kill_redoes_what_is_missing_and_cleans_the_kept_steps(
    photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    """As a run killed while writing a kept step leaves it: its temp file there, no final output."""
    source, masks = photos
    out = tmp_path / "out"
    arguments = [*three_steps(tiny, masks), "--in", str(source), "--out", str(out), "--quiet", "--keep-steps"]
    assert run("chain", *arguments)[0] == 0
    before = {**images_under(out), **images_under(out / ".steps")}
    (out / "rgb" / "photo.png").unlink()
    (out / ".steps" / "2-inpaint" / "rgb" / "photo.png").unlink()
    stale = out / ".steps" / "2-inpaint" / "rgb" / f".restore-tmp-{dead_pid()}-k1ll3d00.tmp"
    stale.write_bytes(b"half a png")
    code, output = run("chain", *arguments)
    assert code == 0 and "1 done, 3 skipped" in output, output
    assert not stale.exists()
    assert {**images_under(out), **images_under(out / ".steps")} == before


@pytest.mark.parametrize(("step", "expected"), [
    ("denoize --sigma 5", "unknown task 'denoize'"),
    ("", "no task"),
    ("denoise --sigmaa 5", "No such option '--sigmaa'"),
    ("denoise --sigma loud", "give a noise level"),
    ("superres --scale 3", "'3' is not one of '2', '4'"),
    ("denoise --tile 64 --tile-overlap 64", "overlap"),
    ("denoise --out elsewhere", "--out is an option of the whole chain"),
    ("inpaint --suffix=_x", "--suffix is an option of the whole chain"),
    ("medical denoise", "unknown task 'medical'"),
    ("denoise --sigma 'open", "No closing quotation"),
])
def test_a_bad_step_is_a_usage_error_naming_it_before_any_image(
    photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path, step: str, expected: str
) -> None:
    source, _ = photos
    out = tmp_path / "out"
    good = f"denoise --weights {tiny['denoise']}"
    code, output = run("chain", good, step, "--in", str(source), "--out", str(out), "--quiet")
    assert code == 2, output
    assert f"step 2 ({step!r})" in output and expected in output, output
    assert not out.exists()


def test_weights_a_step_cannot_use_stop_the_chain_naming_the_step(
    photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    source, _ = photos
    code, output = run("chain", f"denoise --weights {tiny['denoise']}", f"superres --weights {tiny['denoise']}",
                       "--in", str(source), "--out", str(tmp_path / "out"), "--quiet")
    assert code == 2 and "step 2 (superres)" in output and "are for denoise, not superres" in output, output


def test_the_chains_options_are_the_batch_settings() -> None:
    # report_format: the CLI writes the page after the batch (restore/cli/report.py); progress:
    # an observer that code calling the engine hands in (restore serve), not a command-line value
    assert set(CHAIN_SETTINGS) == {"source", "destination", "report_format", *option_names(BatchSettings)} - {"progress"}


def test_a_chain_writes_the_html_report(photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path) -> None:
    source, _ = photos
    code, output = run("chain", f"denoise --weights {tiny['denoise']} --sigma 15", "--in", str(source),
                       "--out", str(tmp_path / "out"), "--quiet", "--report", "html")
    assert code == 0, output
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / ".restore-report").is_dir()


def test_a_failing_image_is_reported_and_the_batch_goes_on(
    photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    source, masks = photos
    (source / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    cv2.imwrite(str(masks / "rgba.png"), hole(5, 5))  # found first (--masks), of the wrong size
    out = tmp_path / "out"
    code, output = run("chain", *three_steps(tiny, masks), "--in", str(source), "--out", str(out), "--quiet")
    assert code == 1, output
    files = {Path(entry["input"]).name: entry for entry in report_of(out)["files"]}
    assert files["corrupt.png"]["status"] == "failed" and files["corrupt.png"]["reason"]
    assert files["rgba.png"]["status"] == "failed"
    assert files["rgba.png"]["reason"].startswith("step 2 (inpaint): ") and "5x5" in files["rgba.png"]["reason"]
    assert {name for name, entry in files.items() if entry["status"] == "done"} == {"photo.png", "grey16.png",
                                                                                     "soft.png"}


def test_masks_beside_the_original_input_are_found_and_never_processed(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    rng = np.random.default_rng(1)
    cv2.imwrite(str(source / "scratched.png"), smooth(rng, 16, 16, 3, np.uint8))
    cv2.imwrite(str(source / "scratched_mask.png"), hole(16, 16))
    out = tmp_path / "out"
    code, output = run("chain", f"denoise --weights {tiny['denoise']}", f"inpaint --weights {tiny['inpaint']}",
                       "--in", str(source), "--out", str(out), "--quiet")
    assert code == 0, output
    (entry,) = report_of(out)["files"]
    assert entry["input"].endswith("scratched.png")
    assert entry["info"]["steps"][1]["mask"].endswith("in/scratched_mask.png")


def test_a_previous_runs_report_and_kept_steps_are_not_inputs(
    photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    source, masks = photos
    first, second = tmp_path / "first", tmp_path / "second"
    steps = three_steps(tiny, masks)[:2]
    assert run("chain", *steps, "--in", str(source), "--out", str(first), "--quiet", "--keep-steps")[0] == 0
    code, output = run("chain", f"denoise --weights {tiny['denoise']}", "--in", str(first), "--out", str(second),
                       "--quiet")
    assert code == 0, output
    inputs = sorted(Path(entry["input"]).relative_to(first).as_posix() for entry in report_of(second)["files"])
    assert inputs == ["grey16.png", "rgb/photo.png", "rgba.png", "soft.png"]


def test_python_api_takes_strings_or_pairs(photos: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path) -> None:
    source, masks = photos
    texts = three_steps(tiny, masks)
    from_text = restore.chain(texts, source, tmp_path / "text", quiet=True, keep_steps=True)
    pairs = [
        ("denoise", {"weights": str(tiny["denoise"]), "precision": "fp32"}),
        ("inpaint", {"weights": str(tiny["inpaint"]), "masks_dir": masks, "precision": "fp32"}),
        ("superres", {"weights": str(tiny["superres"]), "precision": "fp32", "tile": 32, "tile_overlap": 8}),
    ]
    from_pairs = restore.chain(pairs, source, tmp_path / "pairs", quiet=True, keep_steps=True)
    assert isinstance(from_pairs, restore.BatchReport)
    assert from_text.exit_code == from_pairs.exit_code == 0
    assert images_under(tmp_path / "text") == images_under(tmp_path / "pairs")
    assert images_under(tmp_path / "text" / ".steps") == images_under(tmp_path / "pairs" / ".steps")
    with pytest.raises(TypeError, match="'suffix' is a setting of the whole chain"):
        restore.chain([("denoise", {"suffix": "_x"})], source, tmp_path / "refused")
    with pytest.raises(TypeError, match="step 1 \\(denoise\\): unknown option 'sigmaa'"):
        restore.chain([("denoise", {"sigmaa": 5})], source, tmp_path / "refused")
    with pytest.raises(StepError, match="step 1 \\('superres --scale 3'\\)"):
        restore.chain(["superres --scale 3"], source, tmp_path / "refused")
    with pytest.raises(StepError, match="at least one step"):
        restore.chain([], source, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def crops_of_the_samples(folder: Path) -> Path:
    """A 48x40 corner of every lossless shipped sample (16-bit grey, RGBA, colour, grey)."""
    for path in SAMPLES.rglob("*.png"):
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        target = folder / path.relative_to(SAMPLES)
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), pixels[:48, :40])
    return folder


@pytest.mark.parametrize("keep_steps", [False, True])
def test_shipped_weights_on_sample_crops_match_the_commands(tmp_path: Path, keep_steps: bool) -> None:
    source = crops_of_the_samples(tmp_path / "in")
    steps = ["denoise --sigma auto --precision fp32", "superres --scale 2 --precision fp32"]
    separate = run_separately(steps, source, tmp_path / "separate")
    out = tmp_path / "chain"
    code, output = run("chain", *steps, "--in", str(source), "--out", str(out), "--quiet",
                       *(["--keep-steps"] if keep_steps else []))
    assert code == 0, output
    assert len(images_under(out)) == 4 and images_under(out) == images_under(separate[-1])
    if keep_steps:
        assert images_under(out / ".steps" / "1-denoise") == images_under(separate[0])


@pytest.mark.slow  # the shipped networks on five 256x256 samples, twice: minutes on a small CPU
def test_shipped_weights_on_the_samples_match_the_commands(tmp_path: Path) -> None:
    steps = ["denoise --sigma auto --precision fp32", "superres --scale 2 --precision fp32"]
    # --ext png: a JPEG sample's intermediate is then lossless in both flows
    separate = run_separately(steps, SAMPLES, tmp_path / "separate", "--ext", "png")
    out = tmp_path / "chain"
    code, output = run("chain", *steps, "--in", str(SAMPLES), "--out", str(out), "--quiet", "--ext", "png")
    assert code == 0, output
    assert len(images_under(out)) == 5 and images_under(out) == images_under(separate[-1])

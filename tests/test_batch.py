"""The folder batch engine: mirrored tree, resume, bad inputs, atomic outputs, report."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import restore
from restore.engine.batch import BatchSettings, BatchUsageError, Job, plan_jobs, run_batch
from restore.engine.progress import Progress
from restore.io.atomic import atomic_write, remove_stale_temps, temp_folder
from restore.io.image import Image, read_image
from restore.io.storage import fetched, staging_folder


def invert(image: Image, source: Path, progress: Progress | None) -> tuple[Image, dict]:
    """A stand-in task: exact, cheap, and visibly different from its input."""
    maximum = np.iinfo(image.pixels.dtype).max
    return Image(maximum - image.pixels, image.alpha, format=image.format), {"seen": source.name}


def test_mirrors_tree_and_reports_every_input(mixed_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_batch(mixed_tree, out, invert, BatchSettings(quiet=True))
    assert report.summary() == "4 done, 0 skipped, 2 failed"
    assert report.exit_code == 1
    for relative in ("rgb.png", "sub/grey16.png", "sub/deeper/rgba.png", "sub/photo.jpg"):
        assert (out / relative).is_file(), relative
    grey = cv2.imread(str(out / "sub" / "grey16.png"), cv2.IMREAD_UNCHANGED)
    assert grey.dtype == np.uint16 and grey.ndim == 2
    assert cv2.imread(str(out / "sub" / "deeper" / "rgba.png"), cv2.IMREAD_UNCHANGED).shape == (16, 24, 4)
    saved = json.loads((out / "report.json").read_text())
    assert len(saved["files"]) == 6
    reasons = {Path(item["input"]).name: item["reason"] for item in saved["files"] if item["status"] == "failed"}
    assert set(reasons) == {"corrupt.png", "readme.txt"}
    assert all(reasons.values())
    assert not list(out.rglob("*.tmp"))


def test_second_run_skips_finished_outputs(mixed_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(mixed_tree, out, invert, BatchSettings(quiet=True))
    before = (out / "rgb.png").stat().st_mtime_ns
    report = run_batch(mixed_tree, out, invert, BatchSettings(quiet=True))
    assert report.count("skipped") == 4 and report.count("done") == 0
    assert (out / "rgb.png").stat().st_mtime_ns == before
    again = run_batch(mixed_tree, out, invert, BatchSettings(quiet=True, overwrite=True))
    assert again.count("done") == 4


def test_output_inside_input_is_not_walked(mixed_tree: Path) -> None:
    out = mixed_tree / "results"
    run_batch(mixed_tree, out, invert, BatchSettings(quiet=True))
    second = run_batch(mixed_tree, out, invert, BatchSettings(quiet=True))
    assert all("results" not in Path(outcome.input).parts for outcome in second.outcomes)


def test_refuses_to_write_among_the_inputs(mixed_tree: Path) -> None:
    for suffix in ("", "_x"):  # a suffix would keep the inputs, but mix the outputs in with them
        with pytest.raises(BatchUsageError, match="is the --in folder"):
            plan_jobs(mixed_tree, mixed_tree, BatchSettings(suffix=suffix))
    with pytest.raises(BatchUsageError, match="overwrite an input"):
        plan_jobs(mixed_tree / "rgb.png", mixed_tree, BatchSettings())
    assert plan_jobs(mixed_tree / "rgb.png", mixed_tree, BatchSettings(suffix="_x"))  # one file, named apart


def test_single_file_and_suffix_and_format(mixed_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "single"
    report = run_batch(mixed_tree / "rgb.png", out, invert, BatchSettings(quiet=True, suffix="_inv", ext="tif"))
    assert report.exit_code == 0
    assert (out / "rgb_inv.tif").is_file()


def dead_pid() -> int:
    """The PID of a process that has ended (the test's own runs are too short for it to be reused)."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid


def test_only_temp_files_of_dead_restore_writes_are_removed(mixed_tree: Path, tmp_path: Path) -> None:
    """``--in photos/raw --out photos``: the clean-up of what a killed run left must not
    touch the user's own ``*.tmp`` files, in --out or in --in, nor another process's
    write in progress (locked), nor anything outside the folders this run writes to."""
    photos = tmp_path / "photos"
    raw = photos / "raw"
    shutil.copytree(mixed_tree, raw)
    dead = dead_pid()
    users = [raw / ".draft.tmp", photos / ".thesis.docx.tmp", photos / ".rgb.png.abc123.tmp", photos / "sub" / ".x.tmp"]
    in_input = raw / f".restore-tmp-{dead}-k1ll3d01.tmp"  # restore's name, but --in is no output folder
    stale = [photos / f".restore-tmp-{dead}-k1ll3d00.tmp", photos / "sub" / f".restore-tmp-{dead}-k1ll3d02.tmp"]
    reused = photos / f".restore-tmp-{os.getpid()}-r3us3d00.tmp"  # its PID runs again, but it predates us
    locked = photos / f".restore-tmp-{dead}-l0cked00.tmp"  # a writer holds its lock
    for path in (*users, in_input, *stale, reused, locked):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    os.utime(reused, (time.time() - 3600, time.time() - 3600))
    with open(locked, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        report = run_batch(raw, photos, invert, BatchSettings(quiet=True))
    assert report.count("done") == 4
    assert all(path.read_bytes() == b"half a file" for path in (*users, in_input, locked))
    assert not any(path.exists() for path in (*stale, reused))


def test_temp_folders_are_deleted_when_done_and_removed_once_their_process_is_dead(tmp_path: Path) -> None:
    """A job's private folder (inputs fetched from object storage) is gone when its block
    ends, also on failure; a killed process's is removed by the clean-up, a live one's and
    a user's folder are not."""
    with pytest.raises(ValueError), temp_folder(tmp_path) as failed:
        (failed / "IM0001").write_bytes(b"a fetched copy")
        raise ValueError("the read failed")
    assert not failed.exists()
    dead = tmp_path / f".restore-tmp-{dead_pid()}-k1ll3d00.tmp"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "IM0001").write_bytes(b"left by kill -9")
    users = tmp_path / ".restore-tmp-notes"
    users.mkdir()
    with temp_folder(tmp_path) as live:
        assert remove_stale_temps([tmp_path]) == [dead]
        assert live.is_dir() and users.is_dir()
    assert sorted(tmp_path.iterdir()) == [users]


def test_a_killed_runs_fetch_folder_is_removed_by_the_next_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run reading object storage into a local --out, killed mid-job, left its fetched
    copies in the staging folder: the next read from object storage removes them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = staging_folder() / f".restore-tmp-{dead_pid()}-k1ll3d00.tmp"
    dead.mkdir()
    (dead / "IM0001").write_bytes(b"left by kill -9")
    with fetched([]) as folder:
        assert folder.parent == tmp_path / "restore-staging" and folder.is_dir()
        assert not dead.exists()


def test_processing_error_is_reported_and_batch_goes_on(mixed_tree: Path, tmp_path: Path) -> None:
    def fails_on_grey(image: Image, source: Path, progress: Progress | None) -> tuple[Image, dict]:
        if image.channels == 1:
            raise ValueError("grey is not supported by this stand-in")
        return invert(image, source, progress)

    report = run_batch(mixed_tree, tmp_path / "out", fails_on_grey, BatchSettings(quiet=True))
    failed = {Path(o.input).name: o.reason for o in report.outcomes if o.status == "failed"}
    assert failed["grey16.png"] == "grey is not supported by this stand-in"
    assert report.count("done") == 3


@pytest.mark.parametrize("error", [MemoryError("cannot allocate 80 GiB"), KeyError("x")])
def test_any_failure_of_one_input_is_reported_with_its_type(mixed_tree: Path, tmp_path: Path, error: Exception) -> None:
    """Not only the expected errors: a huge image's MemoryError or a decoder's bug on
    damaged bytes must not stop the batch either."""

    def fails_on_grey(image: Image, source: Path, progress: Progress | None) -> tuple[Image, dict]:
        if image.channels == 1:
            raise error
        return invert(image, source, progress)

    report = run_batch(mixed_tree, tmp_path / "out", fails_on_grey, BatchSettings(quiet=True))
    failed = {Path(o.input).name: o.reason for o in report.outcomes if o.status == "failed"}
    assert failed["grey16.png"] == f"{type(error).__name__}: {error}"
    assert report.count("done") == 3


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(BatchUsageError, match="no such file"):
        run_batch(tmp_path / "nope", tmp_path / "out", invert, BatchSettings(quiet=True))


class FolderUnits:
    """A stand-in for multi-file units: each folder's .txt files are one job, written as
    one file holding their joined contents; other files are not inputs of this batch."""

    def plan(self, files, destination, settings):
        folders: dict[Path, list[Path]] = {}
        for path, relative in files:
            if path.suffix == ".txt":
                folders.setdefault(relative.parent, []).append(path)
        return [Job(paths[0].parent, destination / folder / "joined.txt", members=tuple(paths))
                for folder, paths in folders.items()]

    def read(self, job, settings):
        return [path.read_text() for path in job.members]

    def write(self, output, result, settings):
        atomic_write(output, lambda temp: temp.write_text("|".join(result)))


def test_units_hook_plugs_other_inputs_into_the_same_engine(tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "a").mkdir(parents=True)
    for name in ("x.txt", "y.txt", "a/z.txt"):
        (source / name).write_text(name)
    seen = []

    def upper(parts: list[str], folder: Path, progress: Progress | None) -> tuple[list[str], dict]:
        seen.append(folder.name)
        return [part.upper() for part in parts], {"parts": len(parts)}

    report = run_batch(source, tmp_path / "out", upper, BatchSettings(quiet=True), units=FolderUnits())
    assert report.summary() == "2 done, 0 skipped, 0 failed" and sorted(seen) == ["a", "in"]
    assert (tmp_path / "out" / "joined.txt").read_text() == "X.TXT|Y.TXT"
    assert (tmp_path / "out" / "a" / "joined.txt").read_text() == "A/Z.TXT"
    again = run_batch(source, tmp_path / "out", upper, BatchSettings(quiet=True), units=FolderUnits())
    assert again.summary() == "0 done, 2 skipped, 0 failed"


def write_distinct_images(root: Path, names: list[str]) -> None:
    """One small image per name, each with its own grey level, so outputs can be told apart."""
    root.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        pixels = np.full((8, 8, 3), 20 + 20 * index, np.uint8)
        if name.endswith(".gif"):
            PIL.Image.fromarray(pixels).save(root / name)
        else:
            assert cv2.imwrite(str(root / name), pixels), name


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        ("same", {"photo.png": "photo.png", "photo.gif": "photo.gif.png", "pic.tif": "pic.tif", "pic.tiff": "pic.tiff"}),
        ("png", {"shot.jpg": "shot.jpg.png", "shot.png": "shot.png", "pic.tif": "pic.tif.png",
                 "pic.tiff": "pic.tiff.png", "Pic.bmp": "Pic.bmp.png"}),
        ("tif", {"pic.tif": "pic.tif", "pic.tiff": "pic.tiff.tif", "Pic.bmp": "Pic.bmp.tif"}),
    ],
)
def test_inputs_that_would_share_an_output_each_get_their_own(tmp_path: Path, ext: str, expected: dict) -> None:
    """The input named like the shared output keeps it; the others get their whole name as
    the stem (names equal but for case clash too: one file on macOS and Windows)."""
    write_distinct_images(tmp_path / "in", sorted(expected))
    out = tmp_path / "out"
    report = run_batch(tmp_path / "in", out, invert, BatchSettings(quiet=True, ext=ext))
    assert report.summary() == f"{len(expected)} done, 0 skipped, 0 failed"
    assert {Path(o.input).name: Path(o.output).name for o in report.outcomes} == expected
    for source, output in expected.items():  # each output holds its own input's result
        np.testing.assert_array_equal(read_image(out / output).pixels, 255 - read_image(tmp_path / "in" / source).pixels)


def test_a_clash_left_after_renaming_fails_the_later_input(tmp_path: Path) -> None:
    names = ["photo.gif", "photo.gif.png", "photo.png"]  # photo.gif's new name is taken by an input's
    write_distinct_images(tmp_path / "in", names)
    report = run_batch(tmp_path / "in", tmp_path / "out", invert, BatchSettings(quiet=True))
    outcomes = {Path(o.input).name: o for o in report.outcomes}
    assert report.count("done") == 2 and outcomes["photo.gif.png"].status == "failed"
    assert "is also that of" in outcomes["photo.gif.png"].reason and "photo.gif" in outcomes["photo.gif.png"].reason
    done = [o.output for o in report.outcomes if o.status == "done"]
    assert len(set(done)) == len(done)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.text(st.sampled_from(["a", "_", "-", ".", "/", "\\", "\0", " ", "é"]), max_size=8)
       | st.sampled_from(["/../../../escaped", "..", "/x", "_a/b", "\\x", "..\\..\\x", "a..b"]))
def test_a_suffix_cannot_lead_out_of_out(mixed_tree: Path, tmp_path: Path, suffix: str) -> None:
    """Any suffix is either refused (separators, '..', NUL) or keeps every output inside --out."""
    out = tmp_path / "out"
    unsafe = any(part in suffix for part in ("/", "\\", "\0", ".."))
    if unsafe:
        with pytest.raises(BatchUsageError, match="--suffix"):
            plan_jobs(mixed_tree, out, BatchSettings(suffix=suffix))
        return
    for job in plan_jobs(mixed_tree, out, BatchSettings(suffix=suffix)):
        if job.output is not None:
            assert os.path.normpath(job.output).startswith(str(out) + os.sep)
            assert job.output.name.endswith(suffix + job.output.suffix)


def test_outputs_never_land_in_in(tmp_path: Path) -> None:
    """--out a parent of --in: a sub-folder of --in named like --in would mirror into --in."""
    photos = tmp_path / "photos"
    write_distinct_images(photos / "raw" / "raw", ["a.png"])
    with pytest.raises(BatchUsageError, match="into --in"):
        plan_jobs(photos / "raw", photos, BatchSettings())
    assert plan_jobs(photos / "raw", photos / "raw" / "restored", BatchSettings())  # a new sub-folder of --in is fine


def test_a_previous_report_is_not_an_input(tmp_path: Path) -> None:
    """``restore superres --in denoised/`` after ``restore denoise --out denoised/``."""
    write_distinct_images(tmp_path / "in", ["a.png", "b.png"])
    run_batch(tmp_path / "in", tmp_path / "first", invert, BatchSettings(quiet=True))
    second = run_batch(tmp_path / "first", tmp_path / "second", invert, BatchSettings(quiet=True))
    assert second.summary() == "2 done, 0 skipped, 0 failed" and second.exit_code == 0
    (tmp_path / "first" / "sub").mkdir()
    (tmp_path / "first" / "sub" / "report.json").write_text("{}")  # a user's file of that name is still listed
    third = run_batch(tmp_path / "first", tmp_path / "third", invert, BatchSettings(quiet=True))
    assert [Path(o.input).name for o in third.outcomes if o.status == "failed"] == ["report.json"]


def test_an_input_folder_named_report_json_fails_alone(tmp_path: Path) -> None:
    write_distinct_images(tmp_path / "in", ["a.png"])
    write_distinct_images(tmp_path / "in" / "report.json", ["b.png"])
    out = tmp_path / "out"
    report = run_batch(tmp_path / "in", out, invert, BatchSettings(quiet=True))
    failed = {Path(o.input).name: o.reason for o in report.outcomes if o.status == "failed"}
    assert list(failed) == ["b.png"] and "report.json" in failed["b.png"]
    assert json.loads((out / "report.json").read_text())["summary"] == {"done": 1, "skipped": 0, "failed": 1}


def test_report_names_the_version_and_each_inputs_own_time(tmp_path: Path) -> None:
    """``b.png`` is read while ``a.png`` is processed (one second): its time must not include that wait."""
    write_distinct_images(tmp_path / "in", ["a.png", "b.png"])

    def slow_on_a(image: Image, source: Path, progress: Progress | None) -> tuple[Image, dict]:
        if source.name == "a.png":
            time.sleep(1.0)
        return invert(image, source, progress)

    run_batch(tmp_path / "in", tmp_path / "out", slow_on_a, BatchSettings(quiet=True, workers=1))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["restore_version"] == restore.__version__
    seconds = {Path(item["input"]).name: item["seconds"] for item in report["files"]}
    assert seconds["a.png"] >= 1.0 > seconds["b.png"]

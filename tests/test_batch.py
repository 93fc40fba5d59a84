"""The folder batch engine: mirrored tree, resume, bad inputs, atomic outputs, report."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from restore.engine.batch import BatchSettings, BatchUsageError, Job, plan_jobs, run_batch
from restore.engine.progress import Progress
from restore.io.atomic import atomic_write
from restore.io.image import Image


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


def test_refuses_to_overwrite_inputs(mixed_tree: Path) -> None:
    with pytest.raises(BatchUsageError, match="overwrite an input"):
        plan_jobs(mixed_tree, mixed_tree, BatchSettings())
    assert plan_jobs(mixed_tree, mixed_tree, BatchSettings(suffix="_x"))  # a suffix makes it safe


def test_single_file_and_suffix_and_format(mixed_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "single"
    report = run_batch(mixed_tree / "rgb.png", out, invert, BatchSettings(quiet=True, suffix="_inv", ext="tif"))
    assert report.exit_code == 0
    assert (out / "rgb_inv.tif").is_file()


def test_stale_temp_files_are_removed(mixed_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".rgb.png.abc123.tmp"
    stale.write_bytes(b"half a file")
    run_batch(mixed_tree, out, invert, BatchSettings(quiet=True))
    assert not stale.exists()


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

"""--in and --out in object storage: a real S3 API (moto in server mode on 127.0.0.1,
started and stopped by a fixture) and fsspec's memory://, checked against local runs.

The batch engine's guarantees must hold there as on disk: the tree mirrored byte for byte,
report.json on the output prefix, a rerun skipping what is done, a bad object failing
alone, no partial object under a final key even after kill -9, and no credentials in
anything restore writes or prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from restore.api import process_folder
from restore.cli import main
from restore.io.storage import StorageError, check_url, is_url, location
from s3_server import KEY_ID, SECRET, S3
from tiny_weights import write_tiny_denoise_weights, write_tiny_inpaint_weights

ROOT = Path(__file__).resolve().parents[1]
KILL_TIMEOUT = 120.0


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative POSIX path -> bytes), report.json left out."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != "report.json"}


def write_tree(root: Path, count: int = 3, size: int = 40) -> Path:
    """A small tree: images at the top and in a sub-folder, a hidden file and a text file."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(7)
    for index in range(count):
        folder = root if index % 2 == 0 else root / "sub" / "deeper"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = cv2.GaussianBlur(rng.random((size, size + index, 3)).astype(np.float32), (0, 0), 2.0)
        cv2.imwrite(str(folder / f"photo{index}.png"), (pixels * 255).astype(np.uint8))
    (root / ".hidden.png").write_bytes(b"not read")
    (root / "notes.txt").write_text("not an image")
    return root


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "restore", *args]


# -- URLs ----------------------------------------------------------------------------------


def test_urls_are_told_from_local_paths() -> None:
    assert is_url("s3://bucket/in/") and is_url("memory://x") and is_url("az://container/p")
    assert not any(is_url(value) for value in ("photos/", "/data/in", r"C:\photos", "C://photos", Path("s3:/b")))
    assert location("file:///tmp/photos") == Path("/tmp/photos")
    assert location("photos/") == Path("photos")
    assert str(location("memory://bucket/in/")) == "memory://bucket/in"


@pytest.mark.parametrize("url", ["s3://AKIAEXAMPLE:hunter2-secret@bucket/in/",
                                 "az://container/in?sv=2024&sig=hunter2-secret"])
def test_credentials_in_a_url_are_refused_without_being_repeated(url: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as refused:
        check_url(url)
    assert "hunter2-secret" not in str(refused.value)
    result = CliRunner().invoke(main, ["denoise", "--in", url, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "refused" in result.output and "hunter2-secret" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_protocol_without_its_package_says_which_to_install(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["denoise", "--in", "nosuchprotocol://bucket/in", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown protocol nosuchprotocol://" in result.output


@pytest.mark.parametrize("command_name", [["denoise"], ["medical", "denoise", "--modality", "ct"]])
def test_a_report_page_into_object_storage_is_refused(command_name: list[str], tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    page = CliRunner().invoke(main, [*command_name, "--in", str(tmp_path / "in"), "--out", "memory://pages/out",
                                     "--report", "html"])
    assert page.exit_code == 2 and "--report html writes into a local --out only" in page.output


def test_local_runs_do_not_load_fsspec(tmp_path: Path) -> None:
    """Local paths stay on the local code path: no storage library is even imported."""
    (write_tree(tmp_path / "in", count=1) / "notes.txt").unlink()
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    code = ("import sys; from restore.api import process_folder; "
            f"report = process_folder('denoise', {str(tmp_path / 'in')!r}, {str(tmp_path / 'out')!r}, "
            f"weights={str(weights)!r}, sigma=25.0, quiet=True); "
            "sys.exit(10 * report.exit_code + ('fsspec' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=KILL_TIMEOUT, check=False).returncode == 0


# -- S3 (moto) -----------------------------------------------------------------------------


def test_s3_to_s3_mirrors_the_local_run_byte_for_byte(s3: S3, tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "in")
    s3.upload(tree, "in")
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    options = ["--weights", str(weights), "--sigma", "25", "--quiet"]
    reference = CliRunner().invoke(main, ["denoise", "--in", str(tree), "--out", str(tmp_path / "local"), *options])
    args = command("denoise", "--in", s3.url("in/"), "--out", s3.url("out/"), *options)
    run = subprocess.run(args, env=s3.env, capture_output=True, text=True, timeout=KILL_TIMEOUT, check=False)
    assert run.returncode == reference.exit_code == 1, run.stderr  # notes.txt is not an image, as locally
    assert "notes.txt: not an image file" in run.stderr
    outputs = s3.objects("out")
    assert {key: s3.read(f"out/{key}") for key in outputs if key != "report.json"} == files(tmp_path / "local")
    report = json.loads(s3.read("out/report.json"))
    assert report["complete"] and report["source"] == s3.url("in") and report["destination"] == s3.url("out")
    assert report["summary"] == {"done": 3, "skipped": 0, "failed": 1}
    assert report["made_from"]["sub/deeper/photo1.png"] == s3.url("in/sub/deeper/photo1.png")
    assert report["settings"] == json.loads((tmp_path / "local" / "report.json").read_text())["settings"]
    assert SECRET not in run.stdout + run.stderr + s3.read("out/report.json").decode()
    assert KEY_ID not in s3.read("out/report.json").decode()

    again = subprocess.run(args, env=s3.env, capture_output=True, text=True, timeout=KILL_TIMEOUT, check=False)
    assert again.returncode == 1 and "0 done, 3 skipped, 1 failed" in again.stdout, again.stderr
    assert {key: entry["ETag"] for key, entry in s3.objects("out").items() if key != "report.json"} == \
        {key: entry["ETag"] for key, entry in outputs.items() if key != "report.json"}


def test_local_to_s3_and_back(s3: S3, tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "in")
    (tree / "notes.txt").unlink()
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    up = process_folder("denoise", tree, s3.url("up"), weights=str(weights), sigma=15.0, quiet=True)
    down = process_folder("denoise", s3.url("up"), tmp_path / "down", weights=str(weights), sigma=15.0, quiet=True)
    once = process_folder("denoise", tree, tmp_path / "once", weights=str(weights), sigma=15.0, quiet=True)
    twice = process_folder("denoise", tmp_path / "once", tmp_path / "twice", weights=str(weights), sigma=15.0,
                           quiet=True)
    assert up.exit_code == down.exit_code == once.exit_code == twice.exit_code == 0
    assert files(tmp_path / "down") == files(tmp_path / "twice")
    assert json.loads((tmp_path / "down" / "report.json").read_text())["source"] == s3.url("up")


def test_a_corrupt_object_fails_alone(s3: S3, tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "in", count=2)
    (tree / "notes.txt").unlink()
    (tree / "broken.png").write_bytes((tree / "photo0.png").read_bytes()[:60])
    (tree / "empty.jpg").write_bytes(b"")
    s3.upload(tree, "in")
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    report = process_folder("denoise", s3.url("in"), s3.url("out"), weights=str(weights), sigma=25.0, quiet=True)
    assert report.exit_code == 1 and report.summary() == "2 done, 0 skipped, 2 failed"
    reasons = {Path(outcome.input).name: outcome.reason for outcome in report.outcomes if outcome.status == "failed"}
    assert reasons["empty.jpg"] == "file is empty (0 bytes)"
    assert "corrupt or truncated PNG" in reasons["broken.png"] or "corrupt image header" in reasons["broken.png"]
    assert set(s3.objects("out")) == {"photo0.png", "sub/deeper/photo1.png", "report.json"}


def test_inpaint_masks_beside_inputs_and_under_masks_in_s3(s3: S3, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    tree = write_tree(tmp_path / "in", count=2)
    (tree / "notes.txt").unlink()
    hole = np.zeros((40, 40), np.uint8)
    hole[10:20, 5:30] = 255
    cv2.imwrite(str(tree / "photo0_mask.png"), hole)  # a sidecar: a mask, not an input
    masks = tmp_path / "masks"
    (masks / "sub" / "deeper").mkdir(parents=True)
    cv2.imwrite(str(masks / "sub" / "deeper" / "photo1.png"), np.pad(hole, ((0, 0), (0, 1))))
    s3.upload(tree, "in")
    s3.upload(masks, "masks")
    weights = write_tiny_inpaint_weights(tmp_path / "inpaint.safetensors")
    local = process_folder("inpaint", tree, tmp_path / "local", weights=str(weights), masks_dir=masks, quiet=True)
    result = CliRunner().invoke(main, ["inpaint", "--in", s3.url("in"), "--out", s3.url("out"), "--weights",
                                       str(weights), "--masks", s3.url("masks/"), "--quiet"])
    assert local.exit_code == 0 and result.exit_code == 0, result.output
    outputs = {key: s3.read(f"out/{key}") for key in s3.objects("out") if key != "report.json"}
    assert outputs == files(tmp_path / "local")
    report = json.loads(s3.read("out/report.json"))
    masks_used = {Path(entry["input"]).name: entry["info"]["mask"] for entry in report["files"]}
    assert masks_used == {"photo0.png": s3.url("in/photo0_mask.png"),
                          "photo1.png": s3.url("masks/sub/deeper/photo1.png")}
    assert report["settings"]["masks_dir"] == s3.url("masks")


def test_shipped_default_weights_on_the_samples(s3: S3, tmp_path: Path) -> None:
    """The default weights of each image's channels, as a user runs them on the samples."""
    samples = ROOT / "datasets" / "samples" / "noisy" / "grey"
    s3.upload(samples, "samples")
    local = process_folder("denoise", samples, tmp_path / "local", sigma=25.0, tile=128, quiet=True)
    remote = process_folder("denoise", s3.url("samples"), s3.url("out"), sigma=25.0, tile=128, quiet=True)
    assert local.exit_code == remote.exit_code == 0
    assert {key: s3.read(f"out/{key}") for key in s3.objects("out") if key != "report.json"} == \
        files(tmp_path / "local")


# -- memory:// (a store without atomic uploads: temp key, then moved into place) ------------


def test_memory_urls_mirror_the_local_run(tmp_path: Path) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    tree = write_tree(tmp_path / "in")
    prefix = f"/restore-test-{uuid.uuid4().hex[:8]}"
    for path in tree.rglob("*"):
        if path.is_file():
            memory.pipe_file(f"{prefix}/in/{path.relative_to(tree).as_posix()}", path.read_bytes())
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    process_folder("denoise", tree, tmp_path / "local", weights=str(weights), sigma=25.0, quiet=True)
    result = CliRunner().invoke(main, ["denoise", "--in", f"memory://{prefix}/in", "--out",
                                       f"memory://{prefix}/out", "--weights", str(weights), "--sigma", "25",
                                       "--quiet"])
    assert result.exit_code == 1, result.output  # notes.txt
    written = {key[len(prefix) + 5:]: memory.cat_file(key) for key in memory.find(f"{prefix}/out")}
    assert written.pop("report.json")
    assert written == files(tmp_path / "local")  # no temp key left either
    memory.rm(prefix, recursive=True)


# -- kill -9 -------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_s3_run_leaves_only_complete_objects_and_resumes(s3: S3, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    tree, count = tmp_path / "in", 40
    tree.mkdir()
    rng = np.random.default_rng(3)
    for index in range(count):
        smooth = cv2.GaussianBlur(rng.random((96, 96, 3)).astype(np.float32), (0, 0), 3.0)
        cv2.imwrite(str(tree / f"{index:03d}.png"), (smooth * 255).astype(np.uint8))
    s3.upload(tree, "in")
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    process_folder("denoise", tree, tmp_path / "local", weights=str(weights), sigma=25.0, quiet=True)
    expected = files(tmp_path / "local")
    args = command("denoise", "--in", s3.url("in"), "--out", s3.url("out"), "--weights", str(weights),
                   "--sigma", "25", "--workers", "1", "--quiet")

    def check_listing() -> dict[str, dict]:
        """Every object under out/ now: report.json, a temp key restore owns, or a
        complete output (its bytes those of the local run)."""
        objects = s3.objects("out")
        for key, entry in objects.items():
            if key != "report.json" and not key.startswith(".restore-tmp-"):
                assert s3.read(f"out/{key}") == expected[key], f"partial or wrong object under {key}"
        return objects

    first = subprocess.Popen(args, env=s3.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + KILL_TIMEOUT
    seen: dict[str, dict] = {}
    while len([key for key in seen if key in expected]) < 3:
        assert first.poll() is None, "the run ended before it could be killed mid-way"
        assert time.monotonic() < deadline, "the run never wrote its first outputs"
        seen = check_listing()
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    finished = {key: entry for key, entry in check_listing().items() if key in expected}
    assert 3 <= len(finished) < count

    second = subprocess.run(args, env=s3.env, capture_output=True, text=True, timeout=KILL_TIMEOUT, check=False)
    assert second.returncode == 0, second.stderr
    report = json.loads(s3.read("out/report.json"))
    assert report["summary"] == {"done": count - len(finished), "skipped": len(finished), "failed": 0}
    final = check_listing()
    assert set(final) == {*expected, "report.json"}
    for key, entry in finished.items():  # not processed twice: the same object, untouched
        assert (final[key]["ETag"], final[key]["LastModified"]) == (entry["ETag"], entry["LastModified"])


def test_out_inside_in_and_out_equal_to_in_as_for_folders(tmp_path: Path) -> None:
    import fsspec

    from restore.engine.batch import BatchUsageError

    memory = fsspec.filesystem("memory")
    tree = write_tree(tmp_path / "in", count=2)
    (tree / "notes.txt").unlink()
    prefix = f"/restore-test-{uuid.uuid4().hex[:8]}"
    for path in tree.rglob("*.png"):
        memory.pipe_file(f"{prefix}/in/{path.relative_to(tree).as_posix()}", path.read_bytes())
    weights = write_tiny_denoise_weights(tmp_path / "tiny.safetensors")
    with pytest.raises(BatchUsageError, match="is the --in folder"):
        process_folder("denoise", f"memory://{prefix}/in", f"memory://{prefix}/in/", weights=str(weights))
    for _ in range(2):  # the second run must not take the first one's outputs as inputs
        report = process_folder("denoise", f"memory://{prefix}/in", f"memory://{prefix}/in/restored",
                                weights=str(weights), sigma=25.0, quiet=True)
        assert [Path(outcome.input).name for outcome in report.outcomes] == ["photo0.png", "photo1.png"]
    assert report.summary() == "0 done, 2 skipped, 0 failed"
    memory.rm(prefix, recursive=True)

"""``--cluster``: batches on a real Ray cluster of two nodes on 127.0.0.1 (a head and a
worker, one CPU each, started and stopped by a fixture: only the processes it started),
checked against local runs byte for byte, from a local folder and from S3 (moto) to S3.

The fault test kills the worker node mid-batch (SIGKILL of its whole process group, as a
lost machine) and checks that a rerun leaves every output as a local run makes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ray_cluster import LocalCluster
from s3_server import S3, aws_settings, free_port
from test_storage import files, write_tree
from tiny_weights import write_tiny_denoise_weights

RUN_TIMEOUT = 600


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_denoise_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


def start_cluster(endpoint: str) -> LocalCluster:
    """A head and one worker node, their workers pointed at the S3 server ``endpoint``."""
    pytest.importorskip("ray.data")
    cluster = LocalCluster(env={**os.environ, **aws_settings(endpoint)})
    try:
        cluster.start_head()
        cluster.add_worker()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def ray_cluster(s3_endpoint: str) -> Iterator[LocalCluster]:
    cluster = start_cluster(s3_endpoint)
    try:
        yield cluster
    finally:
        cluster.stop()


def restore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``restore denoise`` with the tiny weights' settings, fp32 (outputs equal everywhere)."""
    return subprocess.run([sys.executable, "-m", "restore", "denoise", "--precision", "fp32", "--sigma", "25",
                           "--quiet", *args], capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          env={**(env or os.environ), "OMP_NUM_THREADS": "1"})


def ran(run: subprocess.CompletedProcess, code: int = 1) -> subprocess.CompletedProcess:
    """``run``, checked to exit with ``code``: 1 where notes.txt (not an image) fails, as it should."""
    assert run.returncode == code, run.stdout[-3000:] + run.stderr[-5000:]
    return run


def same_report(cluster: dict, local: dict) -> None:
    """The cluster's report says what the local run's says, but how it ran (execution, times)."""
    assert cluster["complete"] and cluster["summary"] == local["summary"]
    assert cluster["settings"] == local["settings"]
    assert sorted(cluster["made_from"]) == sorted(local["made_from"])
    shown = [{key: entry[key] for key in ("status", "reason")} | {"sigma": entry["info"].get("sigma")}
             for entry in cluster["files"]]
    assert shown == [{key: entry[key] for key in ("status", "reason")} | {"sigma": entry["info"].get("sigma")}
                     for entry in local["files"]]


def test_cluster_without_ray_says_which_extra_to_install(tmp_path: Path, weights: Path) -> None:
    write_tree(tmp_path / "in", count=1)
    script = ("import sys; sys.modules['ray'] = None; from restore.cli import main; "
              f"main(['denoise', '--in', {str(tmp_path / 'in')!r}, '--out', {str(tmp_path / 'out')!r}, "
              f"'--weights', {str(weights)!r}, '--cluster', 'auto'])")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert run.returncode == 2, run.stderr
    assert "restore[cluster]" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


def test_an_address_where_no_cluster_answers_is_a_usage_error(tmp_path: Path, weights: Path) -> None:
    pytest.importorskip("ray.data")
    write_tree(tmp_path / "in", count=1)
    run = restore("--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights", str(weights),
                  "--cluster", f"127.0.0.1:{free_port()}")
    assert run.returncode == 2 and "no Ray cluster answers there" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "out").exists()


def test_local_folder_on_the_cluster_equals_a_local_run(ray_cluster: LocalCluster, tmp_path: Path,
                                                        weights: Path) -> None:
    source = write_tree(tmp_path / "in", count=4)
    ran(restore("--in", str(source), "--out", str(tmp_path / "local"), "--weights", str(weights)))
    run = ran(restore("--in", str(source), "--out", str(tmp_path / "cluster"), "--weights", str(weights),
                      "--cluster", ray_cluster.address, "--cluster-actors", "2"))
    assert "4 done, 0 skipped, 1 failed" in run.stdout and "notes.txt: not an image file" in run.stderr
    assert files(tmp_path / "cluster") == files(tmp_path / "local")
    cluster = json.loads((tmp_path / "cluster" / "report.json").read_text())
    same_report(cluster, json.loads((tmp_path / "local" / "report.json").read_text()))
    assert cluster["execution"]["cluster"] == ray_cluster.address
    again = ran(restore("--in", str(source), "--out", str(tmp_path / "cluster"), "--weights", str(weights),
                       "--cluster", ray_cluster.address))
    assert "0 done, 4 skipped, 1 failed" in again.stdout  # resume: nothing redone
    assert files(tmp_path / "cluster") == files(tmp_path / "local")


def test_s3_to_s3_on_the_cluster_equals_a_local_run(ray_cluster: LocalCluster, s3: S3, tmp_path: Path,
                                                   weights: Path) -> None:
    source = write_tree(tmp_path / "in", count=3)
    s3.upload(source, "in")
    ran(restore("--in", str(source), "--out", str(tmp_path / "local"), "--weights", str(weights)))
    ran(restore("--in", s3.url("in/"), "--out", s3.url("out/"), "--weights", str(weights),
                "--cluster", ray_cluster.address, env=s3.env))
    written = {key: s3.read(f"out/{key}") for key in s3.objects("out") if key != "report.json"}
    assert written == files(tmp_path / "local")  # no temp keys either
    report = json.loads(s3.read("out/report.json"))
    same_report(report, json.loads((tmp_path / "local" / "report.json").read_text()))
    assert report["made_from"]["sub/deeper/photo1.png"] == s3.url("in/sub/deeper/photo1.png")


@pytest.mark.slow
def test_a_worker_node_killed_mid_batch_loses_only_its_inputs_in_flight(s3_endpoint: str, tmp_path: Path,
                                                                        weights: Path) -> None:
    source = write_tree(tmp_path / "in", count=24, size=256)
    ran(restore("--in", str(source), "--out", str(tmp_path / "local"), "--weights", str(weights)))
    cluster = start_cluster(s3_endpoint)
    try:
        worker = cluster.nodes[-1]
        args = [sys.executable, "-m", "restore", "denoise", "--precision", "fp32", "--sigma", "25", "--quiet",
                "--in", str(source), "--out", str(tmp_path / "cluster"), "--weights", str(weights),
                "--cluster", cluster.address, "--cluster-actors", "2"]
        run = subprocess.Popen(args, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + RUN_TIMEOUT
        while not list((tmp_path / "cluster").rglob("photo*.png")) and run.poll() is None:
            assert time.monotonic() < deadline, "no output within the time limit"
            time.sleep(0.1)
        assert run.poll() is None, "the batch ended before the worker node could be killed; give it more inputs"
        cluster.kill(worker)
        first = run.communicate(timeout=RUN_TIMEOUT)
        assert run.returncode == 1, first  # notes.txt fails; every image is done (Ray's retries) or failed
        rerun = ran(restore("--in", str(source), "--out", str(tmp_path / "cluster"), "--weights", str(weights),
                            "--cluster", cluster.address))
    finally:
        cluster.stop()
    assert "0 failed" not in rerun.stdout and ", 1 failed" in rerun.stdout  # only notes.txt
    assert files(tmp_path / "cluster") == files(tmp_path / "local")  # no temp files, every output complete
    report = json.loads((tmp_path / "cluster" / "report.json").read_text())
    assert report["complete"] and report["summary"]["done"] + report["summary"]["skipped"] == 24


def test_medical_scans_one_per_task_on_the_cluster(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    """A DICOM series and a NIfTI, each one job (one actor call), as a local run does them."""
    pydicom = pytest.importorskip("pydicom")
    nibabel = pytest.importorskip("nibabel")
    from medical_files import phantom, write_dicom_series, write_identity_weights, write_nifti

    source = tmp_path / "in"
    write_dicom_series(source / "patient" / "series", phantom((3, 16, 16), seed=1, high=4095), modality="MR",
                       intercept=0.0)
    write_nifti(source / "brain.nii.gz", phantom((16, 16, 4), seed=2, high=900).astype(np.int16))
    weights = write_identity_weights(tmp_path / "identity.safetensors")
    outputs = {}
    for name, extra in (("local", []), ("cluster", ["--cluster", ray_cluster.address])):
        ran(subprocess.run([sys.executable, "-m", "restore", "medical", "denoise", "--modality", "mr", "--quiet",
                            "--in", str(source), "--out", str(tmp_path / name), "--weights", str(weights), *extra],
                           capture_output=True, text=True, timeout=RUN_TIMEOUT), code=0)
        outputs[name] = json.loads((tmp_path / name / "report.json").read_text())
    same_report(outputs["cluster"], outputs["local"])
    assert outputs["cluster"]["summary"] == {"done": 2, "skipped": 0, "failed": 0}
    for path in sorted((tmp_path / "local" / "patient" / "series").iterdir()):
        cluster = tmp_path / "cluster" / "patient" / "series" / path.name
        assert np.array_equal(pydicom.dcmread(path).pixel_array, pydicom.dcmread(cluster).pixel_array)
    volumes = [np.asarray(nibabel.load(tmp_path / name / "brain.nii.gz").dataobj) for name in ("local", "cluster")]
    assert np.array_equal(*volumes)

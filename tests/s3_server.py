"""A real S3 API for tests: moto in server mode on a free port of 127.0.0.1, started and
stopped by a fixture (only the process it started), and a fresh bucket per test with the
AWS settings a user gives for MinIO or moto. Registered for every test module by
``pytest_plugins`` in conftest.py (tests/test_storage.py, tests/test_cluster.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SECRET = "restore-test-secret-Zq8v"  # the S3 secret key: must never be printed or written
KEY_ID = "restoretestkeyid"
SERVER_START = 60.0  # seconds moto may take to answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1; stops the one process it started."""
    pytest.importorskip("s3fs")
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto's S3 server did not start on {endpoint}")
                time.sleep(0.2)
        forget_s3_clients()
        yield endpoint
    finally:
        forget_s3_clients()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def forget_s3_clients() -> None:
    """Drop the S3 filesystems fsspec keeps per process: each holds a client bound to the
    endpoint of its time, and every test module has its own server (a new port)."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def aws_settings(endpoint: str) -> dict[str, str]:
    """The environment that points the AWS clients (boto3, s3fs) at ``endpoint``."""
    return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint}


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    """A fresh bucket, with the AWS settings in this process's environment (and in
    :attr:`S3.env` for subprocesses), as a user sets them for MinIO or moto."""
    for name, value in aws_settings(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3

    bucket = S3(boto3.client("s3", endpoint_url=s3_endpoint), f"restore-{uuid.uuid4().hex[:12]}")
    bucket.client.create_bucket(Bucket=bucket.name)
    yield bucket


class S3:
    def __init__(self, client, name: str) -> None:
        self.client, self.name = client, name

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def url(self, prefix: str) -> str:
        return f"s3://{self.name}/{prefix}"

    def upload(self, folder: Path, prefix: str) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.client.put_object(Bucket=self.name, Key=f"{prefix}/{path.relative_to(folder).as_posix()}",
                                       Body=path.read_bytes())

    def objects(self, prefix: str) -> dict[str, dict]:
        """Every object under ``prefix/`` (relative key -> its listing entry)."""
        found = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix + "/"):
            for entry in page.get("Contents", []):
                found[entry["Key"][len(prefix) + 1:]] = entry
        return found

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

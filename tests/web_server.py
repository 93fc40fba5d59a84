"""A real ``restore serve`` process on a free port of 127.0.0.1, for the tests that need
one (the browser and the load test): started, waited for, stopped at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def restore_server(*options: str, start_seconds: float = 120) -> Iterator[str]:
    """``restore serve --port P OPTIONS...`` running; yields its base URL (``http://127.0.0.1:P``)."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "restore", "serve", "--port", str(port), *options],
                               cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"restore serve exited with {process.returncode}: {process.stdout.read()}")
            try:
                with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2) as answer:
                    if json.load(answer)["status"] == "ok":
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""Real HTTP servers on a free port of 127.0.0.1 for the web tests: a ``restore serve``
process (the browser and the load test), or an app built in the test process and served by
uvicorn in a thread (the API tests, which give the app their own settings and parsers).
Requests go over real sockets either way, with no test client standing in for the server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import uvicorn

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Server:
    """A running ``restore serve``: its base URL (``http://127.0.0.1:P``) and process id."""

    url: str
    pid: int

    def peak_memory(self) -> int:
        """The most resident memory the process has held so far, in bytes (Linux's VmHWM)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) * 1024


@contextmanager
def restore_server(*options: str, start_seconds: float = 120) -> Iterator[Server]:
    """``restore serve --port P OPTIONS...`` running until the block ends."""
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
        yield Server(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ApiClient:
    """``get``/``post`` on paths of one server's base URL, answering ``requests`` responses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def get(self, path: str, **arguments: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=300, **arguments)

    def post(self, path: str, **arguments: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=300, **arguments)


@contextmanager
def app_server(app: Any, start_seconds: float = 30) -> Iterator[ApiClient]:
    """``app`` served by uvicorn in a thread of this process; yields a client of it."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_seconds
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start the app")
        time.sleep(0.05)
    try:
        yield ApiClient(f"http://127.0.0.1:{server.config.port}")
    finally:
        server.should_exit = True
        thread.join(30)

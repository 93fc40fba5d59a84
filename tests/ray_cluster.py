"""A local Ray cluster for tests and bench/cluster.py: a head node and worker nodes on
127.0.0.1, each ``ray start --block`` in a process group of its own, with its own temp
folder, stopped by signalling only those groups (``ray stop`` would stop every Ray on
the machine, other users' included)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from s3_server import free_port

START_TIMEOUT = 120.0  # seconds a node may take to join, on a busy two-core machine
STOP_TIMEOUT = 10.0


def _ray_command() -> list[str]:
    """``ray`` of this interpreter's environment."""
    return [str(Path(sys.executable).with_name("ray"))]


class LocalCluster:
    """Nodes of one Ray cluster on this machine, each with ``cpus`` logical CPUs and its
    processes' torch limited to ``threads`` threads (OMP_NUM_THREADS). Their temp folders
    and logs are in a short-named folder of the system's temp (Ray's socket paths must fit
    in 107 bytes), deleted by :meth:`stop`."""

    def __init__(self, cpus: int = 1, threads: int = 1, env: dict[str, str] | None = None) -> None:
        self.root, self.cpus = Path(tempfile.mkdtemp(prefix="restore-ray-")), cpus
        self.env = {**(env or os.environ), "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": str(threads),
                    "MKL_NUM_THREADS": str(threads)}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []

    def _start(self, name: str, arguments: list[str]) -> subprocess.Popen:
        temp = self.root / name
        temp.mkdir(parents=True, exist_ok=True)
        ports = ["--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
                 "--metrics-export-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
                 "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port())]
        command = [*_ray_command(), "start", "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1",
                   "--num-cpus", str(self.cpus), "--num-gpus", "0", "--temp-dir", str(temp), *ports, *arguments]
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - kept for the node's life
        node = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(node)
        return node

    def start_head(self) -> None:
        self._start("head", ["--head", "--port", str(self.port), "--include-dashboard", "false",
                             "--ray-client-server-port", str(free_port()), "--dashboard-port", str(free_port())])
        self.wait_for_nodes(1)

    def add_worker(self) -> subprocess.Popen:
        node = self._start(f"worker{len(self.nodes)}", ["--address", self.address])
        self.wait_for_nodes(len(self.nodes))
        return node

    def alive_nodes(self) -> int:
        """Nodes the head lists as alive (asked with ``ray status`` in a subprocess: this
        process never joins the cluster)."""
        result = subprocess.run([*_ray_command(), "status", "--address", self.address], env=self.env,
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            return 0
        active = result.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return sum(line.strip().startswith("1 node_") for line in active.splitlines())

    def wait_for_nodes(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while self.alive_nodes() < count:
            for node in self.nodes:
                if node.poll() is not None:
                    raise RuntimeError(f"a Ray node exited ({node.returncode}); see {self.root}/*.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} Ray node(s) did not join within {START_TIMEOUT:.0f} s; see {self.root}")
            time.sleep(1.0)

    def kill(self, node: subprocess.Popen) -> None:
        """SIGKILL a node's whole process group (its raylet, its workers): a machine lost."""
        _signal_group(node, signal.SIGKILL)
        node.wait()

    def stop(self) -> None:
        """SIGTERM each node's group (``ray start --block`` stops its processes on it), then
        SIGKILL whatever of those groups is left; worker nodes first, the head last."""
        for node in reversed(self.nodes):
            _signal_group(node, signal.SIGTERM)
            try:
                node.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(node, signal.SIGKILL)
            node.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _signal_group(node: subprocess.Popen, sent: signal.Signals) -> None:
    try:
        os.killpg(node.pid, sent)
    except ProcessLookupError:  # the group is gone already
        pass

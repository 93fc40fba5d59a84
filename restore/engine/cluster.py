"""Batches on a Ray cluster (``--cluster ADDRESS``): the batch engine's jobs run as a Ray
Data pipeline instead of this process's loop.

The driver (this process) lists ``--in``, decides what resume skips and writes report.json,
exactly as for a local run (restore.engine.batch.run_batch, handed a :class:`RayExecutor`).
The pending jobs then stream through three stages on the cluster:

- reading and decoding, in CPU tasks (``Units.read``);
- the network, in a pool of actors that each build the per-image function once (the
  weights loaded once per actor; one GPU each where the cluster has GPUs) and call
  :func:`restore.engine.batch.process_job` on each input, as the local loop does;
- writing, in CPU tasks, with the units' own atomic writer, straight to ``--out`` (a local
  path the nodes share, or a storage URL).

Each input's outcome comes back to the driver, which reports progress and merges them into
the one report.json. An input whose output was written is done even if the driver never
hears of it (the rerun finds it, as after a kill); one in flight on a node that dies is
retried by Ray Data or, if the run stops, reported failed and redone by the rerun.

Ray is imported only here and only when a run asks for a cluster, so installs without the
``cluster`` extra work as before. Local paths are read and written on the nodes with the
driver's working directory: they must be visible there at the same path (a shared file
system); storage URLs need nothing shared but the credentials.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import socket
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from restore.engine.batch import (
    BatchSettings, Executor, ImageFunction, Job, Outcome, Recorded, Units, process_job, timed, write_output,
)

CLUSTER_EXTRA = "pip install 'restore[cluster]' (Ray Data)"
CONNECT_TIMEOUT = 10.0  # seconds a cluster's head may take to accept a connection
# CPUs a read or write task reserves: on GPU nodes one (decoding is the CPU work that feeds a
# GPU); without GPUs the actors reserve none (they could not restart on a smaller set of nodes
# and leave a CPU for the tasks), and a node runs two tasks per CPU beside them.
IO_TASK_CPUS = 1.0
IO_TASK_CPUS_BESIDE_CPU_ACTORS = 0.5
# Rows per block of the job list: a block is the unit a read task takes, so small blocks
# spread the work evenly; more than this many blocks only burdens the driver.
MAX_BLOCKS = 10_000


class ClusterError(RuntimeError):
    """The cluster cannot be used: Ray is not installed, or the address does not answer."""


@dataclass(frozen=True)
class ClusterSettings:
    """Where a batch runs: ``cluster`` is the address of a Ray cluster as ``ray.init``
    takes it (``auto``: RAY_ADDRESS or the cluster started on this machine; ``HOST:PORT``;
    ``ray://HOST:PORT`` through the Ray client), None to run here. ``cluster_actors``: how
    many actors run the network (None: one per GPU of the cluster, or one per node on a
    cluster without GPUs)."""

    cluster: str | None = None
    cluster_actors: int | None = None

    def __post_init__(self) -> None:
        if self.cluster_actors is not None and self.cluster_actors < 1:
            raise ValueError(f"cluster_actors must be 1 or more, not {self.cluster_actors}")


class RayExecutor:
    """An :class:`~restore.engine.batch.Executor` that runs jobs on a Ray cluster.

    ``make_process`` builds the per-image function on each actor (e.g. a ``functools.partial``
    of the processor class and its options): it is pickled, so the weights are loaded on the
    actor's own device, once."""

    def __init__(self, settings: ClusterSettings, make_process: Callable[[], ImageFunction]) -> None:
        if settings.cluster is None:
            raise ValueError("RayExecutor needs a cluster address")
        self.settings, self.make_process = settings, make_process
        self._ray: Any = None

    def connect(self) -> None:
        """Join the cluster now, so that an address that does not answer stops the command
        before any listing or writing."""
        ray = import_ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the cluster
        address = self.settings.cluster
        _check_answers(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except Exception as error:  # ConnectionError, or whatever the client raises
            raise ClusterError(f"--cluster {address}: cannot join the Ray cluster there ({error}); start it with "
                               f"`ray start --head` or give the address `ray status` shows") from error
        self._ray = ray

    def run(self, jobs: list[Job], units: Units, settings: BatchSettings,
            finished: Callable[[Job, Outcome], None]) -> None:
        if self._ray is None:
            self.connect()
        ray = self._ray
        try:
            if jobs:  # settings travel to the nodes: without the caller's progress observer
                self._stream(ray, jobs, units, dataclasses.replace(settings, progress=None), finished)
        finally:
            ray.shutdown()

    def _stream(self, ray: Any, jobs: list[Job], units: Units, settings: BatchSettings,
                finished: Callable[[Job, Outcome], None]) -> None:
        import logging

        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver's own bar counts inputs
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        actors = self.settings.cluster_actors or gpus or _alive_nodes(ray)
        io_cpus = IO_TASK_CPUS if gpus else IO_TASK_CPUS_BESIDE_CPU_ACTORS
        where = {"cwd": os.getcwd(), "units": units, "settings": settings}
        rows = [{"index": index, "job": pickle.dumps(job)} for index, job in enumerate(jobs)]
        with warnings.catch_warnings():  # Ray deprecates passing scheduling options as keywords
            warnings.simplefilter("ignore")
            dataset = (
                ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS))
                .map(_read_row, fn_kwargs=where, num_cpus=io_cpus)
                .map_batches(_network_class(self.make_process, where["cwd"]), batch_size=1,
                             compute=ray.data.ActorPoolStrategy(size=actors),
                             num_gpus=1 if gpus else 0, num_cpus=1 if gpus else 0,
                             scheduling_strategy="SPREAD")
                .map(_write_row, fn_kwargs=where, num_cpus=io_cpus)
            )
        left = dict(enumerate(jobs))
        try:
            for row in dataset.iter_rows():
                job = left.pop(int(row["index"]))
                finished(job, _driver_outcome(job, json.loads(row["outcome"])))
        except Exception as error:  # a lost node beyond Ray's retries, the cluster gone...
            reason = (f"the cluster run stopped before this input was done ({type(error).__name__}: "
                      f"{str(error).splitlines()[0] if str(error) else ''}); run the command again to do it")
            for job in left.values():
                finished(job, Outcome(_shown(job.source), None, "failed", reason=reason))


def cluster_executor(settings: ClusterSettings, make_process: Callable[[], ImageFunction],
                     recorded: Recorded) -> Executor | None:
    """Where a batch runs: None (here) without a cluster address, else a joined Ray cluster
    whose actors each build their per-image function with ``make_process``; the address is
    recorded with how the outputs were made (``recorded.execution``)."""
    if settings.cluster is None:
        return None
    executor = RayExecutor(settings, make_process)
    executor.connect()
    recorded.execution["cluster"] = settings.cluster
    return executor


def _check_answers(address: str) -> None:
    """A ``HOST:PORT`` where nothing listens is refused at once (``ray.init`` retries for
    minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ClusterError(f"--cluster {address}: no Ray cluster answers there ({error.strerror or error}); start "
                           f"one with `ray start --head`, or give the address `ray status` shows") from error


def import_ray() -> Any:
    """The ``ray`` module, or a ClusterError saying which extra installs it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra's other half
    except ImportError as error:
        raise ClusterError(f"--cluster needs Ray, which is not installed ({error}): {CLUSTER_EXTRA}") from error
    return ray


def _alive_nodes(ray: Any) -> int:
    return max(1, sum(1 for node in ray.nodes() if node.get("Alive")))


def _shown(path: Any) -> str:
    from restore.io.files import display_path

    return display_path(path)


def _driver_outcome(job: Job, fields: dict[str, Any]) -> Outcome:
    """An outcome sent back by the cluster, its paths named as the driver names them."""
    outcome = Outcome(**fields)
    outcome.input = _shown(job.source)
    if outcome.output is not None:
        outcome.output = _shown(job.output)
    return outcome


def _enter(cwd: str) -> None:
    """Work in the driver's directory where the node has it, so that relative local paths
    (--in, --out, --weights, --masks) name the same files as on the driver."""
    if os.path.isdir(cwd) and os.getcwd() != cwd:
        os.chdir(cwd)


def _read_row(row: dict[str, Any], cwd: str, units: Units, settings: BatchSettings) -> dict[str, Any]:
    """Stage 1 (CPU task): the job's input decoded, pickled with the seconds it took, or
    the failure's reason (raised again on the actor, so the outcome is process_job's)."""
    _enter(cwd)
    job = pickle.loads(row["job"])
    try:
        decoded = pickle.dumps(timed(units.read, job, settings), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # reported for this input alone, as by the local loop
        decoded = pickle.dumps(_ReadFailed(error))
    return {"index": row["index"], "job": row["job"], "payload": decoded}


class _ReadFailed:
    """Why an input could not be read, carried to the actor as the exception itself where
    it can be pickled, else as its type and message."""

    def __init__(self, error: Exception) -> None:
        try:
            pickle.loads(pickle.dumps(error))
            self.error = error
        except Exception:  # an exception type that does not survive pickling
            self.error = RuntimeError(f"{type(error).__name__}: {error}")

    def raise_(self) -> tuple[Any, float]:
        raise self.error


def _network_class(make_process: Callable[[], ImageFunction], cwd: str) -> type:
    """:class:`_Network` with its factory and directory bound in the class itself, which is
    pickled whole to the actors (constructor arguments would be kept in the object store,
    where a restarted actor may no longer find them)."""
    return type("Network", (_Network,), {"make_process": staticmethod(make_process), "cwd": cwd})


class _Network:
    """Stage 2 (actor): the per-image function, built once per actor, on each input."""

    make_process: Callable[[], ImageFunction]
    cwd: str

    def __init__(self) -> None:
        _enter(self.cwd)
        self.process = self.make_process()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"index": [], "job": [], "payload": [], "outcome": []}
        for index, job_bytes, payload in zip(batch["index"], batch["job"], batch["payload"]):
            job = pickle.loads(job_bytes)
            decoded = pickle.loads(payload)
            read = decoded.raise_ if isinstance(decoded, _ReadFailed) else (lambda value=decoded: value)
            outcome, result = process_job(job, read, self.process)
            out["index"].append(int(index))
            out["job"].append(job_bytes)
            out["payload"].append(b"" if result is None else pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
            out["outcome"].append(json.dumps(asdict(outcome)))
        return out


def _write_row(row: dict[str, Any], cwd: str, units: Units, settings: BatchSettings) -> dict[str, Any]:
    """Stage 3 (CPU task): the result written to --out with the units' atomic writer; only
    the outcome goes back to the driver."""
    outcome = Outcome(**json.loads(row["outcome"]))
    if outcome.status == "done":
        _enter(cwd)
        job, result = pickle.loads(row["job"]), pickle.loads(row["payload"])
        write_output(outcome, lambda: timed(units.write, job.output, result, settings))
    return {"index": row["index"], "outcome": json.dumps(asdict(outcome))}

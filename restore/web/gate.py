"""How many requests run at once: ``workers`` run, up to ``queue`` more wait, the rest are
turned away at once with 503 and Retry-After. Memory stays bounded by ``workers`` images
whatever the load.

Threads, not asyncio primitives: the work runs in worker threads, and one Gate may serve
several event loops (each TestClient has its own)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from restore.web.errors import ApiError

Result = TypeVar("Result")


class Gate:
    def __init__(self, workers: int, queue: int, retry_after: int) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.retry_after = retry_after
        self._running = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Requests running or waiting now."""
        return self._admitted

    @contextmanager
    def _admission(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self.capacity:
                raise ApiError(503, f"the server is busy ({self.workers} running, {self.capacity - self.workers} "
                                    f"waiting); try again in {self.retry_after} s",
                               headers={"Retry-After": str(self.retry_after)})
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    async def run(self, work: Callable[[], Result]) -> Result:
        """``work()`` in a worker thread once one of the ``workers`` places is free; a 503
        ApiError when ``workers + queue`` requests are already running or waiting."""
        with self._admission():
            return await run_in_threadpool(self._run_when_free, work)

    def _run_when_free(self, work: Callable[[], Result]) -> Result:
        with self._running:
            return work()

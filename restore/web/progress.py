"""How far a running request is: the batch engine reports each finished part of its image
(a tile, a slice) to the request's :class:`RequestProgress`; ``GET /api/v1/progress/{id}``
reads it from the :class:`ProgressBoard` while the request waits, runs and after it ends."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Query

PROGRESS_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # chosen by the client: unguessable, no path characters
# the query parameter of a task route that names the request for GET /api/v1/progress/{id}
ProgressQuery = Annotated[str | None, Query(pattern=PROGRESS_ID.pattern, description=(
    "An id the client chooses (8-64 letters, digits, - or _): GET /api/v1/progress/{id} then says how far "
    "the request is."))]
MAX_TRACKED = 1024  # the least recently updated entries go first beyond this: the board stays small
UNKNOWN = {"state": "unknown", "input": None, "done": 0, "total": 0, "unit": None}


class ProgressBoard:
    """The progress of requests by the id their client chose (thread-safe: workers write, routes read)."""

    def __init__(self, limit: int = MAX_TRACKED) -> None:
        self.limit = limit
        self.entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.lock = threading.Lock()

    def track(self, request_id: str) -> RequestProgress:
        self.update(request_id, {**UNKNOWN, "state": "queued"})
        return RequestProgress(self, request_id)

    def update(self, request_id: str, values: dict[str, Any]) -> None:
        with self.lock:
            entry = self.entries.setdefault(request_id, {})
            entry.update(values)
            self.entries.move_to_end(request_id)
            while len(self.entries) > self.limit:
                self.entries.popitem(last=False)

    def read(self, request_id: str) -> dict[str, Any]:
        """The entry (a copy); ``state`` unknown for an id not (or no longer) tracked, as a
        client may ask before its request has reached the server."""
        with self.lock:
            return dict(self.entries.get(request_id, UNKNOWN))


class RequestProgress:
    """One request's :class:`~restore.engine.progress.InputProgress`, written to the board."""

    def __init__(self, board: ProgressBoard, request_id: str) -> None:
        self.board = board
        self.request_id = request_id

    def start(self, name: str) -> None:
        self.board.update(self.request_id, {"state": "running", "input": name, "done": 0, "total": 0, "unit": None})

    def __call__(self, done: int, total: int, unit: str) -> None:
        self.board.update(self.request_id, {"done": done, "total": total, "unit": unit})

    def close(self) -> None:
        self.board.update(self.request_id, {"state": "finished"})


@contextmanager
def tracked(board: ProgressBoard, request_id: str | None) -> Iterator[RequestProgress | None]:
    """The request's progress on ``board`` (None without an id), finished however it ends
    (refused while queued, a bad option, a failed image)."""
    if request_id is None:
        yield None
        return
    observer = board.track(request_id)
    try:
        yield observer
    finally:
        observer.close()

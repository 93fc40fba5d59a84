"""Progress within one input: the tiles of a large image, the slices of a volume.

The batch engine's bar counts inputs, so a single large image or scan would sit at 0/1
until it is done. The code that loops over an input's parts (``stream_tiles``,
``process_slices``) reports each finished part to a :data:`Progress` callback it is
handed; the batch engine hands down a :class:`StepBar`, a second bar under its own, and
any :class:`InputProgress` its caller gives (``BatchSettings.progress``: a web request's).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Protocol

Progress = Callable[[int, int, str], None]
"""``(done, total, unit)``: ``done`` of the input's ``total`` parts are finished; ``unit``
names a part (``tile``, ``slice``)."""


class InputProgress(Protocol):
    """A :data:`Progress` told which input it is about (``start``) and when the batch ends."""

    def start(self, name: str) -> None: ...

    def __call__(self, done: int, total: int, unit: str) -> None: ...

    def close(self) -> None: ...


class ProgressGroup:
    """Several :class:`InputProgress` as one (the batch's bar and a caller's observer)."""

    def __init__(self, members: list[InputProgress]) -> None:
        self.members = members

    def start(self, name: str) -> None:
        for member in self.members:
            member.start(name)

    def __call__(self, done: int, total: int, unit: str) -> None:
        for member in self.members:
            member(done, total, unit)

    def close(self) -> None:
        for member in self.members:
            member.close()


def progress_bar(**options: Any) -> Any:
    """A tqdm bar (``options`` as tqdm takes them) that locks with a thread lock only and
    starts no monitor thread. tqdm's default lock includes a multiprocessing semaphore,
    which its monitor thread waits on every 10 s for the life of the process; restore's
    bars are drawn by one process, and a long-lived process (a server, a test run) that
    also loads native thread pools (ONNX Runtime, OpenVINO) aborted in that wait."""
    return _thread_locked_tqdm()(**options)


@functools.cache
def _thread_locked_tqdm() -> type:
    from tqdm import tqdm

    return type("ThreadLockedTqdm", (tqdm,), {"monitor_interval": 0, "_lock": threading.RLock()})


class StepBar:
    """A :data:`Progress` shown as a tqdm bar below the batch's, for one input at a time.

    Made only when an input has more than one part (a folder of small images shows no
    flicker of one-tile bars); cleared when the input is done."""

    def __init__(self, position: int = 1) -> None:
        self.position = position
        self.name = ""
        self.bar = None

    def start(self, name: str) -> None:
        """The next reports are about the input ``name``."""
        self.close()
        self.name = name

    def __call__(self, done: int, total: int, unit: str) -> None:
        if total <= 1:
            return
        if self.bar is None or self.bar.total != total:
            self.close()
            self.bar = progress_bar(total=total, unit=unit, desc=self.name, position=self.position, leave=False,
                            dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if done == total:
            self.bar.refresh()  # show the finished count: the last update may fall within tqdm's interval

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

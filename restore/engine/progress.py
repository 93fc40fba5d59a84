"""Progress within one input: the tiles of a large image, the slices of a volume.

The batch engine's bar counts inputs, so a single large image or scan would sit at 0/1
until it is done. The code that loops over an input's parts (``stream_tiles``,
``process_slices``) reports each finished part to a :data:`Progress` callback it is
handed; the batch engine hands down a :class:`StepBar`, a second bar under its own.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int, str], None]
"""``(done, total, unit)``: ``done`` of the input's ``total`` parts are finished; ``unit``
names a part (``tile``, ``slice``)."""


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
            from tqdm import tqdm

            self.close()
            self.bar = tqdm(total=total, unit=unit, desc=self.name, position=self.position, leave=False,
                            dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        if done == total:
            self.bar.refresh()  # show the finished count: the last update may fall within tqdm's interval

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

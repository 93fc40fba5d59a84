"""What the server is configured with: its limits, and the CLI's option parsers handed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from restore.io.limits import MAX_PIXELS, MAX_VOXELS

if TYPE_CHECKING:
    from restore.pipeline import ChainStep

MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # a whole request: image, mask and fields


class TaskOptionsParser(Protocol):
    """``restore TASK``'s own options given as command-line words -> the settings the command
    hands ``process_folder``; a ValueError with the command's message when they are wrong."""

    def __call__(self, task: str, arguments: Sequence[str], max_pixels: int) -> dict[str, Any]: ...


class StepParser(Protocol):
    """Step ``number`` of a chain as ``restore chain`` takes it (``"superres --scale 4"``) ->
    the step; a ValueError naming the step when it cannot run."""

    def __call__(self, text: str, number: int, max_pixels: int) -> ChainStep: ...


class ScanOptionsParser(Protocol):
    """``restore medical COMMAND``'s own options given as command-line words -> the keywords
    the command hands ``process_scans``; a ValueError with the command's message when wrong."""

    def __call__(self, command: str, arguments: Sequence[str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Parsers:
    """The CLI's parsers (``restore.cli.chain``, ``restore.cli.medical``): the API takes
    exactly what the commands take."""

    task_options: TaskOptionsParser
    step: StepParser
    scan_options: ScanOptionsParser


@dataclass(frozen=True)
class ServeSettings:
    """``workers``: requests run at once; ``queue``: requests that may wait for one, beyond
    which the server answers 503; ``max_upload_bytes``: the largest request body;
    ``max_pixels``: the largest image (``--max-pixels``); ``max_voxels``: the largest scan
    (``restore medical --max-voxels``); ``retry_after``: seconds a 503 asks
    the client to wait; ``temp_root``: where each request's temp folder is made (None: the
    system's)."""

    workers: int = 1
    queue: int = 8
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    max_voxels: int = MAX_VOXELS
    retry_after: int = 5
    temp_root: Path | None = None

    def __post_init__(self) -> None:
        if self.workers < 1 or self.queue < 0 or self.max_upload_bytes < 1 or self.max_pixels < 1 \
                or self.max_voxels < 1:
            raise ValueError("workers, max_upload_bytes, max_pixels and max_voxels must be at least 1, queue at least 0")

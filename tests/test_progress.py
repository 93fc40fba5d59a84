"""restore's progress bars: drawn under a thread lock, with no tqdm monitor thread left
waiting on a multiprocessing semaphore for the life of the process."""

from __future__ import annotations

import io
import threading

from restore.engine.progress import StepBar, progress_bar


def test_a_bar_starts_no_thread_and_counts() -> None:
    threads = set(threading.enumerate())
    out = io.StringIO()
    bar = progress_bar(total=3, unit="img", file=out)
    bar.update(3)
    assert set(threading.enumerate()) == threads
    bar.close()
    assert "3/3" in out.getvalue()


def test_step_bar_shows_parts_of_one_input(capsys) -> None:
    bar = StepBar()
    bar.start("big.png")
    for done in range(1, 5):
        bar(done, 4, "tile")
    bar.close()
    shown = capsys.readouterr().err
    assert "big.png" in shown and "4/4 " in shown

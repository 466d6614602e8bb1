"""No garbage collection while a command starts up, for processes the package owns (``pinpoint-load``).

Start-up makes a few hundred thousand objects that live as long as the process: modules, botocore's
endpoint and service data (parsed JSON), the session's handlers, the client. Python's collector
walks each of them once in every generation it passes through, and parsing botocore's endpoint
data alone sets off a full collection: on a small load that was about a tenth of the process's CPU.
Start-up makes almost no cyclic garbage, so nothing is lost by collecting none until it is over.

:func:`pause_for_start_up` raises the collector's first threshold (a safety net: it still collects,
rarely, should start-up go on); :func:`start_up_done` moves what start-up made out of the collector's
sight (``gc.freeze``) and puts the thresholds back. Library code calls only :func:`start_up_done`,
which does nothing unless collection was paused: a notebook keeps its own collector settings.

An Airflow task is a process the package does not own, with all of Airflow in it: there a full
collection during a small load walked Airflow's objects too (about a quarter of ``execute()``'s CPU).
:func:`pause_for_task` pauses the same way and, when the task ends, hands everything frozen back to
the collector (``gc.unfreeze``), leaving it as it was.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

# Container allocations between collections while paused (the default is 700): above what start-up
# makes (about 130,000 for a small load), low enough that a start-up that never ends, e.g. a dry run,
# still collects.
START_UP_THRESHOLD = 200_000

_lock = threading.Lock()
_saved: tuple[int, int, int] | None = None


def pause_for_start_up() -> None:
    """Collect (almost) no garbage until :func:`start_up_done`; for a process's entry point only."""
    with _lock:
        _pause()


def _pause() -> bool:
    """Pause, under the lock, unless a pause is on or the collector is off (``gc.disable()``, or a
    first threshold of 0, which turns it off as well: a pause would turn it on); whether it did."""
    global _saved
    if _saved is not None or not gc.isenabled() or gc.get_threshold()[0] == 0:
        return False
    _saved = gc.get_threshold()
    gc.set_threshold(START_UP_THRESHOLD, *_saved[1:])
    return True


def start_up_done() -> None:
    """End a pause: what start-up made is kept out of later collections, and collection resumes as before."""
    global _saved
    with _lock:
        if _saved is not None:
            gc.freeze()
            gc.set_threshold(*_saved)
            _saved = None


def pause_for_task() -> Callable[[], None]:
    """Pause collection until :func:`start_up_done`, for a task in a process the package does not own;
    returns what ends the pause when the task ends, whether start-up finished or not.

    Does nothing where objects are frozen already (Airflow's LocalExecutor freezes its heap before it
    forks its workers): that heap is out of the collector's sight already, and unfreezing at the end
    would hand it back too. Nor does it while a pause is on.
    """
    # Checked and paused under one hold of the lock: two tasks starting at once in one process both
    # saw no pause, and both were given an end that unfreezes.
    with _lock:
        if gc.get_freeze_count() or not _pause():
            return _nothing
    return _end_task


def _end_task() -> None:
    start_up_done()
    gc.unfreeze()


def _nothing() -> None:
    pass

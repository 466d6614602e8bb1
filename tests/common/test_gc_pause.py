"""The collector's pause while a command or a task starts up, and what is left when it ends."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_pinpoint.common.gc_pause import pause_for_task, start_up_done


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations collected while the test runs."""
    seen: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


def _allocate(containers: int) -> list[list[int]]:
    return [[n] for n in range(containers)]


def test_a_task_pause_collects_nothing_until_start_up_is_done_then_collects_as_before(collections):
    threshold = gc.get_threshold()
    end = pause_for_task()
    try:
        kept = _allocate(20 * threshold[0])  # twenty times what sets off a collection unpaused
        assert collections == []
        start_up_done()
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == threshold
        _allocate(20 * threshold[0])
        assert collections != []
    finally:
        end()
    assert gc.get_freeze_count() == 0


def test_a_task_that_ends_before_its_start_up_did_gets_the_collector_back():
    threshold = gc.get_threshold()
    pause_for_task()()
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0


def test_where_objects_are_frozen_already_a_task_pause_leaves_them_and_the_collector_alone():
    threshold = gc.get_threshold()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        end = pause_for_task()
        assert gc.get_threshold() == threshold
        start_up_done()
        end()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_start_up_done_without_a_pause_changes_nothing():
    threshold = gc.get_threshold()
    start_up_done()
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0


def test_a_collector_turned_off_by_a_first_threshold_of_0_stays_off():
    threshold = gc.get_threshold()
    gc.set_threshold(0, *threshold[1:])
    try:
        end = pause_for_task()
        assert gc.get_threshold()[0] == 0
        start_up_done()
        end()
        assert gc.get_threshold() == (0, *threshold[1:])
        assert gc.get_freeze_count() == 0
    finally:
        gc.set_threshold(*threshold)


def test_of_two_tasks_starting_at_once_only_the_one_that_paused_unfreezes(monkeypatch):
    # The first task is held while it pauses; a second task starting then must wait for it (the check
    # and the pause are one step), then find the pause on and get an end that unfreezes nothing.
    import threading

    from airflow_provider_pinpoint.common import gc_pause

    threshold = gc.get_threshold()
    entered, release = threading.Event(), threading.Event()
    real = gc_pause._pause

    def held() -> bool:
        if threading.current_thread() is first:
            entered.set()
            release.wait(5)
        return real()

    monkeypatch.setattr(gc_pause, "_pause", held)
    ends: dict[str, Callable[[], None]] = {}
    first = threading.Thread(target=lambda: ends.__setitem__("first", pause_for_task()))
    second = threading.Thread(target=lambda: ends.__setitem__("second", pause_for_task()))
    first.start()
    assert entered.wait(5)
    second.start()
    second.join(0.2)
    waited = second.is_alive()  # checked while the first was pausing: it must not have got through
    release.set()
    first.join(5)
    second.join(5)
    try:
        assert waited
        start_up_done()  # the first task's start-up is over: what it made is frozen
        assert gc.get_freeze_count() > 0
        ends["second"]()
        assert gc.get_freeze_count() > 0
    finally:
        ends["first"]()
        ends["second"]()
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0


def test_a_task_checks_for_a_pause_and_pauses_in_one_hold_of_the_lock(monkeypatch):
    # Under two holds, two tasks could both find no pause between them, and both end it (unfreezing).
    import threading

    from airflow_provider_pinpoint.common import gc_pause

    class CountingLock:
        def __init__(self) -> None:
            self.inner = threading.Lock()
            self.holds = 0

        def __enter__(self) -> CountingLock:
            self.inner.acquire()
            self.holds += 1
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.release()

    lock = CountingLock()
    seen: dict[str, int] = {}
    real_count, real_pause = gc.get_freeze_count, gc_pause._pause

    def count() -> int:
        seen["checked"] = lock.holds
        return real_count()

    def pause() -> bool:
        seen["paused"] = lock.holds
        return real_pause()

    monkeypatch.setattr(gc_pause, "_lock", lock)
    monkeypatch.setattr(gc_pause.gc, "get_freeze_count", count)
    monkeypatch.setattr(gc_pause, "_pause", pause)
    end = pause_for_task()
    try:
        assert seen == {"checked": 1, "paused": 1}
    finally:
        end()

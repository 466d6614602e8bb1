"""The collector's pause while a command or a task starts up, and what is left when it ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

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
    # The first task is held between finding no pause and pausing, while a second task starts: the
    # second must not be given an end that unfreezes what the first's start-up froze.
    import threading
    import time

    from airflow_provider_pinpoint.common import gc_pause

    threshold = gc.get_threshold()
    entered, release = threading.Event(), threading.Event()
    real = gc_pause.pause_for_start_up

    def held() -> None:
        if threading.current_thread() is first:
            entered.set()
            release.wait(5)
        real()

    monkeypatch.setattr(gc_pause, "pause_for_start_up", held)
    ends: dict[str, object] = {}
    first = threading.Thread(target=lambda: ends.__setitem__("first", pause_for_task()))
    first.start()
    while not entered.is_set() and first.is_alive():
        time.sleep(0.001)
    ends["second"] = pause_for_task()
    release.set()
    first.join(5)
    first_end, second_end = ends["first"], ends["second"]
    assert callable(first_end) and callable(second_end)
    try:
        start_up_done()  # the first task's start-up is over: what it made is frozen
        assert gc.get_freeze_count() > 0
        second_end()
        assert gc.get_freeze_count() > 0
    finally:
        first_end()
        second_end()
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0

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

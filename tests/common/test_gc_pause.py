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


def test_load_events_pauses_the_collector_for_its_start_up_and_hands_it_back(monkeypatch):
    import pyarrow as pa

    from airflow_provider_pinpoint import load as load_module
    from airflow_provider_pinpoint.common.gc_pause import START_UP_THRESHOLD

    threshold = gc.get_threshold()
    during: list[int] = []
    dry_run = load_module._Run.dry_run

    def spied(run):
        during.append(gc.get_threshold()[0])
        return dry_run(run)

    monkeypatch.setattr(load_module._Run, "dry_run", spied)
    endpoints = pa.table({"Id": ["a", "b"], "ChannelType": ["EMAIL", "EMAIL"], "Address": ["a@x.test", "b@x.test"]})
    load_module.load_events(endpoints=endpoints, application_id="app", dry_run=True, progress=False)
    assert during == [START_UP_THRESHOLD]
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0


def test_a_client_given_ends_the_start_up_as_a_client_made_does():
    from types import SimpleNamespace

    from airflow_provider_pinpoint.sending.client import make_client

    given = SimpleNamespace(meta=SimpleNamespace(config=SimpleNamespace(retries={"total_max_attempts": 1})))
    threshold = gc.get_threshold()
    end = pause_for_task()
    try:
        assert make_client(given, None, None, None, 4) is given
        assert gc.get_threshold() == threshold  # the pause ended there
        assert gc.get_freeze_count() > 0
    finally:
        end()
    assert gc.get_freeze_count() == 0

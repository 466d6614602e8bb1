"""The /_emulator/ API, through EmulatorClient and as plain HTTP."""

from __future__ import annotations

import pytest
import requests

from tests.helpers.wire import APP, event


def test_stats_has_every_counter_at_zero_after_reset(emulator):
    assert emulator.stats() == {
        "requests": 0,
        "events_accepted": 0,
        "events_rejected": 0,
        "events_dropped": 0,
        "events_duplicated": 0,
        "endpoints_accepted": 0,
        "endpoints_rejected": 0,
        "faults": {},
    }


def test_stats_count_requests_and_outcomes(emulator, pinpoint):
    events = {"good": event(), "bad": event(Timestamp="later"), "dropped": event(Attributes={"a": "x" * 201})}
    pinpoint.put_events(
        ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {"OptOut": "NONE"}, "Events": events}}}
    )
    stats = emulator.stats()
    assert (stats["requests"], stats["events_accepted"], stats["events_rejected"], stats["events_dropped"]) == (
        1,
        1,
        1,
        1,
    )
    assert stats["endpoints_accepted"] == 1


def test_events_of_an_unknown_application_is_an_empty_list(emulator):
    assert emulator.events("never-seen") == []
    assert emulator.endpoints("never-seen") == {}


def test_application_ids_are_escaped_in_the_path(emulator, pinpoint):
    pinpoint.put_events(
        ApplicationId="a b/c", EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
    )
    assert len(emulator.events("a b/c")) == 1


def test_configure_changes_settings_and_refuses_unknown_ones(emulator):
    assert emulator.configure(error_rate=0.25)["error_rate"] == 0.25
    with pytest.raises(ValueError, match="unknown emulator setting"):
        emulator.configure(eror_rate=0.25)
    with pytest.raises(ValueError, match="between 0 and 1"):
        emulator.configure(drop_rate=2)


def test_reset_clears_records(emulator, pinpoint):
    pinpoint.put_events(
        ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
    )
    emulator.reset()
    assert emulator.events(APP) == []
    assert emulator.stats()["requests"] == 0


def test_inspection_api_is_plain_http(emulator):
    answer = requests.get(f"{emulator.url}/_emulator/stats", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["requests"] == 0
    assert requests.get(f"{emulator.url}/_emulator/nothing", timeout=10).status_code == 404

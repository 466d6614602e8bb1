"""Request-level refusals: the whole request is answered 400 or 413 and nothing is recorded."""

from __future__ import annotations

import pytest

from tests.helpers.wire import APP, event, post_raw


def test_malformed_json_is_a_bad_request(emulator):
    response = post_raw(emulator.url, APP, b'{"BatchItem": ')
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "BadRequestException"
    assert "not valid JSON" in response.json()["Message"]


def test_missing_batch_item_is_a_bad_request(emulator):
    response = post_raw(emulator.url, APP, b"{}")
    assert response.status_code == 400
    assert "BatchItem" in response.json()["Message"]


def test_batch_entry_without_events_is_a_bad_request(emulator):
    response = post_raw(emulator.url, APP, b'{"BatchItem": {"ep-1": {"Endpoint": {}}}}')
    assert response.status_code == 400
    assert "Events" in response.json()["Message"]


def test_more_than_100_events_is_a_bad_request_exception(emulator, pinpoint):
    events = {f"ev-{i}": event() for i in range(101)}
    with pytest.raises(pinpoint.exceptions.BadRequestException, match="101 events; the maximum is 100"):
        pinpoint.put_events(
            ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": events}}}
        )
    assert emulator.events(APP) == []


def test_exactly_100_events_are_accepted(emulator, pinpoint):
    events = {f"ev-{i}": event() for i in range(100)}
    pinpoint.put_events(ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": events}}})
    assert emulator.stats()["events_accepted"] == 100


def test_body_over_4_mb_is_payload_too_large(emulator, pinpoint):
    big = event(AppTitle="x" * (4 * 1024 * 1024))
    with pytest.raises(pinpoint.exceptions.PayloadTooLargeException):
        pinpoint.put_events(
            ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": big}}}}
        )
    assert emulator.events(APP) == []

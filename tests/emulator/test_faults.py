"""Each fault produces what a boto3 user meets in the wild (retries are off in these clients)."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from airflow_provider_pinpoint.emulator.faults import TokenBucket
from tests.helpers.wire import APP, event


def one_event_request(event_id: str = "ev-1") -> dict:
    return {"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {event_id: event()}}}}


def test_error_rate_gives_internal_server_error_exception(emulator, pinpoint):
    emulator.configure(error_rate=1.0)
    with pytest.raises(pinpoint.exceptions.InternalServerErrorException):
        pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    assert emulator.events(APP) == []
    assert emulator.stats()["faults"] == {"error": 1}


def test_rate_limit_gives_too_many_requests_without_retry_after(emulator, pinpoint):
    emulator.configure(rate_limit=1)
    pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request("first"))
    with pytest.raises(pinpoint.exceptions.TooManyRequestsException) as raised:
        pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request("second"))
    headers = raised.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert "retry-after" not in headers
    assert [entry["event_id"] for entry in emulator.events(APP)] == ["first"]
    assert emulator.stats()["faults"] == {"rate_limit": 1}


def test_dropped_connection_is_a_connection_error_and_nothing_is_recorded(emulator, pinpoint):
    emulator.configure(drop_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    assert emulator.events(APP) == []
    assert emulator.stats()["faults"] == {"drop": 1}


def test_lost_response_is_a_connection_error_but_the_events_are_recorded(emulator, pinpoint):
    emulator.configure(lost_response_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    assert [entry["event_id"] for entry in emulator.events(APP)] == ["ev-1"]
    assert emulator.stats()["faults"] == {"lost_response": 1}


def test_resend_after_a_lost_response_shows_as_duplicate(emulator, pinpoint):
    emulator.configure(lost_response_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    emulator.configure(lost_response_rate=0.0)
    pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    assert emulator.events(APP)[0]["receive_count"] == 2
    assert emulator.stats()["events_duplicated"] == 1


def _item_codes(emulator, pinpoint, seed: int) -> dict[str, int]:
    emulator.reset()
    emulator.configure(item_error_rate=0.5, seed=seed)
    events = {f"ev-{i}": event() for i in range(100)}
    response = pinpoint.put_events(
        ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": events}}}
    )
    items = response["EventsResponse"]["Results"]["ep-1"]["EventsItemResponse"]
    return {event_id: item["StatusCode"] for event_id, item in items.items()}


def test_item_errors_are_429_or_500_inside_a_202_and_not_recorded(emulator, pinpoint):
    codes = _item_codes(emulator, pinpoint, seed=7)
    assert set(codes.values()) == {202, 429, 500}
    recorded = {entry["event_id"] for entry in emulator.events(APP)}
    assert recorded == {event_id for event_id, code in codes.items() if code == 202}
    assert emulator.stats()["faults"] == {"item_error": 100 - len(recorded)}


def test_item_errors_are_reproducible_from_the_seed(emulator, pinpoint):
    assert _item_codes(emulator, pinpoint, seed=3) == _item_codes(emulator, pinpoint, seed=3)
    assert _item_codes(emulator, pinpoint, seed=3) != _item_codes(emulator, pinpoint, seed=4)


def test_latency_still_answers_and_is_counted(emulator, pinpoint):
    emulator.configure(latency_ms=5)
    response = pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert emulator.stats()["faults"] == {"latency": 1}


def test_reset_turns_faults_off(emulator, pinpoint):
    emulator.configure(error_rate=1.0)
    emulator.reset()
    pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    assert emulator.config()["error_rate"] == 0.0


def test_latency_applies_to_error_answers_too(emulator, pinpoint):
    emulator.configure(latency_ms=5, error_rate=1.0)
    with pytest.raises(pinpoint.exceptions.InternalServerErrorException):
        pinpoint.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    assert emulator.stats()["faults"] == {"error": 1, "latency": 1}


def test_token_bucket_allows_one_seconds_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(2.0, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert [bucket.take() for _ in range(2)] == [True, False]


def test_pipelined_requests_are_answered_in_order_behind_a_delayed_answer(emulator):
    emulator.configure(latency_ms=20)
    address = urlsplit(emulator.url)
    requests_bytes = b""
    for endpoint_id in ("ep-first", "ep-second"):
        body = json.dumps({"BatchItem": {endpoint_id: {"Endpoint": {}, "Events": {"ev": event()}}}}).encode()
        requests_bytes += (
            b"POST /v1/apps/%s/events HTTP/1.1\r\nHost: %s\r\nAuthorization: AWS4-HMAC-SHA256 Credential=k/x\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (APP.encode(), address.netloc.encode(), len(body), body)
        )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(requests_bytes)
        received = b""
        while received.count(b"HTTP/1.1 202") < 2 or not received.endswith(b"}}}}"):
            received += sock.recv(65536)
    assert received.index(b"ep-first") < received.index(b"ep-second")


def test_a_lost_response_held_past_the_read_timeout_is_a_timeout_and_the_events_are_recorded(emulator):
    emulator.configure(lost_response_rate=1.0, lost_response_delay_ms=1500)
    impatient = boto3.client(
        "pinpoint",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=0.3),
    )
    with pytest.raises(ReadTimeoutError):
        impatient.put_events(ApplicationId=APP, EventsRequest=one_event_request())
    assert [entry["event_id"] for entry in emulator.events(APP)] == ["ev-1"]

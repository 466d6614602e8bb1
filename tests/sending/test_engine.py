"""The sending engine's decisions, driven by a scripted transport (the wire is tested on the emulator)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.prepare.requests import ENDPOINT, Request
from airflow_provider_pinpoint.results.rows import Row
from airflow_provider_pinpoint.sending.engine import ACCEPTED, FAILED, REJECTED, Sender
from airflow_provider_pinpoint.sending.ratelimit import RateLimiter
from airflow_provider_pinpoint.sending.transport import BadRequest, PayloadTooLarge, RetryableError
from airflow_provider_pinpoint.sinks.putevents import Response
from tests.helpers.items import make_items, make_requests


def answer(request: Request, code_for=lambda item: 202, message: str = "Accepted") -> Response:
    results: dict = {}
    for item in request.items:
        code = code_for(item)
        status = {"StatusCode": code, "Message": message if code != 202 else "Accepted"}
        entry = results.setdefault(item.endpoint_id, {"EventsItemResponse": {}})
        if item.record_type == ENDPOINT:
            entry["EndpointItemResponse"] = status
        else:
            entry["EventsItemResponse"][item.event_id] = status
    return Response(202, "req-1", results)


class Scripted:
    """A transport whose answer to the n-th request is ``script(n, request)``; records what it was sent."""

    def __init__(self, script):
        self.script = script
        self.sent: list[Request] = []
        self._lock = threading.Lock()

    def send(self, application_id: str, request: Request) -> Response:
        with self._lock:
            n = len(self.sent)
            self.sent.append(request)
        return self.script(n, request)


def run(transport, requests, **options):
    recorded: list[Row] = []
    lock = threading.Lock()

    def record(results):
        with lock:
            recorded.extend(results.rows())

    options.setdefault("backoff_base_s", 0.001)
    options.setdefault("backoff_cap_s", 0.002)
    sender = Sender(transport, "app", record=record, limiter=RateLimiter(10_000), seed=1, **options)
    stats = sender.run(requests)
    return stats, {(r.source, r.source_row, r.record_type): r for r in recorded}, recorded


def test_request_level_errors_are_retried_until_accepted():
    def script(n, request):
        if n < 2:
            raise RetryableError("Internal server error", 500)
        return answer(request)

    items = make_items(1, 3)
    stats, by_row, recorded = run(Scripted(script), [Request(items)])
    assert len(recorded) == len(items)
    assert {r.status for r in recorded} == {ACCEPTED}
    assert {r.attempts for r in recorded} == {3}
    assert (stats.requests, stats.retries) == (3, 2)


def test_retries_are_bounded_and_end_failed_with_the_last_error():
    def script(n, request):
        raise RetryableError("Too many requests", 429)

    transport = Scripted(script)
    stats, _, recorded = run(transport, [Request(make_items(1, 2))], max_attempts=4)
    assert len(transport.sent) == 4
    assert {r.status for r in recorded} == {FAILED}
    assert all(r.status_code == 429 and "Too many requests" in r.message for r in recorded)
    assert {r.attempts for r in recorded} == {4}
    assert all(r.sent_at is not None for r in recorded)


def test_413_splits_until_the_halves_fit():
    def script(n, request):
        if len(request.items) > 10:
            raise PayloadTooLarge("Request body exceeds the maximum", 413)
        return answer(request)

    items = make_items(4, 15)
    transport = Scripted(script)
    _, by_row, recorded = run(transport, [Request(items)])
    assert len(recorded) == len(items) == len(by_row)
    assert {r.status for r in recorded} == {ACCEPTED}
    accepted_sends = Counter(id(i) for r in transport.sent if len(r.items) <= 10 for i in r.items)
    assert set(accepted_sends.values()) == {1}


def test_a_fatal_error_on_the_first_half_of_a_split_records_both_halves_failed():
    def script(n, request):
        if n == 0:
            raise PayloadTooLarge("Request body exceeds the maximum", 413)
        raise FatalServiceError("HTTP 404: application id not found")

    items = make_items(2, 9)
    recorded: list[Row] = []
    sender = Sender(
        Scripted(script),
        "app",
        record=lambda outcomes: recorded.extend(outcomes.rows()),
        limiter=RateLimiter(10_000),
        max_in_flight=1,
    )
    with pytest.raises(FatalServiceError):
        sender.run([Request(items)])
    assert sorted(r.source_row for r in recorded if r.record_type == "event") == list(range(1, 19))
    assert len(recorded) == len(items)
    assert {r.status for r in recorded} == {FAILED}


def test_a_single_item_still_too_large_is_rejected():
    def script(n, request):
        raise PayloadTooLarge("Request body exceeds the maximum", 413)

    _, _, recorded = run(Scripted(script), [Request(make_items(1, 1))])
    assert [(r.status, r.status_code) for r in recorded] == [(REJECTED, 413), (REJECTED, 413)]


def test_per_item_429_and_500_resend_only_those_items():
    flaky = {"t-ev-000002", "t-ev-000005"}

    def script(n, request):
        if n == 0:
            return answer(request, lambda item: 429 if item.event_id in flaky else 202)
        return answer(request)

    items = make_items(2, 3)
    transport = Scripted(script)
    stats, _, recorded = run(transport, [Request(items)])
    assert [i.event_id for i in transport.sent[1].items] == sorted(flaky)
    assert len(recorded) == len(items)
    assert {r.status for r in recorded} == {ACCEPTED}
    assert {r.event_id: r.attempts for r in recorded if r.attempts == 2} == dict.fromkeys(flaky, 2)
    assert stats.retries == 1


def _throttle_count_after(first_code_for) -> int:
    limiter = RateLimiter(10_000)
    transport = Scripted(lambda n, request: answer(request, first_code_for) if n == 0 else answer(request))
    sender = Sender(transport, "app", record=lambda outcomes: None, limiter=limiter, seed=1, backoff_base_s=0.001)
    sender.run([Request(make_items(4, 10))])
    return limiter.throttle_count


def test_a_few_throttled_items_in_an_accepted_request_leave_the_rate_alone():
    assert _throttle_count_after(lambda item: 429 if item.event_id and item.event_id.endswith("3") else 202) == 0


def test_an_answer_with_most_items_throttled_slows_the_rate_like_a_429():
    assert _throttle_count_after(lambda item: 429) == 1


def test_retried_items_are_packed_within_the_entry_limit():
    # 300 endpoint-only items answered 500 each in requests of 100: their retries must not go as one request.
    def script(n, request):
        return answer(request, lambda item: 500) if n < 3 else answer(request)

    items = make_items(300, 0)
    transport = Scripted(script)
    _, _, recorded = run(transport, make_requests(items, 100), max_events_per_request=100)
    assert {r.status for r in recorded} == {ACCEPTED} and len(recorded) == 300
    assert max(len(request.items) for request in transport.sent) <= 100
    assert sorted(r.source_row for r in recorded) == list(range(1, 301))


def test_per_item_400_is_final_with_the_services_message():
    def script(n, request):
        return answer(request, lambda item: 400 if item.event_id == "t-ev-000001" else 202, "Event type too long")

    transport = Scripted(script)
    _, _, recorded = run(transport, [Request(make_items(1, 2))])
    rejected = [r for r in recorded if r.status == REJECTED]
    assert [(r.event_id, r.status_code, r.message) for r in rejected] == [("t-ev-000001", 400, "Event type too long")]
    assert len(transport.sent) == 1


def test_whole_request_400_fails_its_items_without_retrying():
    def script(n, request):
        raise BadRequest("The request contains 101 events; the maximum is 100", 400)

    transport = Scripted(script)
    _, _, recorded = run(transport, [Request(make_items(1, 2))])
    assert len(transport.sent) == 1
    assert {(r.status, r.status_code) for r in recorded} == {(FAILED, 400)}
    assert all("whole request was refused (HTTP 400)" in r.message for r in recorded)


def test_fatal_error_stops_the_run_at_once():
    def script(n, request):
        raise FatalServiceError("Not found (HTTP 404): check the application id")

    transport = Scripted(script)
    requests = make_requests(make_items(20, 10), 20)
    with pytest.raises(FatalServiceError, match="application id"):
        run(transport, requests, max_in_flight=2)
    assert len(transport.sent) <= 2


def test_stop_event_stops_sending_and_records_what_was_taken_as_failed():
    stop = threading.Event()

    def script(n, request):
        stop.set()
        return answer(request)

    transport = Scripted(script)
    requests = make_requests(make_items(20, 10), 20)
    stats, _, recorded = run(transport, requests, max_in_flight=1, stop_event=stop)
    assert len(transport.sent) == 1
    assert {r.status for r in recorded} <= {ACCEPTED, FAILED}
    assert all("stopped" in r.message for r in recorded if r.status == FAILED)


def test_requests_in_flight_never_exceed_the_bound():
    current = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()

    def script(n, request):
        nonlocal current, peak
        with lock:
            current += 1
            peak = max(peak, current)
        release.wait(0.01)
        with lock:
            current -= 1
        return answer(request)

    items = make_items(30, 3)
    _, _, recorded = run(Scripted(script), make_requests(items, 4), max_in_flight=3)
    assert peak <= 3
    assert len(recorded) == len(items)


def test_an_input_error_mid_stream_reaches_the_caller_with_every_taken_row_recorded():
    from airflow_provider_pinpoint.errors import InputError

    items = make_items(4, 5)

    def requests():
        yield Request(items[:12])
        raise InputError("events-2.parquet cannot be read: not a Parquet file")

    recorded: list[Row] = []
    transport = Scripted(lambda n, request: answer(request))
    sender = Sender(
        transport, "app", record=lambda outcomes: recorded.extend(outcomes.rows()), limiter=RateLimiter(10_000)
    )
    with pytest.raises(InputError, match="events-2.parquet"):
        sender.run(requests())
    # The run stops on the error: the request already taken is either sent or recorded as not sent.
    assert sorted(r.source_row for r in recorded) == sorted(i.source_row for i in items[:12])
    assert {r.status for r in recorded} <= {ACCEPTED, FAILED}

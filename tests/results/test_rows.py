"""Outcomes: a whole accepted request recorded from its columns says what item-by-item results say."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow_provider_pinpoint.prepare import packing
from airflow_provider_pinpoint.prepare.requests import ENDPOINT, EVENT, Request, item_columns
from airflow_provider_pinpoint.results.rows import (
    ACCEPTED,
    DECISION_SCHEMA,
    FAILED,
    MESSAGE_CHARS,
    REJECTED,
    ItemResult,
    Outcomes,
)
from tests.helpers.items import make_items

NOW = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)


def _packed() -> list[Request]:
    """Column-held requests as packing makes them: endpoint rows taken from the pending columns."""
    items = make_items(7, 30)
    events = item_columns([item for item in items if item.record_type == EVENT])
    endpoints = item_columns([item for item in items if item.record_type == ENDPOINT])
    pending = packing.PendingEndpoints(
        endpoints.column("endpoint_id"),
        endpoints.column("source"),
        endpoints.column("source_row"),
        endpoints.column("body"),
    )
    sizes = packing.event_wire_sizes(events.column("event_id"), events.column("body"))
    return packing.pack_events(events, sizes, pending, max_events=50, max_bytes=4 * 1024 * 1024)


def test_a_request_accepted_whole_gives_the_rows_its_items_would():
    requests = _packed()
    assert len(requests) > 2
    for request in requests:
        whole = Outcomes.all_accepted(request, 202, 1, "req-9", NOW)
        one_by_one = Outcomes.of_results([ItemResult(i, ACCEPTED, 202, "", 1, "req-9", NOW) for i in request.items])
        assert whole.batch.equals(one_by_one.batch)
        assert (whole.accepted, whole.rejected, whole.failed) == (len(request), 0, 0)
        assert whole.events_accepted == one_by_one.events_accepted == request.event_count


def test_counts_and_long_messages_of_items_decided_one_by_one():
    items = make_items(1, 3)
    decided = Outcomes.of_results(
        [
            ItemResult(items[0], ACCEPTED, 202, "", 1, "r", NOW),
            ItemResult(items[1], ACCEPTED, 202, "", 2, "r", NOW),
            ItemResult(items[2], REJECTED, 400, "too long " * 250, 1, "r", NOW),
            ItemResult(items[3], FAILED, None, "not sent", 0, None, None),
        ]
    )
    assert (decided.accepted, decided.rejected, decided.failed, decided.events_accepted) == (2, 1, 1, 1)
    rows = decided.rows()
    assert [row.attempts for row in rows] == [1, 2, 1, 0]
    assert len(rows[2].message) == MESSAGE_CHARS and rows[2].message.endswith("…")
    assert rows[3].sent_at is None and rows[3].status_code is None


def test_a_service_message_keeps_no_address_the_input_holds():
    # A CUSTOM address looks like nothing in particular: only knowing the item's own address scrubs it.
    endpoint, event = make_items(1, 1)
    endpoint.body = '{"Address":"customer-7731","ChannelType":"CUSTOM"}'
    decided = Outcomes.of_results(
        [
            ItemResult(endpoint, REJECTED, 400, "Address customer-7731 is not a valid number", 1, "r", NOW),
            ItemResult(event, REJECTED, 400, "Endpoint of jane.doe@example.com is opted out", 1, "r", NOW),
        ]
    )
    messages = [row.message for row in decided.rows()]
    assert messages == ["Address <value> is not a valid number", "Endpoint of <value> is opted out"]


def test_a_service_message_is_stored_on_one_line():
    [item] = make_items(0, 1) or make_items(1, 0)
    decided = Outcomes.of_results(
        [ItemResult(item, REJECTED, 400, "Invalid event:\nEventType is\r\nmissing\n", 1, "r", NOW)]
    )
    assert [row.message for row in decided.rows()] == ["Invalid event: EventType is missing"]


def test_accepted_requests_give_the_same_rows_whatever_was_made_before():
    """The columns kept from one accepted request to the next (statuses, codes, offsets) never leak
    one request's values into another's: each batch equals the one built item by item."""
    requests = _packed()
    naive = datetime(2026, 1, 1, 12, 30, 0, 999_999)  # no zone (counts as UTC), floored to the millisecond
    cases = [
        (202, 1, "req-9", NOW),
        (200, 3, "req-9", NOW),
        (202, 1, "another-id", naive),
        (202, 1, None, NOW),
        (202, 2, "", NOW),
        (201, 1, "réq-é", datetime(1969, 12, 31, 23, 59, 59, 500, tzinfo=UTC)),
        (202, 1, "req-9", NOW),
    ]
    for _ in range(2):  # the second round finds everything made already
        for request in requests:
            for code, attempts, request_id, sent_at in cases:
                whole = Outcomes.all_accepted(request, code, attempts, request_id, sent_at)
                one_by_one = Outcomes.of_results(
                    [ItemResult(i, ACCEPTED, code, "", attempts, request_id, sent_at) for i in request.items]
                )
                assert whole.batch.schema.equals(DECISION_SCHEMA)
                assert whole.batch.equals(one_by_one.batch)
                assert whole.rows() == one_by_one.rows()

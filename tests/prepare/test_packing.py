from __future__ import annotations

import json
from itertools import pairwise

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_pinpoint.prepare import packing
from airflow_provider_pinpoint.prepare.requests import (
    ENDPOINT,
    EVENT,
    Item,
    Request,
    item_columns,
    items_of,
    request_size,
)


def _event(endpoint_id: str, n: int, body: str = '{"EventType":"v","Timestamp":"2026-01-01T00:00:00.000Z"}') -> Item:
    return Item(EVENT, endpoint_id, f"ev-{n}", "events.csv", n, body)


def _endpoint(endpoint_id: str, row: int = 1) -> Item:
    return Item(ENDPOINT, endpoint_id, None, "endpoints.csv", row, '{"ChannelType":"EMAIL"}')


def _pending(*items: Item) -> packing.PendingEndpoints:
    return packing.PendingEndpoints(
        pa.array([i.endpoint_id for i in items], pa.string()),
        pa.array([i.source for i in items], pa.string()),
        pa.array([i.source_row for i in items], pa.int64()),
        pa.array([i.body for i in items], pa.string()),
    )


def _pack(events: list[Item], endpoints: packing.PendingEndpoints | None = None, **limits) -> list[Request]:
    sizes = packing.event_wire_sizes(pa.array([e.event_id for e in events]), pa.array([e.body for e in events]))
    limits = {"max_events": 100, "max_bytes": 4 * 1024 * 1024} | limits
    pending = endpoints if endpoints is not None else packing.PendingEndpoints.empty()
    return packing.pack_events(item_columns(events), sizes, pending, **limits)


def _same_body_item_by_item(request: Request) -> bool:
    """The body built column-wise for a whole batch is the one its items make one by one."""
    return request.body() == Request(list(request.items)).body()


def test_wire_sizes_match_the_items_own_accounting():
    events = [_event("a", 1), Item(EVENT, "a", 'q"\\\n', "e", 2, '{"x":"é"}')]
    sizes = packing.event_wire_sizes(pa.array([e.event_id for e in events]), pa.array([e.body for e in events]))
    assert sizes.tolist() == [e.wire_size() for e in events]


def test_events_are_grouped_by_endpoint_in_order_of_first_appearance():
    events = [_event("b", 1), _event("a", 2), _event("b", 3)]
    (request,) = _pack(events)
    assert [item.source_row for item in request.items] == [1, 3, 2]


def test_an_endpoint_with_more_events_than_a_request_holds_spans_requests_with_its_data_first():
    endpoints = _pending(_endpoint("a"))
    events = [_event("a", n) for n in range(1, 251)]
    requests = _pack(events, endpoints)
    assert [r.event_count for r in requests] == [100, 100, 50]
    assert requests[0].items[0].record_type == ENDPOINT
    assert all(item.record_type == EVENT for r in requests[1:] for item in r.items)
    assert len(endpoints) == 0
    assert json.loads(requests[1].body())["BatchItem"]["a"]["Endpoint"] == {}


def test_an_endpoint_already_sent_is_not_attached_again():
    endpoints = _pending(_endpoint("a"))
    first = _pack([_event("a", 1)], endpoints)
    second = _pack([_event("a", 2)], endpoints)
    assert [i.record_type for i in first[0].items] == [ENDPOINT, EVENT]
    assert [i.record_type for i in second[0].items] == [EVENT]


@pytest.mark.parametrize("max_events", [1, 7, 100])
def test_requests_respect_a_lower_event_limit(max_events):
    events = [_event(f"e{n % 13}", n) for n in range(200)]
    requests = _pack(events, max_events=max_events)
    assert all(r.event_count <= max_events for r in requests)
    assert sum(r.event_count for r in requests) == 200


def test_requests_respect_the_byte_limit_exactly():
    events = [_event(f"e{n % 5}", n, '{"AppTitle":"' + "x" * (n * 7 % 300) + '"}') for n in range(300)]
    endpoints = _pending(*(_endpoint(f"e{n}", n) for n in range(5)))
    requests = _pack(events, endpoints, max_bytes=2_000)
    assert all(request_size(r.items) == len(r.body()) <= 2_000 for r in requests)
    assert all(map(_same_body_item_by_item, requests))
    assert sorted(i.source_row for r in requests for i in r.items if i.record_type == EVENT) == list(range(300))
    assert max(request_size(r.items) for r in requests) > 1_500


def test_endpoints_without_events_go_with_empty_events():
    items = [_endpoint(f"e{n}", n) for n in range(250)]
    requests = list(packing.pack_endpoints([item_columns(items)], max_events=100, max_bytes=4 * 1024 * 1024))
    assert [len(r.items) for r in requests] == [100, 100, 50]
    assert all(map(_same_body_item_by_item, requests))
    assert json.loads(requests[0].body())["BatchItem"]["e0"] == {"Endpoint": {"ChannelType": "EMAIL"}, "Events": {}}


def test_endpoint_only_requests_respect_the_byte_limit():
    items = [_endpoint(f"endpoint-{n}", n) for n in range(100)]
    requests = list(packing.pack_endpoints([item_columns(items)], max_events=100, max_bytes=500))
    assert len(requests) > 1
    assert all(request_size(r.items) == len(r.body()) <= 500 for r in requests)
    assert sum(len(r) for r in requests) == 100


def test_split_halves_by_count_and_the_endpoint_row_goes_no_later_than_its_events():
    (request,) = _pack([_event("a", n) for n in range(1, 4)], _pending(_endpoint("a")))
    first, second = request.split()
    assert [item.record_type for item in first.items] == [ENDPOINT, EVENT]
    assert [item.source_row for item in second.items] == [2, 3]
    assert second.batch_item()["a"]["Endpoint"] == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=8), min_size=1, max_size=5))
def test_column_sizes_item_sizes_and_the_body_agree_for_any_ids(ids):
    events = [Item(EVENT, endpoint_id, f"{endpoint_id}\n{n}", "e", n, "{}") for n, endpoint_id in enumerate(ids)]
    sizes = packing.event_wire_sizes(pa.array([e.event_id for e in events]), pa.array([e.body for e in events]))
    assert sizes.tolist() == [e.wire_size() for e in events]
    (request,) = _pack(events)
    assert request_size(request.items) == len(request.body())
    assert _same_body_item_by_item(request)


def test_endpoints_left_waiting_come_out_in_table_order_once():
    endpoints = _pending(*(_endpoint(f"e{n}", n) for n in range(4)))
    _pack([_event("e2", 1)], endpoints)
    chunks = list(endpoints.take_rest(chunk=2))
    assert [chunk.num_rows for chunk in chunks] == [2, 1]
    assert [(item.endpoint_id, item.source_row) for chunk in chunks for item in items_of(chunk)] == [
        ("e0", 0),
        ("e1", 1),
        ("e3", 3),
    ]
    assert list(endpoints.take_rest()) == []


def _no_duplicate_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key twice in one JSON object: {keys}"
    return dict(pairs)


def _packed_in_parts(
    events: list[Item], endpoints: list[Item], parts: list[int], max_events: int, max_bytes: int
) -> list[Request]:
    """What the loader does: one packer over consecutive parts of the events, then the carried request."""
    columns = item_columns(events)
    sizes = packing.event_wire_sizes(columns.column("event_id"), columns.column("body"))
    packer = packing.EventPacker(_pending(*endpoints), max_events=max_events, max_bytes=max_bytes)
    requests: list[Request] = []
    start = 0
    for length in parts:
        requests += packer.pack(columns.slice(start, length), sizes[start : start + length])
        start += length
    return requests + packer.finish()


@st.composite
def _load(draw) -> tuple[list[Item], list[Item], list[int]]:
    """Events of a few endpoints (some with an endpoint row waiting), and how they are cut into parts."""
    endpoints = draw(st.integers(1, 30))
    count = draw(st.integers(1, 250))
    owners = draw(st.lists(st.integers(0, endpoints - 1), min_size=count, max_size=count))
    lengths = draw(st.lists(st.integers(0, 120), min_size=count, max_size=count))
    events = [
        _event(f"ep-{owner}", n, '{"AppTitle":"' + "x" * length + '"}')
        for n, (owner, length) in enumerate(zip(owners, lengths, strict=True))
    ]
    with_rows = draw(st.sets(st.integers(0, endpoints - 1)))
    heads = [_endpoint(f"ep-{e}", e) for e in sorted(with_rows)]
    part = draw(st.sampled_from([3, 7, 64, 16_384]))
    return events, heads, [part] * (count // part) + ([count % part] if count % part else [])


def _check_quotas_and_accounting(
    requests: list[Request], events: list[Item], heads: list[Item], max_events: int, max_bytes: int
):
    placed = [item for request in requests for item in request.items]
    assert sorted(i.source_row for i in placed if i.record_type == EVENT) == list(range(len(events)))
    with_events = {e.endpoint_id for e in events}
    assert sorted(i.source_row for i in placed if i.record_type == ENDPOINT) == sorted(
        h.source_row for h in heads if h.endpoint_id in with_events
    )
    first_request_of: dict[str, int] = {}
    last_row: dict[str, int] = {}
    for number, request in enumerate(requests):
        assert 1 <= request.event_count <= max_events
        assert len(request.body()) == request_size(request.items) <= max_bytes
        assert _same_body_item_by_item(request)
        body = json.loads(request.body(), object_pairs_hook=_no_duplicate_keys)["BatchItem"]
        assert len(body) <= max_events
        assert sum(len(entry["Events"]) for entry in body.values()) == request.event_count
        for item in request.items:
            if item.record_type == ENDPOINT:
                # An endpoint's own row goes with its first events, in the same request.
                assert item.endpoint_id not in first_request_of
                assert body[item.endpoint_id]["Endpoint"] == json.loads(item.body)
            else:
                first_request_of.setdefault(item.endpoint_id, number)
                # Each endpoint's events go out in input order, request after request.
                assert item.source_row > last_row.get(item.endpoint_id, -1)
                last_row[item.endpoint_id] = item.source_row


@settings(max_examples=40, deadline=None)
@given(load=_load(), max_events=st.sampled_from([1, 3, 10, 100]))
def test_when_only_the_count_binds_a_load_takes_exactly_ceil_events_over_the_limit(load, max_events):
    events, heads, parts = load
    requests = _packed_in_parts(events, heads, parts, max_events, 4 * 1024 * 1024)
    _check_quotas_and_accounting(requests, events, heads, max_events, 4 * 1024 * 1024)
    assert len(requests) == -(-len(events) // max_events)
    assert all(request.event_count == max_events for request in requests[:-1])


@settings(max_examples=40, deadline=None)
@given(load=_load(), max_events=st.sampled_from([3, 10, 100]), max_bytes=st.sampled_from([400, 900, 2_500]))
def test_under_a_byte_limit_every_request_but_the_last_is_full(load, max_events, max_bytes):
    events, heads, parts = load
    requests = _packed_in_parts(events, heads, parts, max_events, max_bytes)
    _check_quotas_and_accounting(requests, events, heads, max_events, max_bytes)
    # Full: one more event (the one that opens the next request, with its endpoint's row if that
    # went with it) would break the event or the byte limit.
    for request, after in pairwise(requests):
        grown = [*request.items, *after.items[: 2 if after.items[0].record_type == ENDPOINT else 1]]
        assert request.event_count == max_events or request_size(grown) > max_bytes

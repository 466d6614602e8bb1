from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_pinpoint import service_model
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare import flow
from airflow_provider_pinpoint.prepare.flow import Rejection, prepare
from airflow_provider_pinpoint.prepare.requests import ENDPOINT, EVENT, Request, request_size

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"

_IDS = ["ep-1", "EP-1", "ep-2", "ep-3", "ep-4", "", "bad$id", "ep-5"]
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_LONG = st.one_of(_TEXT, st.integers(95, 230).map(lambda n: "v" * n))
_NUMBER = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6).map(float))


@st.composite
def _endpoints(draw) -> pa.Table | None:
    rows = draw(st.integers(0, 12))
    if rows == 0:
        return None
    row = st.fixed_dictionaries(
        {
            "Id": st.sampled_from(_IDS),
            "ChannelType": st.sampled_from(["EMAIL", "SMS", None, "PIGEON"]),
            "Demographic.Locale": st.sampled_from(["en_US", None, "english"]),
            "Attributes.tags": st.one_of(st.none(), st.lists(st.one_of(_LONG, st.none()), max_size=4)),
            "Metrics.score": _NUMBER,
            "User.UserId": st.sampled_from(["u1", None]),
        }
    )
    records = draw(st.lists(row, min_size=rows, max_size=rows))
    return pa.Table.from_pylist(records, schema=_ENDPOINT_SCHEMA)


_ENDPOINT_SCHEMA = pa.schema(
    [
        ("Id", pa.string()),
        ("ChannelType", pa.string()),
        ("Demographic.Locale", pa.string()),
        ("Attributes.tags", pa.list_(pa.string())),
        ("Metrics.score", pa.float64()),
        ("User.UserId", pa.string()),
    ]
)


@st.composite
def _events(draw) -> pa.Table:
    rows = draw(st.integers(1, 150))
    row = st.fixed_dictionaries(
        {
            "EndpointId": st.sampled_from(_IDS),
            "EventId": st.sampled_from([None, None, None, "x", "y"]),
            "EventType": st.sampled_from(["view", "buy", None]),
            "Timestamp": st.sampled_from(["2026-01-01T00:00:00Z", "2026-02-03 04:05:06.789", None, "soon"]),
            "AppTitle": st.one_of(st.none(), _TEXT),
            "Attributes.sku": st.one_of(st.none(), _LONG),
            "Metrics.price": _NUMBER,
            "Session.Id": st.sampled_from([None, "s1"]),
            "Session.StartTimestamp": st.sampled_from([None, "2026-01-01T00:00:00+01:00"]),
        }
    )
    records = draw(st.lists(row, min_size=rows, max_size=rows))
    return pa.Table.from_pylist(records, schema=_EVENT_SCHEMA)


_EVENT_SCHEMA = pa.schema(
    [
        (name, pa.float64() if name == "Metrics.price" else pa.string())
        for name in (
            "EndpointId",
            "EventId",
            "EventType",
            "Timestamp",
            "AppTitle",
            "Attributes.sku",
            "Metrics.price",
            "Session.Id",
            "Session.StartTimestamp",
        )
    ]
)


def _run(events, endpoints, **options) -> tuple[list[Request], list[Rejection]]:
    requests, rejections = [], []
    for out in prepare(events, endpoints, **options):
        if isinstance(out, Request):
            requests.append(out)
        else:
            rejections.extend(out)
    return requests, rejections


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    events=_events(),
    endpoints=_endpoints(),
    max_events=st.integers(1, 100),
    max_bytes=st.sampled_from([1_500, 6_000, 4 * 1024 * 1024]),
    batch_rows=st.sampled_from([7, 64, 65_536]),
    pack_rows=st.sampled_from([3, 16_384]),
)
def test_every_row_comes_out_once_in_valid_requests_within_quotas(
    events, endpoints, max_events, max_bytes, batch_rows, pack_rows
):
    requests, rejections = _run(
        events,
        endpoints,
        max_events_per_request=max_events,
        max_request_bytes=max_bytes,
        batch_rows=batch_rows,
        pack_rows=pack_rows,
    )
    seen = Counter()
    for request in requests:
        service_model.validate_put_events_params("app", request.batch_item())
        assert request.event_count <= max_events
        assert len(request.body()) == request_size(request.items) <= max_bytes
        assert request.body() == Request(list(request.items)).body()  # column-wise body == item by item
        assert len({item.endpoint_id for item in request.items}) <= max_events
        body = json.loads(request.body())["BatchItem"]
        assert sum(len(entry["Events"]) for entry in body.values()) == request.event_count
        seen.update((item.record_type, item.source_row) for item in request.items)
    seen.update((r.record_type, r.source_row) for r in rejections)
    if max_bytes == 4 * 1024 * 1024:  # only the count binds: parts and endpoints cost no extra request
        with_events = [request.event_count for request in requests if request.event_count]
        assert len(with_events) == -(-sum(with_events) // max_events)
    expected = Counter((EVENT, row) for row in range(1, events.num_rows + 1))
    if endpoints is not None:
        expected.update((ENDPOINT, row) for row in range(1, endpoints.num_rows + 1))
    assert seen == expected


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events=_events(), endpoints=_endpoints())
def test_no_value_goes_out_as_nan_null_or_an_over_long_attribute(events, endpoints):
    requests, _ = _run(events, endpoints)
    for request in requests:
        for entry in request.batch_item().values():
            for event in entry["Events"].values():
                assert all(len(value) <= 200 for value in event.get("Attributes", {}).values())
                assert all(math.isfinite(value) for value in event.get("Metrics", {}).values())
                assert event["Timestamp"].endswith("Z")
            assert not _holds_null(entry)
            assert all(math.isfinite(value) for value in entry["Endpoint"].get("Metrics", {}).values())


def _holds_null(value) -> bool:
    if isinstance(value, dict):
        return any(_holds_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_null(v) for v in value)
    return value is None


def test_events_are_attached_to_their_endpoint_once_and_lonely_endpoints_still_go():
    endpoints = pa.table({"Id": ["a", "b"], "ChannelType": ["EMAIL", "SMS"]})
    events = pa.table(
        {"EndpointId": ["a"] * 150 + ["z"], "EventType": ["v"] * 151, "Timestamp": ["2026-01-01T00:00:00Z"] * 151}
    )
    requests, rejections = _run(events, endpoints)
    assert rejections == []
    batch_items = [r.batch_item() for r in requests]
    assert [item["a"]["Endpoint"] for item in batch_items if "a" in item] == [{"ChannelType": "EMAIL"}, {}]
    assert [item["z"]["Endpoint"] for item in batch_items if "z" in item] == [{}]
    assert {"b": {"Endpoint": {"ChannelType": "SMS"}, "Events": {}}} in batch_items


def test_rejections_name_the_row_and_carry_its_ids():
    events = pa.table({"EndpointId": ["a"], "EventId": ["e1"], "EventType": ["v"], "Timestamp": ["later"]})
    _, rejections = _run(events, None)
    assert rejections == [
        Rejection(EVENT, "a", "e1", "events", 1, "events row 1: Timestamp is 'later', not an ISO 8601 timestamp")
    ]


def test_sample_data_accounts_for_every_row():
    requests, rejections = _run(str(SAMPLE / "events.parquet"), str(SAMPLE / "endpoints.parquet"))
    rows = sum(len(r.items) for r in requests) + len(rejections)
    assert rows == 2400 + 240
    assert sorted(r.source_row for r in rejections if r.record_type == EVENT) == [11, 23, 35]
    assert sorted(r.source_row for r in rejections if r.record_type == ENDPOINT) == [5, 17, 29, 41, 53]


def test_csv_and_parquet_sample_data_give_the_same_bodies():
    def bodies(kind: str) -> list[str]:
        requests, _ = _run(str(SAMPLE / f"events.{kind}"), str(SAMPLE / f"endpoints.{kind}"))
        return sorted(item.body for r in requests for item in r.items)

    assert bodies("csv") == bodies("parquet")


def test_tables_without_their_id_column_are_rejected_row_by_row():
    events = pa.table({"EventType": ["v", "w"], "Timestamp": ["2026-01-01T00:00:00Z"] * 2})
    endpoints = pa.table({"ChannelType": ["EMAIL"]})
    requests, rejections = _run(events, endpoints)
    assert requests == []
    assert [r.message for r in rejections] == [
        "endpoints row 1: Id is missing; every endpoint row needs its endpoint id",
        "events row 1: EndpointId is missing; every event needs the id of its endpoint",
        "events row 2: EndpointId is missing; every event needs the id of its endpoint",
    ]


def test_a_consumer_may_stop_early():
    events = pa.table({"EndpointId": ["a"] * 50, "EventType": ["v"] * 50, "Timestamp": ["2026-01-01"] * 50})
    prepared = prepare(events, max_events_per_request=1, batch_rows=5)
    first = next(prepared)
    prepared.close()
    assert isinstance(first, Request)
    assert first.event_count == 1


def test_an_unreadable_events_file_raises_its_input_error(tmp_path):
    broken = tmp_path / "events.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="events.parquet"):
        list(prepare(str(broken)))


def test_dataframes_with_categorical_and_datetime_columns_go_through():
    frame = pd.DataFrame(
        {
            "EndpointId": pd.Categorical(["a", "b", "a"]),
            "EventType": pd.Categorical(["view", "buy", "view"]),
            "Timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 11:00", None]),
            "Metrics.price": [1.5, None, 2.0],
        }
    )
    requests, rejections = _run(frame, None)
    assert [r.message for r in rejections] == ["events row 3: Timestamp is empty; Pinpoint requires it for every event"]
    (request,) = requests
    events = {eid: entry["Events"] for eid, entry in request.batch_item().items()}
    assert [event["Timestamp"] for event in events["a"].values()] == ["2026-01-01T10:00:00.000Z"]
    assert list(events["b"].values()) == [{"EventType": "buy", "Timestamp": "2026-01-01T11:00:00.000Z"}]


def test_nothing_to_load_is_an_input_error():
    with pytest.raises(InputError, match="nothing to load"):
        list(prepare())


@pytest.mark.parametrize(
    "sources",
    [
        pa.array(["endpoints.parquet"] * 5),
        pa.array(["a.csv", "b.csv", "a.csv"]),
        pa.array(["x.csv", "y.csv"] + ["x.csv"] * 4).slice(2),
        pa.array([], pa.string()),
        pa.array(["a.csv", None]),
        pa.array(["a.csv"] * 3, pa.large_string()),
        pa.array(["mine.parquet"] * 3).dictionary_encode(),  # an input's own _source column read as a dictionary
        pa.array(["mine.parquet"] * 3, pa.dictionary(pa.int8(), pa.large_string())),
    ],
)
def test_sources_of_one_file_are_encoded_as_arrow_encodes_them(sources):
    encoded = flow._encoded(sources)
    assert encoded.type == pc.dictionary_encode(sources).type
    assert encoded.equals(pc.dictionary_encode(sources))
    assert encoded.dictionary.get_total_buffer_size() < 64  # its own dictionary, not a slice of every row's text

"""The event-stream records the Kinesis and Firehose sinks send, built from tables by the real flow."""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

from airflow_provider_pinpoint.prepare.event_stream import with_arrival
from airflow_provider_pinpoint.prepare.record_packing import KINESIS
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.prepare.stream_flow import prepare_records

APP = "app-records"


def records(events: pa.Table | None, endpoints: pa.Table | None = None, **options: Any) -> list[dict[str, Any]]:
    """Every record the flow makes, decoded, in order (rejections must be none)."""
    out: list[dict[str, Any]] = []
    for part in prepare_records(events, endpoints, application_id=APP, limits=KINESIS, loaded_at_ms=7, **options):
        assert isinstance(part, Request), [r.message for r in part]
        out += [json.loads(body) for body in part.columns.column("body").to_pylist()]
    return out


def one_event(**columns: Any) -> pa.Table:
    base = {
        "EndpointId": ["ep-1"],
        "EventId": ["e-1"],
        "EventType": ["view"],
        "Timestamp": ["2026-11-24T10:00:00.123Z"],
    }
    return pa.table(base | {name: [value] for name, value in columns.items()})


def test_timestamps_become_unix_milliseconds_whatever_their_form() -> None:
    table = pa.table(
        {
            "EndpointId": ["a", "b", "c"],
            "EventType": ["view"] * 3,
            "Timestamp": ["2026-11-24T10:00:00.123Z", "2026-11-24T12:00:00.123+02:00", "2026-11-24 10:00:00.123"],
            "Session.Id": ["s", "s", "s"],
            "Session.StartTimestamp": ["2026-11-24T09:59:00Z"] * 3,
            "Session.StopTimestamp": [None, "2026-11-24T10:01:00.5Z", None],
        }
    )

    got = records(table)

    assert [record["event_timestamp"] for record in got] == [1795514400123] * 3
    assert [record["session"] for record in got] == [
        {"session_id": "s", "start_timestamp": 1795514340000},
        {"session_id": "s", "start_timestamp": 1795514340000, "stop_timestamp": 1795514460500},
        {"session_id": "s", "start_timestamp": 1795514340000},
    ]


def test_nan_and_infinite_metrics_are_omitted_and_empty_maps_stay_objects() -> None:
    table = pa.table(
        {
            "EndpointId": ["a", "b", "c"],
            "EventType": ["view"] * 3,
            "Timestamp": ["2026-11-24T10:00:00Z"] * 3,
            "Metrics.price": [1.5, math.nan, math.inf],
            "Metrics.count": [2.0, 3.0, None],
            "Attributes.page": ["/a", "", None],
        }
    )

    got = records(table)

    assert [record["metrics"] for record in got] == [{"price": 1.5, "count": 2}, {"count": 3}, {}]
    assert [record["attributes"] for record in got] == [{"page": "/a"}, {}, {}]


def test_device_and_version_name_come_from_the_endpoint_row_and_only_where_there_is_one() -> None:
    endpoints = pa.table(
        {
            "Id": ["ep-1"],
            "Address": ["someone@example.com"],
            "ChannelType": ["EMAIL"],
            "Demographic.AppVersion": ["4.2"],
            "Demographic.Locale": ["pt_BR"],
            "Demographic.Make": ["Acme"],
            "Demographic.Model": ["Phone"],
            "Demographic.Platform": ["android"],
            "Demographic.PlatformVersion": ["15"],
        }
    )
    events = pa.table(
        {"EndpointId": ["ep-1", "ep-2"], "EventType": ["view", "view"], "Timestamp": ["2026-11-24T10:00:00Z"] * 2}
    )

    endpoint_record, with_row, without_row = records(events, endpoints)

    device = {
        "locale": {"code": "pt_BR", "country": "BR", "language": "pt"},
        "make": "Acme",
        "model": "Phone",
        "platform": {"name": "android", "version": "15"},
    }
    assert with_row["device"] == device and with_row["application"]["version_name"] == "4.2"
    assert "device" not in without_row and "version_name" not in without_row["application"]
    assert endpoint_record["event_type"] == "_endpoint.update" and endpoint_record["device"] == device
    assert endpoint_record["event_timestamp"] == 7  # no EffectiveDate: when the load started
    assert "someone@example.com" not in json.dumps(endpoint_record)
    assert endpoint_record["endpoint"]["ChannelType"] == "EMAIL"


def test_text_that_needs_escaping_makes_valid_json_with_the_same_text() -> None:
    tricky = 'say "hi"\\ \n\ttab \x01 ünïcødé'

    (record,) = records(one_event(**{"Attributes.note": tricky, "AppTitle": tricky}), None)

    assert record["attributes"]["note"] == tricky and record["application"]["title"] == tricky


def test_derived_event_ids_are_stable_and_do_not_depend_on_the_endpoint_row() -> None:
    events = pa.table(
        {"EndpointId": ["ep-1", "ep-1"], "EventType": ["view", "view"], "Timestamp": ["2026-11-24T10:00:00Z"] * 2}
    )
    endpoint = pa.table({"Id": ["ep-1"], "ChannelType": ["EMAIL"], "Demographic.Make": ["Acme"]})
    edited = pa.table({"Id": ["ep-1"], "ChannelType": ["EMAIL"], "Demographic.Make": ["Other"]})

    first = [record["event_id"] for record in records(events, endpoint)[1:]]
    again = [record["event_id"] for record in records(events, edited)[1:]]

    assert first == again and len(set(first)) == 2  # identical rows still get distinct ids


def test_arrival_timestamp_is_written_in_front_of_the_record_at_send_time() -> None:
    (record,) = records(one_event())
    body = json.dumps(record, separators=(",", ":")).encode()

    stamped = json.loads(with_arrival(body, 1_800_000_000_123))

    assert stamped == {"arrival_timestamp": 1_800_000_000_123} | record
    assert list(stamped)[0] == "arrival_timestamp"

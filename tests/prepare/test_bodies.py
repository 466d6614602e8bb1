from __future__ import annotations

import json
import zlib
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pytest

from airflow_provider_pinpoint.prepare import event_ids, validation
from airflow_provider_pinpoint.prepare.bodies import endpoint_bodies, event_bodies


def _table(columns: dict[str, list | pa.Array], source: str = "events.csv") -> pa.Table:
    rows = len(next(iter(columns.values())))
    return pa.table({**columns, "_source": [source] * rows, "_source_row": list(range(1, rows + 1))})


def _event_maps(**columns) -> list[dict]:
    rows = len(next(iter(columns.values())))
    base = {"EndpointId": ["ep"] * rows, "EventType": ["view"] * rows, "Timestamp": ["2026-01-01T00:00:00Z"] * rows}
    checked = validation.events(_table(base | columns), validation.EventState())
    assert not checked.rejected.any(), checked.reasons
    return [json.loads(body) for body in event_bodies(checked.columns, len(checked)).to_pylist()]


def _endpoint_maps(**columns) -> list[dict]:
    rows = len(next(iter(columns.values())))
    checked = validation.endpoints(_table({"Id": [f"e{i}" for i in range(rows)]} | columns, "endpoints.csv"))
    assert not checked.rejected.any(), checked.reasons
    return [json.loads(body) for body in endpoint_bodies(checked.columns, len(checked)).to_pylist()]


def test_absent_values_leave_no_key_and_empty_groups_vanish():
    maps = _event_maps(
        AppTitle=["", None, "shop"],
        **{"Metrics.price": [float("nan"), None, 1.0], "Attributes.sku": [None, "", "a"]},
    )
    assert maps[0] == {"EventType": "view", "Timestamp": "2026-01-01T00:00:00.000Z"}
    assert maps[1] == maps[0]
    assert maps[2]["AppTitle"] == "shop"
    assert maps[2]["Attributes"] == {"sku": "a"}
    assert maps[2]["Metrics"] == {"price": 1.0}


@pytest.mark.parametrize(
    "values",
    [
        pa.array([datetime(2026, 1, 2, 3, 4, 5, 678901)], pa.timestamp("us")),
        pa.array([datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)], pa.timestamp("ms", "UTC")),
        pa.array([pd.Timestamp("2026-01-02 04:04:05.678", tz="Europe/Paris")], pa.timestamp("ns", "Europe/Paris")),
        pa.array(["2026-01-02T03:04:05.678Z"]),
        pa.array(["2026-01-02 03:04:05.678"]),
        pa.array(["2026-01-02T05:04:05.678+02:00"]),
    ],
)
def test_timestamps_of_any_type_become_iso_utc_with_milliseconds(values):
    assert _event_maps(Timestamp=values)[0]["Timestamp"] == "2026-01-02T03:04:05.678Z"


@pytest.mark.parametrize(
    "values",
    [
        pa.array([-500], pa.timestamp("us")),
        pa.array([-500_000], pa.timestamp("ns", "UTC")),
        pa.array(["1969-12-31T23:59:59.9995Z"]),
    ],
    ids=["us", "ns", "text"],
)
def test_an_instant_before_1970_keeps_its_millisecond_in_every_unit(values):
    """Sub-millisecond digits are dropped the same way for every type: the same instant, the same text."""
    assert _event_maps(Timestamp=values)[0]["Timestamp"] == "1969-12-31T23:59:59.999Z"


def test_dates_and_pandas_datetimes_become_timestamps():
    frame = pd.DataFrame({"t": pd.to_datetime(["2026-03-04 05:06:07"])})
    stamps = pa.Table.from_pandas(frame).column("t")
    assert _event_maps(Timestamp=stamps)[0]["Timestamp"] == "2026-03-04T05:06:07.000Z"
    assert _event_maps(Timestamp=pa.array([date(2026, 3, 4)], pa.date32()))[0]["Timestamp"] == (
        "2026-03-04T00:00:00.000Z"
    )


def test_numbers_go_out_as_numbers_and_text_as_text():
    event = _event_maps(
        AppVersionCode=pa.array([42]),
        **{"Metrics.count": pa.array([3]), "Metrics.ratio": ["0.25"], "Attributes.n": pa.array([7])},
    )[0]
    assert event["AppVersionCode"] == "42"
    assert event["Metrics"] == {"count": 3, "ratio": 0.25}
    assert event["Attributes"] == {"n": "7"}


def test_session_is_nested_with_integer_duration():
    event = _event_maps(
        **{
            "Session.Id": ["s1"],
            "Session.StartTimestamp": ["2026-01-01T00:00:00Z"],
            "Session.Duration": ["1500"],
        }
    )[0]
    assert event["Session"] == {"Duration": 1500, "Id": "s1", "StartTimestamp": "2026-01-01T00:00:00.000Z"}


def test_text_needing_json_escapes_round_trips():
    tricky = 'quote " backslash \\ newline \n tab \t bell \x07 unicode é 中'
    assert _event_maps(AppTitle=[tricky, "plain"])[0]["AppTitle"] == tricky


def test_endpoint_maps_nest_groups_and_make_attributes_lists():
    endpoint = _endpoint_maps(
        ChannelType=["EMAIL", None],
        Address=["user@example.com", None],
        **{
            "Demographic.Locale": ["en_US", None],
            "Location.Latitude": ["47.5", None],
            "Attributes.tags": [["a", "", None, "b"], []],
            "Attributes.plan": ["pro", None],
            "User.UserId": ["u1", None],
            "User.UserAttributes.team": [["x"], None],
            "Metrics.score": [2.5, float("nan")],
        },
    )
    assert endpoint[0] == {
        "Address": "user@example.com",
        "Attributes": {"tags": ["a", "b"], "plan": ["pro"]},
        "ChannelType": "EMAIL",
        "Demographic": {"Locale": "en_US"},
        "Location": {"Latitude": 47.5},
        "Metrics": {"score": 2.5},
        "User": {"UserAttributes": {"team": ["x"]}, "UserId": "u1"},
    }
    assert endpoint[1] == {}


def _ids(table: pa.Table, given: pa.Array | None = None) -> list[str]:
    checked = validation.events(table, validation.EventState())
    bodies = event_bodies(checked.columns, len(checked))
    return event_ids.event_ids_for(
        given, checked.columns["EndpointId"], bodies, checked.sources, checked.rows
    ).to_pylist()


def _same_rows(count: int) -> pa.Table:
    return _table({"EndpointId": ["ep"] * count, "EventType": ["v"] * count, "Timestamp": ["2026-01-01"] * count})


def test_derived_event_ids_are_stable_and_distinct_for_identical_rows():
    first, second = _ids(_same_rows(3)), _ids(_same_rows(3))
    assert first == second
    assert len(set(first)) == 3
    assert all(len(event_id) == 32 and set(event_id) <= set("0123456789abcdef") for event_id in first)


def test_a_skipped_row_does_not_change_the_ids_of_the_others():
    table = _same_rows(3)
    assert _ids(table.slice(1))[1:] == _ids(table)[2:]
    assert _ids(table.slice(1))[0] == _ids(table)[1]


def test_derived_event_ids_change_with_content_and_source():
    table = _same_rows(1)
    other_content = table.set_column(1, "EventType", pa.array(["w"]))
    other_source = table.set_column(3, "_source", pa.array(["other.csv"]))
    assert len({_ids(table)[0], _ids(other_content)[0], _ids(other_source)[0]}) == 3


def test_given_event_ids_are_kept_and_only_missing_ones_derived():
    ids = _ids(_same_rows(2), pa.array(["mine", None]))
    assert ids[0] == "mine"
    assert ids[1] == _ids(_same_rows(2))[1]


def _content_hash(endpoint_id: str, body: str) -> int:
    """The content part of a derived id, computed row by row as ``event_ids._content_hashes`` specifies it."""
    raw = endpoint_id.encode() + b"\x1f" + body.encode() + b"\x1f"
    total = len(raw) - 2
    raw += b"\0" * (-len(raw) % 8)
    for j in range(len(raw) // 8):
        total += int.from_bytes(raw[8 * j : 8 * j + 8], "little") * pow(0x9E3779B97F4A7C15, j + 1, 2**64)
    total %= 2**64
    for multiplier in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        total = ((total ^ (total >> 33)) * multiplier) % 2**64
    return (total ^ (total >> 33)) >> 32


def test_a_derived_id_is_source_crc_content_hash_and_row_number_whatever_the_neighbouring_rows(monkeypatch):
    # Endpoint ids of every length modulo 8 put the rows at every alignment within the joined buffer.
    endpoint_ids = ["e" * length for length in range(1, 17)]
    table = _table(
        {
            "EndpointId": endpoint_ids,
            "EventType": [f"type-{n}" for n in range(16)],
            "Timestamp": ["2026-01-01"] * 16,
        },
        "in/events.csv",
    )
    checked = validation.events(table, validation.EventState())
    bodies = event_bodies(checked.columns, len(checked)).to_pylist()
    expected = [
        f"{zlib.crc32(b'in/events.csv'):08x}{_content_hash(endpoint_id, body):08x}{row:016x}"
        for endpoint_id, body, row in zip(endpoint_ids, bodies, range(1, 17), strict=True)
    ]
    assert _ids(table) == expected
    assert _ids(table.slice(5, 3)) == expected[5:8]
    monkeypatch.setattr(event_ids, "_HASH_ROWS", 5)
    assert _ids(table) == expected


def test_every_single_byte_edit_of_a_row_gives_a_new_id():
    value = "abcdefghijklmnopqrstuvwxyz0123456789"
    edits = [value] + [value[:i] + "_" + value[i + 1 :] for i in range(len(value))]
    table = _table(
        {
            "EndpointId": ["ep"] * len(edits),
            "EventType": ["view"] * len(edits),
            "Timestamp": ["2026-01-01"] * len(edits),
            "Attributes.word": edits,
        }
    )
    # All as row 1 of the same source, as if the row were edited between two runs: only the content differs.
    table = table.set_column(table.schema.get_field_index("_source_row"), "_source_row", pa.array([1] * len(edits)))
    ids = _ids(table)
    assert len({event_id[:8] for event_id in ids}) == 1 and len({event_id[16:] for event_id in ids}) == 1
    assert len(set(ids)) == len(edits)

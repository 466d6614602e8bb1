from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.prepare import coerce, validation
from airflow_provider_pinpoint.prepare.validation import state as validation_state


def _table(source: str, columns: dict[str, list]) -> pa.Table:
    rows = len(next(iter(columns.values())))
    return pa.table({**columns, "_source": [source] * rows, "_source_row": list(range(1, rows + 1))})


def _events(**columns) -> validation.Checked:
    base = {"EndpointId": ["ep-1"], "EventType": ["view"], "Timestamp": ["2026-01-01T00:00:00Z"]}
    rows = len(next(iter(columns.values()))) if columns else 1
    full = {name: values * rows for name, values in base.items()} | columns
    return validation.events(_table("data/events.csv", full), validation.EventState())


def _endpoints(**columns) -> validation.Checked:
    rows = len(next(iter(columns.values())))
    full = {"Id": [f"ep-{i}" for i in range(rows)]} | columns
    return validation.endpoints(_table("s3://bucket/endpoints.parquet", full))


def _messages(checked: validation.Checked) -> list[str]:
    return [checked.reasons[i] for i in sorted(checked.reasons)]


def test_long_event_attribute_value_is_rejected_loudly():
    checked = _events(**{"Attributes.sku": ["x" * 231, "ok"]})
    assert _messages(checked) == [
        "events.csv row 1: Attributes.sku is 231 characters; Pinpoint drops events whose attribute values exceed 200"
    ]
    assert checked.rejected.tolist() == [True, False]


@pytest.mark.parametrize("endpoint_id", ["", None, "a$b", "x{", "y}"])
def test_bad_endpoint_ids_are_rejected(endpoint_id):
    checked = _events(EndpointId=[endpoint_id])
    assert checked.rejected.tolist() == [True]
    assert "EndpointId" in checked.reasons[0]


def test_missing_event_type_and_timestamp_are_rejected():
    checked = _events(EventType=[None, "view"], Timestamp=["2026-01-01T00:00:00Z", ""])
    assert _messages(checked) == [
        "events.csv row 1: EventType is empty; Pinpoint requires it for every event",
        "events.csv row 2: Timestamp is empty; Pinpoint requires it for every event",
    ]


def test_numbers_in_a_timestamp_column_are_refused():
    checked = _events(Timestamp=[1767225600, None])
    assert "Timestamp is a number (1767225600), not an ISO 8601 timestamp" in checked.reasons[0]


def test_seconds_timestamps_beyond_year_9999_are_refused_not_wrapped():
    stamps = pa.array([1_767_225_600, 10**13], pa.timestamp("s"))
    checked = _events(Timestamp=stamps, EventType=["view", "view"])
    assert _messages(checked) == [
        "events.csv row 2: Timestamp is a timestamp[s] value outside the years 0001 to 9999 that Pinpoint "
        "timestamps span"
    ]
    assert checked.columns["Timestamp"][0].as_py().isoformat() == "2026-01-01T00:00:00+00:00"


def test_timestamps_at_the_edges_of_years_0001_and_9999_are_kept():
    stamps = pa.array([-62_135_596_800, 253_402_300_799], pa.timestamp("s"))
    checked = _events(Timestamp=stamps, EventType=["view", "view"])
    assert not checked.rejected.any()
    assert [value.year for value in checked.columns["Timestamp"].to_pylist()] == [1, 9999]


def test_dates_beyond_year_9999_are_refused():
    checked = _events(Timestamp=pa.array([20_000, 3_000_000], pa.date32()), EventType=["view", "view"])
    assert checked.rejected.tolist() == [False, True]
    assert "Timestamp is a date32[day] value outside the years 0001 to 9999" in checked.reasons[1]


def test_unparseable_timestamp_text_is_refused():
    checked = _events(Timestamp=["yesterday", "2026-01-01 10:00:00", "2026-01-01T10:00:00+02:00"])
    assert _messages(checked) == ["events.csv row 1: Timestamp is 'yesterday', not an ISO 8601 timestamp"]


def test_text_in_a_metric_is_refused():
    checked = _events(**{"Metrics.price": ["12.5", "twelve", ""]})
    assert _messages(checked) == ["events.csv row 2: Metrics.price is 'twelve', not a number"]


def test_nan_spelt_as_text_is_dropped_even_beside_text_that_is_no_number():
    checked = _events(**{"Metrics.price": ["NaN", "cheap", " nan ", "-Infinity"]})
    assert _messages(checked) == ["events.csv row 2: Metrics.price is 'cheap', not a number"]
    assert checked.columns["Metrics.price"].to_pylist() == [None, None, None, None]


def test_nan_and_infinite_metrics_are_dropped_not_rejected():
    checked = _events(**{"Metrics.price": [math.nan, math.inf, -math.inf, 2.0]})
    assert not checked.rejected.any()
    assert checked.columns["Metrics.price"].to_pylist() == [None, None, None, 2.0]


def test_session_needs_id_and_start_timestamp():
    checked = _events(
        **{
            "Session.Id": [None, "s1", "s2", None],
            "Session.StartTimestamp": ["2026-01-01T00:00:00Z", None, "2026-01-01T00:00:00Z", None],
        }
    )
    assert _messages(checked) == [
        "events.csv row 1: Session.Id is empty; Pinpoint requires it in every Session",
        "events.csv row 2: Session.StartTimestamp is empty; Pinpoint requires it in every Session",
    ]


def test_session_duration_must_be_whole_milliseconds():
    checked = _events(
        **{
            "Session.Id": ["s"] * 3,
            "Session.StartTimestamp": ["2026-01-01T00:00:00Z"] * 3,
            "Session.Duration": [1.5, -3, 10],
        }
    )
    assert _messages(checked) == [
        "events.csv row 1: Session.Duration is 1.5, not a whole number of milliseconds",
        "events.csv row 2: Session.Duration is -3; a duration cannot be negative",
    ]


def test_event_attribute_name_longer_than_50_is_refused():
    name = "k" * 51
    checked = _events(**{f"Attributes.{name}": ["v", None]})
    assert _messages(checked) == [f"events.csv row 1: Attributes.{name} has a 51-character name; Pinpoint allows 50"]


def test_more_than_40_attributes_and_metrics_per_event_are_refused():
    columns = {f"Attributes.a{i}": ["v", None] for i in range(30)} | {f"Metrics.m{i}": [1.0, 1.0] for i in range(11)}
    checked = _events(**columns)
    assert _messages(checked) == ["events.csv row 1: Attributes/Metrics has 41 keys; Pinpoint allows 40 per event"]


def test_repeated_event_id_for_one_endpoint_is_refused():
    checked = _events(EventId=["e1", "e1", "e1"], EndpointId=["a", "a", "b"])
    assert _messages(checked) == [
        "events.csv row 2: EventId 'e1' repeats events.csv row 1 for the same endpoint; "
        "event ids must be unique per endpoint"
    ]


def test_event_types_beyond_the_application_cap_are_refused(monkeypatch):
    monkeypatch.setattr(quotas, "MAX_EVENT_TYPES_PER_APP", 2)
    state = validation.EventState()
    first = validation.events(
        _table("e.csv", {"EndpointId": ["a"] * 2, "EventType": ["t1", "t2"], "Timestamp": ["2026-01-01"] * 2}), state
    )
    second = validation.events(
        _table("e.csv", {"EndpointId": ["a"] * 2, "EventType": ["t1", "t3"], "Timestamp": ["2026-01-01"] * 2}), state
    )
    assert not first.rejected.any()
    assert second.rejected.tolist() == [False, True]
    assert "Pinpoint allows 2 per application" in second.reasons[1]


def test_endpoint_ids_colliding_in_case_keep_the_first_spelling():
    checked = _endpoints(Id=["Abc", "abc", "ABC", "Abc", "other"])
    assert _messages(checked) == [
        "endpoints.parquet row 2: Id 'abc' differs only in case from 'Abc' (endpoints.parquet row 1); "
        "Pinpoint endpoint ids are case-insensitive, so the first spelling wins",
        "endpoints.parquet row 3: Id 'ABC' differs only in case from 'Abc' (endpoints.parquet row 1); "
        "Pinpoint endpoint ids are case-insensitive, so the first spelling wins",
        "endpoints.parquet row 4: Id 'Abc' repeats endpoints.parquet row 1; give each endpoint one row",
    ]


def test_events_spelling_an_endpoint_id_differently_are_rejected():
    state = validation.EventState()
    validation.endpoint_spellings(_endpoints_checked(["Abc"]), state)
    table = _table(
        "events.csv",
        {"EndpointId": ["Abc", "abc", "new", "NEW"], "EventType": ["v"] * 4, "Timestamp": ["2026-01-01"] * 4},
    )
    checked = validation.events(table, state)
    assert checked.rejected.tolist() == [False, True, False, True]
    assert checked.reasons[1] == (
        "events.csv row 2: EndpointId 'abc' differs only in case from 'Abc' (endpoints.csv row 1); "
        "Pinpoint endpoint ids are case-insensitive, so the first spelling wins"
    )
    assert "differs only in case from 'new', used earlier in the events" in checked.reasons[3]


def _endpoints_checked(ids: list[str]) -> validation.Checked:
    return validation.endpoints(_table("endpoints.csv", {"Id": ids}))


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("ChannelType", "PIGEON", "ChannelType is 'PIGEON'; Pinpoint accepts PUSH, GCM"),
        ("EndpointStatus", "active", "EndpointStatus is 'active'; Pinpoint accepts ACTIVE, INACTIVE"),
        ("OptOut", "MAYBE", "OptOut is 'MAYBE'; Pinpoint accepts ALL, NONE"),
        ("Demographic.Locale", "en-US", "Demographic.Locale is 'en-US'; Pinpoint expects ll_CC"),
        ("Location.Country", "USA", "Location.Country is 'USA'; Pinpoint expects an ISO 3166-1 alpha-2 code"),
        ("Demographic.Timezone", "Mars/Base", "Demographic.Timezone is 'Mars/Base'; Pinpoint expects a tz database"),
        ("Location.Latitude", 91.0, "Location.Latitude is 91.0; it must lie between -90 and 90"),
        ("Location.Longitude", -180.5, "Location.Longitude is -180.5; it must lie between -180 and 180"),
        ("Location.Latitude", "north", "Location.Latitude is 'north', not a number"),
        ("EffectiveDate", "soon", "EffectiveDate is 'soon', not an ISO 8601 timestamp"),
    ],
)
def test_endpoint_field_rules(column, value, fragment):
    checked = _endpoints(**{column: [value]})
    assert checked.reasons[0].startswith("endpoints.parquet row 1: ")
    assert fragment in checked.reasons[0]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("ChannelType", "EMAIL"),
        ("EndpointStatus", "INACTIVE"),
        ("OptOut", "ALL"),
        ("Demographic.Locale", "pt_BR"),
        ("Location.Country", "DE"),
        ("Demographic.Timezone", "Europe/Berlin"),
        ("Location.Latitude", -90.0),
        ("EffectiveDate", "2026-01-01T00:00:00.000Z"),
    ],
)
def test_valid_endpoint_fields_pass(column, value):
    assert not _endpoints(**{column: [value]}).rejected.any()


def test_more_than_50_values_in_an_endpoint_attribute_are_refused():
    checked = _endpoints(**{"Attributes.tags": [[f"t{i}" for i in range(51)], ["a"]]})
    assert _messages(checked) == [
        "endpoints.parquet row 1: Attributes.tags has 51 values; Pinpoint allows 50 per attribute"
    ]


def test_endpoint_attribute_values_longer_than_100_are_refused():
    checked = _endpoints(**{"User.UserAttributes.bio": [["short", "b" * 101]]})
    assert _messages(checked) == [
        "endpoints.parquet row 1: User.UserAttributes.bio has a value of 101 characters; "
        "Pinpoint allows 100 characters per user attribute value"
    ]


def test_the_16th_endpoint_of_a_user_is_refused_for_limited_channels():
    channels = ["EMAIL"] * 15 + ["SMS", "APNS"]
    checked = _endpoints(**{"User.UserId": ["u1"] * 17, "ChannelType": channels})
    assert checked.rejected.tolist() == [False] * 15 + [True, False]
    assert checked.reasons[15] == (
        "endpoints.parquet row 16: User.UserId already has 15 endpoints in this input; "
        "Pinpoint refuses endpoint 16 of a user for SMS"
    )


def test_endpoint_custom_attributes_beyond_the_application_cap_are_refused(monkeypatch):
    monkeypatch.setattr(quotas, "MAX_ENDPOINT_CUSTOM_ATTRIBUTES_PER_APP", 2)
    checked = _endpoints(
        **{"Attributes.a": [["x"], None], "Metrics.m": [1.0, None], "User.UserAttributes.u": [None, ["y"]]}
    )
    assert _messages(checked) == [
        "endpoints.parquet row 2: User.UserAttributes.u is distinct endpoint attribute or metric number 3 in the input; "
        "Pinpoint allows 2 per application"
    ]


def test_oversized_rows_are_refused_by_their_serialised_size():
    checked = _events(AppTitle=["t" * 10])
    validation.check_size(checked, pa.array(["{" + "x" * 20 + "}"]), 16, "event")
    assert _messages(checked) == ["events.csv row 1: (whole row) serialises to 22 bytes; Pinpoint allows 16 per event"]


def test_whole_number_floats_in_text_fields_go_out_as_their_digits():
    # pandas turns an integer column with one NaN into float64: ids and phone numbers arrive as floats.
    checked = _events(EndpointId=[42.0, 1e20, float("nan")], EventType=[1.5550104471e10, -0.0, 7.0])
    assert checked.columns["EndpointId"].to_pylist() == ["42", "100000000000000000000", None]
    assert checked.columns["EventType"].to_pylist() == ["15550104471", "0", "7"]


def test_fractional_floats_in_text_fields_are_refused_without_quoting_an_address():
    checked = _endpoints(Address=[15550104471.0, 1555010447.5], ChannelType=["SMS", "SMS"])
    assert checked.columns["Address"][0].as_py() == "15550104471"
    assert _messages(checked) == ["endpoints.parquet row 2: Address is not a single text value or whole number"]
    events = _events(EventType=[2.5])
    assert _messages(events) == ["events.csv row 1: EventType is 2.5, not a single text value or whole number"]


def test_a_rejected_event_sets_no_endpoint_id_spelling():
    checked = _events(EndpointId=["Abc", "abc", "ABC"], EventType=[None, "view", "view"])
    assert checked.rejected.tolist() == [True, False, True]
    assert "EventType is empty" in checked.reasons[0]
    assert "'ABC' differs only in case from 'abc'" in checked.reasons[2]


def test_a_rejected_endpoint_row_sets_no_spelling_for_rows_or_events():
    checked = _endpoints(Id=["Abc", "abc"], ChannelType=["PIGEON", "SMS"])
    assert checked.rejected.tolist() == [True, False]
    state = validation.EventState()
    validation.endpoint_spellings(checked, state)
    table = _table(
        "events.csv", {"EndpointId": ["abc", "Abc"], "EventType": ["v"] * 2, "Timestamp": ["2026-01-01"] * 2}
    )
    events = validation.events(table, state)
    assert events.rejected.tolist() == [False, True]
    assert "differs only in case from 'abc' (endpoints.parquet row 2)" in events.reasons[1]


def test_an_event_id_repeated_in_a_later_batch_is_refused():
    state = validation.EventState()
    first = {
        "EndpointId": ["Ep-1", "ep-2"],
        "EventId": ["e1", "e1"],
        "EventType": ["v"] * 2,
        "Timestamp": ["2026-01-01"] * 2,
    }
    assert not validation.events(_table("events.csv", first), state).rejected.any()
    later = _table(
        "events.csv",
        {
            "EndpointId": ["Ep-1", "Ep-1", "ep-3"],
            "EventId": ["e1", "e2", "e1"],
            "EventType": ["v"] * 3,
            "Timestamp": ["2026-01-01"] * 3,
        },
    )
    checked = validation.events(later, state)
    assert checked.rejected.tolist() == [True, False, False]
    assert _messages(checked) == [
        "events.csv row 1: EventId 'e1' repeats an earlier row of the input for the same endpoint; "
        "event ids must be unique per endpoint"
    ]


@pytest.mark.parametrize("max_run", [1 << 20, 50])
def test_the_hash_set_finds_what_was_added_across_merged_runs(max_run, monkeypatch):
    monkeypatch.setattr(validation.HashSet, "MAX_RUN", max_run)
    seen = validation.HashSet()
    for start in range(0, 1000, 7):
        seen.add(np.arange(start, start + 7, dtype=np.uint64) * 2)
    assert len(seen) == 1001
    assert max(len(run) for run in seen._runs) <= max_run
    probe = np.arange(0, 2010, dtype=np.uint64)
    assert seen.contains(probe).tolist() == [i % 2 == 0 and i < 2002 for i in range(2010)]


def test_the_hash_set_keeps_each_hash_once_whatever_order_they_come_in():
    rng = np.random.default_rng(7)
    batches = [rng.integers(0, 1 << 64, 300, dtype=np.uint64, endpoint=False) for _ in range(4)]
    batches[1][:100] = batches[0][:100]  # repeats of an earlier batch
    batches[2][::2] = batches[2][1::2]  # repeats within a batch, out of order
    batches[3][:3] = [0, np.iinfo(np.uint64).max, 0]
    seen = validation.HashSet()
    for batch in batches:
        seen.add(batch)
    expected = set(np.concatenate(batches).tolist())
    assert len(seen) == len(expected)
    for run in seen._runs:
        assert (np.diff(run.astype(object)) > 0).all()  # sorted and distinct (no uint64 wrap-around)
    assert seen.contains(np.concatenate(batches)).all()
    assert not seen.contains(np.array([1, 2, 3], dtype=np.uint64)).any()


def _reference_losers(batches: list[list[str]], endpoint_ids: list[str]) -> tuple[list[list[str]], dict[str, str]]:
    """Row by row in plain Python: the first spelling of each lower-cased id wins, later other spellings lose."""
    first = {spelling.lower(): spelling for spelling in endpoint_ids}
    losers = []
    for batch in batches:
        lost = set()
        for spelling in batch:
            if first.setdefault(spelling.lower(), spelling) != spelling:
                lost.add(spelling)
        losers.append(sorted(lost))
    return losers, first


def _spellings(rng: np.random.Generator, name: str) -> list[str]:
    """A few case variants of one id, always including the lower-case one."""
    variants = {name, name.upper()} | {"".join(c.upper() if rng.random() < 0.5 else c for c in name) for _ in range(3)}
    return sorted(variants)


@pytest.mark.parametrize("with_endpoints", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_spelling_decisions_match_first_spelling_wins_row_by_row(seed, with_endpoints, monkeypatch):
    monkeypatch.setattr(validation.HashSet, "MAX_RUN", 8)  # many runs, as on a long load
    rng = np.random.default_rng(seed)
    pool = [_spellings(rng, f"id{i}x") for i in range(40)]
    endpoint_ids = [rng.choice(pool[i]) for i in rng.choice(40, 15, replace=False)] if with_endpoints else []
    batches = [
        [rng.choice(pool[i]) for i in rng.integers(0, 40 if b else 20, int(rng.integers(1, 30)))] for b in range(6)
    ]
    expected, first = _reference_losers(batches, endpoint_ids)
    state = validation.EventState()
    if with_endpoints:
        validation.accepted_endpoints(
            pa.array(endpoint_ids, pa.string()),
            pa.array(["endpoints.csv"] * len(endpoint_ids)),
            pa.array(range(1, len(endpoint_ids) + 1), pa.int64()),
            state,
        )
    got = [sorted(state.misspelt(pa.array(batch, pa.string())).to_pylist()) for batch in batches]
    assert got == expected
    rows = {spelling.lower(): f"endpoints.csv row {row}" for row, spelling in enumerate(endpoint_ids, start=1)}
    others = pa.array([spelling.upper() if spelling.islower() else spelling.lower() for spelling in first.values()])
    assert state.winners(others) == {
        other: (first[other.lower()], rows.get(other.lower())) for other in others.to_pylist()
    }


def test_an_all_lower_case_load_keeps_no_python_collection_of_ids():
    state = validation.EventState()
    ids = pa.array([f"ep-{i}" for i in range(50)], pa.string())
    sources = pa.array(["endpoints.csv"] * 50)
    rows = pa.array(range(1, 51), pa.int64())
    validation.accepted_endpoints(ids, sources, rows, state)
    for start in range(0, 80, 20):
        batch = [f"ep-{i}" for i in range(start, start + 20)] * 2
        table = _table("events.csv", {"EndpointId": batch, "EventType": ["v"] * 40, "Timestamp": ["2026-01-01"] * 40})
        assert not validation.events(table, state).rejected.any()
    assert state.capitalised == {}
    assert len(state.lowered) == 80
    assert len(state.capital_spellings) == len(state.capital_lowered) == 0
    collections = {name for name, value in vars(state).items() if isinstance(value, (set, dict, list, tuple))}
    assert collections == {"capitalised", "endpoint_rows", "event_types"}
    # The endpoints table's columns are held as given, not copied, and not lower-cased until a message needs it.
    assert state.endpoint_rows[0] is ids and state.endpoint_rows[2] is rows
    assert state._endpoints_lowered is None


def _sliced(table: pa.Table, rows: int, seen: validation.EndpointsSeen | None = None) -> tuple[list[bool], list[str]]:
    """An endpoints table validated ``rows`` rows at a time: which rows fail, and the messages in order."""
    seen = validation.EndpointsSeen() if seen is None else seen
    slices = [validation.endpoints(table.slice(start, rows), seen) for start in range(0, table.num_rows, rows)]
    return np.concatenate([c.rejected for c in slices]).tolist(), [message for c in slices for message in _messages(c)]


@pytest.mark.parametrize("rows", [1, 2, 3, 7])
def test_endpoints_validated_in_slices_are_refused_as_when_validated_whole(rows, monkeypatch):
    # Ids repeated in any case, within a slice and across slices, some rows refused for another rule
    # first (they must not count), and users over the limit across slices.
    monkeypatch.setattr(quotas, "MAX_ENDPOINTS_PER_USER_ID", 2)
    table = _table(
        "endpoints.parquet",
        {
            "Id": ["Abc", "x", "abc", "ABC", "y", None, "Abc", "z", "X", "w", "q", "q"],
            "ChannelType": ["SMS", "PIGEON", "SMS", "SMS", "SMS", "SMS", "SMS", "EMAIL", "SMS", "SMS", "SMS", "SMS"],
            "User.UserId": ["u1", "u1", "u2", None, "u1", "u1", "u2", "u1", "u1", "u1", "u3", "u3"],
        },
    )
    whole = validation.endpoints(table)
    assert _sliced(table, rows) == (whole.rejected.tolist(), _messages(whole))
    assert whole.rejected.tolist() == [False, True, True, True, False, True, True, True, True, True, False, True]
    # Row 9's 'X' collides with nothing: row 2's 'x' was refused for its channel. Row 2 and row 6
    # (no id) are not counted as endpoints of u1 either.
    assert _messages(whole)[5:8] == [
        f"endpoints.parquet row {row}: User.UserId already has 2 endpoints in this input; Pinpoint refuses "
        f"endpoint {position} of a user for {channel}"
        for row, position, channel in ((8, 3, "EMAIL"), (9, 4, "SMS"), (10, 5, "SMS"))
    ]


@pytest.mark.parametrize("rows", [2, 3])
def test_slices_are_refused_as_when_validated_whole_even_if_every_hash_collides(rows, monkeypatch):
    # Across slices, ids and user ids are found by hash and confirmed by their text: with every
    # value hashing alike, the text alone must still give the rejections of the whole table.
    monkeypatch.setattr(quotas, "MAX_ENDPOINTS_PER_USER_ID", 2)
    monkeypatch.setattr(validation_state, "hashed", lambda values: np.zeros(len(values), dtype=np.uint64))
    table = _table(
        "endpoints.parquet",
        {
            "Id": ["Abc", "x", "abc", "y", "z", "X", "w", "q", "Q"],
            "ChannelType": ["SMS"] * 9,
            "User.UserId": ["u1", "u2", "u1", "u1", "u3", "u2", "u1", "u3", "u4"],
        },
    )
    whole = validation.endpoints(table)
    assert whole.rejected.tolist() == [False, False, True, False, False, True, True, False, True]
    assert _sliced(table, rows) == (whole.rejected.tolist(), _messages(whole))


@pytest.mark.parametrize("rows", [1, 2, 3, 5])
@pytest.mark.parametrize(
    ("ids", "users", "distinct", "within"),
    [
        (["a", "B", "c", "d", "e", "f"], ["u1", "u1", "u2", None, "u2", "u3"], True, True),
        (["a", "B", "c", "d", "b", "f"], ["u1", "u1", "u2", None, "u2", "u3"], False, True),  # 'b' repeats 'B'
        (["a", "B", "c", "d", "e", "f"], ["u1", "u1", "u2", "u1", "u2", "u3"], True, False),  # u1's third row
        ([1.0, 2.0, 3.0, 4.0, 5.0, 1.0], ["u1", "u2", "u3", "u4", "u5", "u6"], False, True),  # 1.0 is made '1' twice
    ],
)
def test_the_whole_table_lets_slices_skip_only_checks_that_cannot_refuse(
    rows, ids, users, distinct, within, monkeypatch
):
    # Told that no id repeats in any case, or that no user has more rows than allowed, the slices
    # skip carrying them; otherwise they are carried. Either way: the rejections of the whole table.
    monkeypatch.setattr(quotas, "MAX_ENDPOINTS_PER_USER_ID", 2)
    table = _table("endpoints.parquet", {"Id": ids, "ChannelType": ["SMS"] * 6, "User.UserId": users})
    seen = validation.seen_for(table)
    assert (seen.ids_distinct, seen.users_within_limit) == (distinct, within)
    whole = validation.endpoints(table)
    assert whole.rejected.any() == (not distinct or not within)
    assert _sliced(table, rows, seen) == (whole.rejected.tolist(), _messages(whole))


def test_a_column_too_large_for_one_string_array_takes_no_shortcut(monkeypatch):
    # More than 2 GiB of id text cannot be made one string array; the slices then check every row
    # against the earlier ones, as without the whole-table look (slices alone are always small enough).
    from airflow_provider_pinpoint.prepare import coerce

    def too_large(array):
        raise pa.ArrowInvalid("offset overflow while concatenating arrays")

    table = _table("endpoints.parquet", {"Id": ["a", "B", "b"], "ChannelType": ["SMS"] * 3, "User.UserId": ["u"] * 3})
    monkeypatch.setattr(coerce, "to_string", too_large)
    seen = validation.seen_for(table)
    assert (seen.ids_distinct, seen.users_within_limit) == (False, False)


def test_an_endpoint_id_repeating_an_earlier_slice_names_that_slice_s_row():
    table = _table("endpoints.csv", {"Id": ["a", "Bee", "c", "bee", "BEE"]})
    rejected, messages = _sliced(table, 2)
    assert rejected == [False, False, False, True, True]
    assert messages == [
        "endpoints.csv row 4: Id 'bee' differs only in case from 'Bee' (endpoints.csv row 2); "
        "Pinpoint endpoint ids are case-insensitive, so the first spelling wins",
        "endpoints.csv row 5: Id 'BEE' differs only in case from 'Bee' (endpoints.csv row 2); "
        "Pinpoint endpoint ids are case-insensitive, so the first spelling wins",
    ]


def test_a_parquet_uuid_column_is_read_as_its_canonical_text(tmp_path):
    # Parquet's UUID type reads back as Arrow's uuid extension: ids are its 8-4-4-4-12 text, as
    # Python's uuid module writes it; nulls stay missing; a slice reads its own rows.
    import uuid

    import pyarrow.parquet as pq

    values = [uuid.UUID(int=n * 0x0123456789ABCDEF0FEDCBA987654321 % 2**128) for n in range(1, 6)]
    raw = [value.bytes for value in values]
    raw[2] = None
    pq.write_table(pa.table({"Id": pa.array(raw, pa.uuid())}), tmp_path / "ids.parquet")
    column = pq.read_table(tmp_path / "ids.parquet").column("Id")
    expected = [None if value is None else str(uuid.UUID(bytes=value)) for value in raw]
    assert coerce.to_string(column)[0].to_pylist() == expected
    assert coerce.to_string(column.slice(1, 3))[0].to_pylist() == expected[1:4]

    checked = validation.endpoints(_table("ids.parquet", {"Id": column.combine_chunks(), "ChannelType": ["SMS"] * 5}))
    assert checked.columns["Id"].to_pylist() == expected
    assert checked.rejected.tolist() == [False, False, True, False, False]  # only the missing id


def test_columns_of_types_with_no_text_reject_their_rows_instead_of_failing_the_load():
    fixed = pa.array([b"ab\xff", b"ok!", None], pa.binary(3))  # fixed-size binary: UTF-8 where it is
    interval = pa.array([pa.MonthDayNano([1, 2, 3]), None, pa.MonthDayNano([0, 0, 1])], pa.month_day_nano_interval())
    checked = _endpoints(**{"User.UserId": fixed, "Location.City": interval})
    assert checked.columns["User.UserId"].to_pylist() == [None, "ok!", None]
    assert checked.rejected.tolist() == [True, False, True]  # bad UTF-8 and an interval; nothing; an interval
    messages = _messages(checked)
    assert "User.UserId" in messages[0] and "Location.City" in messages[1]

"""Rows the sync state finds unchanged skip the rules that judge a row by its own values; no other rule."""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.prepare import flow
from airflow_provider_pinpoint.prepare.validation import endpoint_rules
from tests.state.tables import load_endpoints

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _small_slices(monkeypatch):
    """Endpoints validated 4 rows at a time: what validation carries from slice to slice counts too."""
    monkeypatch.setattr(flow, "prepare", functools.partial(flow.prepare, batch_rows=4))


def _table(n: int, *, changed: set[int] = frozenset(), start: int = 0, **columns: dict[int, object]) -> pa.Table:
    """``n`` valid endpoints ep-<i> (a tag per row, "x" added where ``changed``); ``columns``: a column's values by row."""
    rows = range(start, start + n)
    table = {
        "Id": [f"ep-{i:05d}" for i in rows],
        "ChannelType": ["EMAIL"] * n,
        "Address": [f"user{i}@example.com" for i in rows],
        "Attributes.tag": [f"t{i}x" if i in changed else f"t{i}" for i in rows],
        "Location.Country": ["US"] * n,
        "OptOut": ["NONE"] * n,
        "User.UserId": [f"user-{i}" for i in rows],
    }
    for name, values in columns.items():
        table[name.replace("__", ".")] = [values.get(i, table[name.replace("__", ".")][i - start]) for i in rows]
    return pa.table(table)


def _load(emulator, tmp_path: Path, run: str, table: pa.Table, *, state: bool = True):
    return load_endpoints(emulator.url, tmp_path, run, table, state=state)


def _outcome(report) -> dict[str, list]:
    results = report.results.sort_values("source_row")
    return {
        status: list(zip(rows["source_row"], rows["endpoint_id"], rows["message"], strict=True))
        for status, rows in results.groupby("status")
    }


def test_bad_rows_are_rejected_alike_with_a_state_and_without(emulator, tmp_path):
    # Day 2 breaks rules in changed rows (one row's own values) and across rows, unchanged rows
    # included (an id repeated in another case after an unchanged row; a user's 16th endpoint
    # where the 16th in order is a row accepted yesterday): the same rejections and messages as a
    # run without a state, and every other row unchanged or sent.
    crowd = {i: "crowd" for i in range(3, 18)}  # 15 endpoints of one user: within Pinpoint's limit
    day1 = _table(20, User__UserId=crowd)
    assert _load(emulator, tmp_path, "day1", day1).summary.accepted == 20
    bad = {2: "XX", 19: "us"}  # invalid countries in rows that changed
    day2 = pa.concat_tables(
        [
            _table(1, start=40, User__UserId={40: "crowd"}),  # a new endpoint of the user, first in order
            _table(20, changed={2, 11, 19}, User__UserId=crowd, Location__Country=bad),
            _table(1, start=5).set_column(0, "Id", pa.array(["EP-00005"])),  # ep-00005 again, in capitals
        ]
    )
    with_state = _load(emulator, tmp_path, "day2", day2)
    without = _load(emulator, tmp_path, "plain", day2, state=False)
    rejected = _outcome(with_state)["rejected"]
    assert rejected == _outcome(without)["rejected"]
    assert [(row, endpoint) for row, endpoint, _ in rejected] == [
        (1, "ep-00040"),  # sent: the service, holding the user's 15 endpoints of yesterday, refuses it
        (4, "ep-00002"),
        (19, "ep-00017"),  # the 16th endpoint of "crowd" in the input, unchanged since yesterday
        (21, "ep-00019"),
        (22, "EP-00005"),
    ]
    assert "Location.Country is 'XX'" in rejected[1][2] and "refuses endpoint 16" in rejected[2][2]
    assert "differs only in case" in rejected[4][2]
    assert [row[1] for row in _outcome(with_state)["accepted"]] == ["ep-00011"]
    assert with_state.summary.unchanged == 16


def test_values_the_service_accepted_before_are_not_judged_again(emulator, tmp_path, monkeypatch):
    # A rule that came after the values were accepted (here: "XX" counted as a country yesterday)
    # does not reject the row while it stays unchanged: nothing is sent for it. Before, it was
    # rejected though nothing would have gone. Changed, or without a state, it is judged as ever.
    table = _table(6, Location__Country={1: "XX", 4: "XX"})
    countries = endpoint_rules._COUNTRIES
    monkeypatch.setattr(endpoint_rules, "_COUNTRIES", countries | {"XX"})
    assert _load(emulator, tmp_path, "day1", table).summary.accepted == 6
    monkeypatch.setattr(endpoint_rules, "_COUNTRIES", countries)
    day2 = _table(6, changed={4}, Location__Country={1: "XX", 4: "XX"})
    with_state = _outcome(_load(emulator, tmp_path, "day2", day2))
    assert [row[:2] for row in with_state["unchanged"]] == [(i + 1, f"ep-{i:05d}") for i in (0, 1, 2, 3, 5)]
    assert [row[:2] for row in with_state["rejected"]] == [(5, "ep-00004")]
    without = _outcome(_load(emulator, tmp_path, "plain", day2, state=False))
    assert [row[:2] for row in without["rejected"]] == [(2, "ep-00001"), (5, "ep-00004")]


def test_a_row_unchanged_in_values_is_held_to_the_key_cap_of_todays_column_order(emulator, tmp_path, monkeypatch):
    # The row hash ignores column order; the per-application key cap counts by it. Day 2 puts
    # Attributes.z first, so ep-00000's Attributes.b is key 3 of a cap of 2: without a state that
    # rejects ep-00000 and sends EP-00000 (its other row, in capitals); with one, alike.
    monkeypatch.setattr(quotas, "MAX_ENDPOINT_CUSTOM_ATTRIBUTES_PER_APP", 2)
    day1 = _table(2).append_column("Attributes.b", pa.array(["x", None]))
    day1 = day1.append_column("Attributes.z", pa.array([None, None], pa.string()))  # key 3, used by no row
    assert _load(emulator, tmp_path, "day1", day1).summary.accepted == 2
    again = _table(1).set_column(0, "Id", pa.array(["EP-00000"]))
    again = again.append_column("Attributes.b", pa.array([None], pa.string()))
    again = again.append_column("Attributes.z", pa.array(["new"]))
    day2 = pa.concat_tables([day1, again])
    day2 = day2.select(["Attributes.z", *day2.column_names[:-1]])
    with_state = _outcome(_load(emulator, tmp_path, "day2", day2))
    without = _outcome(_load(emulator, tmp_path, "plain", day2, state=False))
    assert [row[:2] for row in with_state["rejected"]] == [row[:2] for row in without["rejected"]] == [(1, "ep-00000")]
    assert "Attributes.b is distinct endpoint attribute or metric number 3" in with_state["rejected"][0][2]
    assert [row[:2] for row in with_state["accepted"]] == [(3, "EP-00000")]
    assert [row[:2] for row in with_state["unchanged"]] == [(2, "ep-00001")]

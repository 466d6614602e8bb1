"""A synced endpoints table builds the bodies of its changed rows only: their size is checked as without a state."""

from __future__ import annotations

import functools

import pyarrow as pa
import pytest

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.prepare import flow
from tests.state.tables import load_endpoints

pytestmark = pytest.mark.integration


def _table(n: int, *, changed: frozenset[int] = frozenset(), long_address: frozenset[int] = frozenset()) -> pa.Table:
    """``n`` valid endpoints ep-<i>; a tag changed where ``changed``, a long address where ``long_address``."""
    return pa.table(
        {
            "Id": [f"ep-{i:05d}" for i in range(n)],
            "ChannelType": ["EMAIL"] * n,
            "Address": [("u" * 240 if i in long_address else f"user{i}") + "@example.com" for i in range(n)],
            "Attributes.tag": [f"t{i}x" if i in changed else f"t{i}" for i in range(n)],
        }
    )


def _outcome(report) -> dict[str, list]:
    results = report.results.sort_values("source_row")
    return {
        status: list(zip(rows["source_row"], rows["endpoint_id"], rows["message"], strict=True))
        for status, rows in results.groupby("status")
    }


def test_oversized_changed_rows_are_refused_alike_with_a_state_and_without(emulator, tmp_path, monkeypatch):
    # Slices of 4 rows: one with no changed row, one whose only changed row is too large, one with
    # a changed row that fits and one that does not, one whose every row changed.
    monkeypatch.setattr(flow, "prepare", functools.partial(flow.prepare, batch_rows=4))
    monkeypatch.setattr(quotas, "MAX_ENDPOINT_BYTES", 200)
    day1 = _table(16)
    assert load_endpoints(emulator.url, tmp_path, "day1", day1).summary.accepted == 16
    day2 = _table(16, changed=frozenset({5, 9, 10, 12, 13, 14, 15}), long_address=frozenset({5, 10, 13}))
    with_state = _outcome(load_endpoints(emulator.url, tmp_path, "day2", day2))
    without = _outcome(load_endpoints(emulator.url, tmp_path, "plain", day2, state=False))
    assert with_state["rejected"] == without["rejected"]
    assert [row[:2] for row in with_state["rejected"]] == [(6, "ep-00005"), (11, "ep-00010"), (14, "ep-00013")]
    assert all(
        "(whole row) serialises to" in row[2] and "allows 200 per endpoint" in row[2] for row in without["rejected"]
    )
    assert [row[1] for row in with_state["accepted"]] == ["ep-00009", "ep-00012", "ep-00014", "ep-00015"]
    assert [row[1] for row in with_state["unchanged"]] == [f"ep-{i:05d}" for i in (0, 1, 2, 3, 4, 6, 7, 8, 11)]

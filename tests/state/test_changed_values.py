"""What counts as changed now that the sync compares a hash of each row's normalised values (not
of its body): any value, any column added or removed, and a state written by the body-hashing code."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint.prepare import validation
from airflow_provider_pinpoint.prepare.bodies import endpoint_bodies
from airflow_provider_pinpoint.state.files import ENDPOINTS_SCHEMA
from airflow_provider_pinpoint.state.keys import text_hashes, to_arrow
from tests.state.tables import APP, endpoints
from tests.state.test_sync import Loads, accepted

pytestmark = pytest.mark.integration


@pytest.fixture
def loads(emulator, tmp_path) -> Loads:
    return Loads(emulator, tmp_path)


def with_value(table: pa.Table, column: str, row: int, value: object) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    return table.set_column(
        table.schema.get_field_index(column), column, pa.array(values, table.schema.field(column).type)
    )


def test_a_changed_value_in_any_body_field_is_sent_and_only_that_row(loads, emulator):
    day1 = endpoints(20).append_column("Location.City", pa.array([f"city{i}" for i in range(20)]))
    loads(None, day1)
    day2 = with_value(day1, "Address", 2, "new2@example.com")
    day2 = with_value(day2, "Attributes.segment", 4, "v2")
    day2 = with_value(day2, "Metrics.orders", 6, 99.0)
    day2 = with_value(day2, "Location.City", 8, None)  # a value gone counts too
    day2 = with_value(day2, "ChannelType", 10, "SMS")
    day2 = with_value(day2, "Address", 10, "+15555550100")
    second = loads(None, day2)
    assert accepted(second, "endpoint", "endpoint_id") == ["ep-00002", "ep-00004", "ep-00006", "ep-00008", "ep-00010"]
    assert second.summary.unchanged == 15
    assert emulator.endpoints(APP)["ep-00006"]["Metrics"]["orders"] == 99.0
    third = loads(None, day2)  # the same values again: nothing goes
    assert (third.summary.accepted, third.summary.unchanged) == (0, 20)


def test_a_column_added_or_removed_counts_as_changed(loads):
    loads(None, endpoints(10))
    added = loads(None, endpoints(10).append_column("Demographic.Locale", pa.array(["en_US"] * 10)))
    assert (added.summary.accepted, added.summary.unchanged) == (10, 0)
    removed = loads(None, endpoints(10).drop_columns(["Metrics.orders"]))
    assert (removed.summary.accepted, removed.summary.unchanged) == (10, 0)
    again = loads(None, endpoints(10).drop_columns(["Metrics.orders"]))
    assert (again.summary.accepted, again.summary.unchanged) == (0, 10)


def test_a_state_of_body_hashes_sends_everything_once_and_skips_nothing(loads, tmp_path):
    """A state as the previous code wrote it (the blake2b hash of each exact body) never makes a row
    look unchanged: the first run after the change sends every endpoint once, and writes the new hashes."""
    table = endpoints(12)
    checked = validation.endpoints(
        table.append_column("_source", pa.array(["x"] * 12)).append_column("_source_row", pa.array(np.arange(12))),
        validation.EndpointsSeen(),
    )
    assert not checked.rejected.any()
    bodies = endpoint_bodies(checked.columns, len(checked))
    old = pa.table(
        [
            pc.cast(table.column("Id"), pa.string()),
            to_arrow(text_hashes(bodies)),
            pa.array([1_700_000_000_000] * 12, pa.int64()).cast(ENDPOINTS_SCHEMA.field("accepted_at").type),
        ],
        schema=ENDPOINTS_SCHEMA,
    )
    folder = tmp_path / "state" / "pinpoint" / APP / "endpoints"
    folder.mkdir(parents=True)
    pq.write_table(old, folder / "main.parquet")
    first = loads(None, table)
    assert (first.summary.accepted, first.summary.unchanged) == (12, 0)
    second = loads(None, table)
    assert (second.summary.accepted, second.summary.unchanged) == (0, 12)


@pytest.mark.parametrize("kind", [pa.int64(), pa.float64()])
def test_numeric_endpoint_ids_are_found_in_the_state(loads, kind):
    """Ids read as numbers are matched by the text validation makes of them (42.0 -> "42")."""
    table = endpoints(8).set_column(0, "Id", pa.array(range(100, 108), kind))
    first = loads(None, table)
    assert (first.summary.accepted, first.summary.unchanged) == (8, 0)
    second = loads(None, table)
    assert (second.summary.accepted, second.summary.unchanged) == (0, 8)
    assert sorted(second.results["endpoint_id"]) == [str(i) for i in range(100, 108)]

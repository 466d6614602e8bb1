"""Tables given as any object with the Arrow PyCapsule stream interface (polars DataFrames and the like)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.flow import prepare
from airflow_provider_pinpoint.prepare.read import describe_source, read_batches, read_table
from tests.helpers.arrow_stream import DataFrame

# Polars exports text as string_view and lists as large_list.
EVENTS = pa.table(
    {
        "EndpointId": pa.array(["ep-1", "ep-2", "ep-3"], pa.string_view()),
        "EventType": pa.array(["buy", "view", "view"], pa.string_view()),
        "Timestamp": pa.array([1_795_000_000_000] * 3, pa.timestamp("ms", tz="UTC")),
        "Metrics.price": [1.5, None, 2.0],
    }
)


def test_an_arrow_stream_object_is_read_in_batches_under_the_table_kind():
    batches = list(read_batches(DataFrame(EVENTS), kind="events", batch_rows=2))
    assert [batch.num_rows for batch in batches] == [2, 1]
    rows = pa.Table.from_batches(batches).to_pylist()
    assert [(row["EndpointId"], row["_source"], row["_source_row"]) for row in rows] == [
        ("ep-1", "events", 1),
        ("ep-2", "events", 2),
        ("ep-3", "events", 3),
    ]


def test_arrow_stream_objects_are_described_as_dataframes_or_arrow_data():
    assert describe_source(DataFrame(EVENTS)) == "DataFrame"
    assert describe_source(EVENTS.to_reader()) == "Arrow table"


def test_each_read_asks_for_a_new_stream():
    frame = DataFrame(EVENTS)
    out = list(prepare(frame, column_mapping={"Metrics.price": "Metrics.cost"}))
    assert sum(part.event_count for part in out if not isinstance(part, list)) == 3
    assert frame.streams == 2  # the mapping check reads the schema, then the rows are read


def test_a_record_batch_reader_is_refused_since_it_can_be_read_once():
    with pytest.raises(InputError, match=r"RecordBatchReader can be read only once.*reader\.read_all\(\)"):
        read_table(EVENTS.to_reader(), kind="events")

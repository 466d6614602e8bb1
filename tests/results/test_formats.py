"""Both formats give back every value as written: line breaks, quotes, empty text and nulls included."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from airflow_provider_pinpoint.results.rows import RESULTS_SCHEMA
from airflow_provider_pinpoint.results.store import ResultsStore

AWKWARD = ["line\nbreak", "crlf\r\nbreak", "cr\ronly", 'a "quoted" id', "", "NULL", "N/A", " padded ", "é\n\n"]


def rows(n: int) -> pa.Table:
    """``n`` results rows whose text columns cycle through awkward values; every endpoint id breaks a line."""
    sent = datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    return pa.Table.from_pydict(
        {
            "run_id": ["run-1"] * n,
            "record_type": ["event"] * n,
            "endpoint_id": [f"ep\n{i % 97}\n{AWKWARD[i % len(AWKWARD)]}" for i in range(n)],
            "event_id": [None if i % 5 == 0 else AWKWARD[i % len(AWKWARD)] + str(i) for i in range(n)],
            "source": ["events.csv"] * n,
            "source_row": list(range(1, n + 1)),
            "status": ["accepted" if i % 3 else "rejected" for i in range(n)],
            "status_code": [None if i % 7 == 0 else 202 for i in range(n)],
            "message": [None if i % 11 == 0 else AWKWARD[i % len(AWKWARD)] for i in range(n)],
            "attempts": [1] * n,
            "request_id": [None if i % 4 == 0 else f"req-{i}" for i in range(n)],
            "sent_at": [None if i % 6 == 0 else sent for i in range(n)],
        },
        schema=RESULTS_SCHEMA,
    )


def written(location, table: pa.Table) -> ResultsStore:
    store = ResultsStore(location)
    writer = store.writer("run-1")
    for batch in table.to_batches(max_chunksize=500):
        writer.add(batch)
    writer.close()
    store.compact()
    return ResultsStore(location)


@pytest.mark.parametrize("name", ["results.parquet", "results.csv"])
def test_every_value_reads_back_as_written(tmp_path, name):
    table = rows(200)
    assert written(tmp_path / name, table).read().equals(table)


def test_a_csv_table_over_several_read_blocks_with_line_breaks_in_values_resumes(tmp_path):
    table = rows(40_000)
    location = tmp_path / "results.csv"
    store = written(location, table)
    assert location.stat().st_size > 3 * 1024 * 1024  # several of the CSV reader's 1 MB blocks
    done = store.done_rows()["events.csv"]
    assert list(done) == list(range(1, 40_001))
    assert done.endpoint_ids.to_pylist() == table.column("endpoint_id").to_pylist()


@pytest.mark.parametrize("long", [3 << 20, 20 << 20])
def test_a_csv_row_longer_than_a_read_block_reads_back(tmp_path, long):
    # A rejected row keeps its endpoint id whatever its length: a table holding one over the CSV
    # reader's 1 MB block was written, then refused as "not a results table", so no resume.
    table = rows(3_000)
    ids = table.column("endpoint_id").to_pylist()
    ids[2_000] = "x" * long + "\n" + ids[2_000]
    table = table.set_column(2, "endpoint_id", pa.array(ids, pa.string()))
    store = written(tmp_path / "results.csv", table)
    assert store.read().equals(table)
    assert list(store.done_rows()["events.csv"]) == list(range(1, 3_001))

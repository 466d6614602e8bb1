"""Inputs that bring their own _source/_source_row columns: each row keeps its own results row."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.read import read_table
from tests.helpers.items import APP, emulator_client

pytestmark = pytest.mark.integration


def events_with_bookkeeping(rows: list[int]) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "EndpointId": [f"ep-{i}" for i in range(n)],
            "EventType": ["view"] * n,
            "Timestamp": pa.array([1_795_000_000_000 + i for i in range(n)], pa.timestamp("ms", tz="UTC")),
            "_source": ["theirs.csv"] * n,
            "_source_row": rows,
        }
    )


def load(path, emulator, tmp_path, **options):
    return load_events(
        str(path),
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
        **options,
    )


def test_own_bookkeeping_naming_a_row_twice_is_refused_before_anything_is_sent(emulator, tmp_path):
    path = tmp_path / "events.parquet"
    pq.write_table(events_with_bookkeeping([1, 2, 3, 4, 5] * 2), path)
    with pytest.raises(InputError, match=r"events\.parquet: data row 6 repeats the _source and _source_row"):
        load(path, emulator, tmp_path)
    assert emulator.events(APP) == []


def test_own_row_numbers_the_results_table_cannot_key_are_refused_before_anything_is_sent(emulator, tmp_path):
    # Sent, such rows failed every compaction after (the results key a row by 40 bits of its number).
    path = tmp_path / "events.parquet"
    pq.write_table(events_with_bookkeeping([1, 2**40 - 1, 2**40]), path)
    with pytest.raises(
        InputError, match=r"events\.parquet: column _source_row is above 1,099,511,627,775 in data row 3"
    ):
        load(path, emulator, tmp_path)
    assert emulator.events(APP) == []


def test_the_largest_own_row_number_the_results_can_key_loads(emulator, tmp_path):
    path = tmp_path / "events.parquet"
    pq.write_table(events_with_bookkeeping([1, 2**40 - 1]), path)
    report = load(path, emulator, tmp_path)
    assert report.summary.accepted == 2
    assert sorted(report.results["source_row"].tolist()) == [1, 2**40 - 1]


def test_own_bookkeeping_repeated_across_the_files_of_a_directory_is_refused(tmp_path):
    pq.write_table(events_with_bookkeeping([1, 2]), tmp_path / "part-0.parquet")
    pq.write_table(events_with_bookkeeping([3, 2]), tmp_path / "part-1.parquet")
    with pytest.raises(InputError, match=r"part-1\.parquet: data row 2 repeats"):
        read_table(tmp_path, kind="events")


def test_own_bookkeeping_dropped_by_the_mapping_gives_every_row_its_results_row(emulator, tmp_path):
    path = tmp_path / "events.parquet"
    pq.write_table(events_with_bookkeeping([1, 2, 3, 4, 5] * 2), path)
    load(path, emulator, tmp_path, column_mapping={"_source": None, "_source_row": None})
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert sorted(results["source_row"]) == list(range(1, 11))
    assert set(results["source"]) == {str(path)}
    assert (results["status"] == "accepted").all()


@pytest.mark.parametrize(("carrying", "plain"), [("a.parquet", "b.parquet"), ("b.parquet", "a.parquet")])
def test_own_bookkeeping_naming_a_row_of_a_plain_file_of_the_same_directory_is_refused(
    emulator, tmp_path, carrying, plain
):
    """A directory of shard files (with their own _source) and plain ones: a carried pair may be the very
    name the loader gives a plain file's row, read before or after it; both would share one results row."""
    folder = tmp_path / "events"
    folder.mkdir()
    pq.write_table(events_with_bookkeeping([1, 2]).drop_columns(["_source", "_source_row"]), folder / plain)
    carried = events_with_bookkeeping([5, 2]).set_column(3, "_source", pa.array([str(folder / plain)] * 2))
    pq.write_table(carried, folder / carrying)
    with pytest.raises(InputError, match=r"data row 2 (repeats|has) the _source and _source_row"):
        load(folder, emulator, tmp_path)
    assert len(emulator.events(APP)) <= 2  # the file read first may have gone; the one that repeats its names not


def test_own_bookkeeping_beside_plain_files_of_other_names_loads(emulator, tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    pq.write_table(events_with_bookkeeping([1, 2]).drop_columns(["_source", "_source_row"]), folder / "a.parquet")
    pq.write_table(events_with_bookkeeping([1, 2]), folder / "b.parquet")
    load(folder, emulator, tmp_path)
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert len(results) == 4 and (results["status"] == "accepted").all()

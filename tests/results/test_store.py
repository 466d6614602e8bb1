"""The results table: journals while running, one clean table at the location afterwards, resume input."""

from __future__ import annotations

import gc
import os
import posixpath
import sys
from datetime import UTC, datetime

import pandas as pd
import pyarrow.compute as pc
import pytest

from airflow_provider_pinpoint.errors import InputError, PinpointLoaderError
from airflow_provider_pinpoint.results import store as store_module
from airflow_provider_pinpoint.results.rows import ACCEPTED, COLUMNS, FAILED, REJECTED, ItemResult, Outcomes
from airflow_provider_pinpoint.results.store import ResultsStore, ResultsWriteError
from tests.helpers.items import make_items

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def results(items, status, run="r"):
    code = 202 if status == ACCEPTED else 500
    return Outcomes.of_results([ItemResult(item, status, code, "", 1, f"{run}-req", NOW) for item in items])


@pytest.mark.parametrize("name", ["results.parquet", "results.csv"])
def test_a_finished_run_leaves_exactly_one_clean_table(tmp_path, name):
    location = tmp_path / name
    items = make_items(3, 4)
    store = ResultsStore(location)
    writer = store.writer("run-1")
    writer.add_outcomes(results(items[:8], ACCEPTED))
    writer.add_outcomes(results(items[8:], FAILED))
    writer.close()
    store.compact()
    assert os.listdir(tmp_path) == [name]
    frame = pd.read_csv(location) if name.endswith(".csv") else pd.read_parquet(location)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == len(items)
    assert frame["status"].value_counts().to_dict() == {ACCEPTED: 8, FAILED: len(items) - 8}


def test_a_rerun_replaces_failed_rows_and_keeps_one_row_each(tmp_path):
    location = tmp_path / "results.parquet"
    items = make_items(2, 5)
    first = ResultsStore(location)
    writer = first.writer("run-1")
    writer.add_outcomes(results(items[:6], ACCEPTED, "run-1"))
    writer.add_outcomes(results(items[6:], FAILED, "run-1"))
    writer.close()
    first.compact()

    second = ResultsStore(location)
    writer = second.writer("run-2")
    writer.add_outcomes(results(items[6:], ACCEPTED, "run-2"))
    writer.close()
    assert second.compact() == {ACCEPTED: len(items)}
    table = pd.read_parquet(location)
    assert len(table) == len(items)
    assert set(table["status"]) == {ACCEPTED}
    assert table["run_id"].value_counts().to_dict() == {"run-1": 6, "run-2": len(items) - 6}


def test_a_killed_run_journal_is_read_for_resume_even_when_cut_short(tmp_path):
    location = tmp_path / "out" / "results.parquet"
    items = make_items(2, 5)
    store = ResultsStore(location)
    writer = store.writer("run-1")
    writer.add_outcomes(results(items[:4], ACCEPTED))
    writer.add_outcomes(results(items[4:6], REJECTED))
    writer.add_outcomes(results(items[6:9], FAILED))
    writer._file.write(b"\xff\xff\xff\xff\x10\x00")  # a batch the kill cut in half
    writer._file.flush()
    # no close(): the process died here
    resumed = ResultsStore(location)
    assert resumed.exists()
    done = resumed.done_rows()
    assert done == {
        "endpoints.parquet": {i.source_row for i in items[:6] if i.record_type == "endpoint"},
        "events.parquet": {i.source_row for i in items[:6] if i.record_type == "event"},
    }


def test_a_location_holding_something_else_is_refused(tmp_path):
    location = tmp_path / "data.parquet"
    pd.DataFrame({"EndpointId": ["a"]}).to_parquet(location)
    with pytest.raises(InputError, match="not a results table"):
        ResultsStore(location).done_rows()


def test_the_format_comes_from_the_extension(tmp_path):
    with pytest.raises(InputError, match=r"\.parquet, \.pq or \.csv"):
        ResultsStore(tmp_path / "results.json")


def test_without_a_location_the_table_is_kept_in_memory():
    items = make_items(1, 2)
    store = ResultsStore(None)
    writer = store.writer("run-1")
    writer.add_outcomes(results(items, ACCEPTED))
    assert store.compact() == {ACCEPTED: len(items)}
    assert store.read().num_rows == len(items)


def test_a_final_decision_outranks_a_later_failure_of_the_same_row(tmp_path):
    location = tmp_path / "results.parquet"
    items = make_items(1, 3)
    store = ResultsStore(location)
    writer = store.writer("run-1")
    writer.add_outcomes(results(items, ACCEPTED))
    writer.add_outcomes(results(items[:2], FAILED))
    writer.close()
    assert store.compact() == {ACCEPTED: len(items)}
    assert set(pd.read_parquet(location)["status"]) == {ACCEPTED}


def test_compaction_streams_many_small_journal_batches_into_few_row_groups(tmp_path):
    import pyarrow.parquet as pq

    location = tmp_path / "results.parquet"
    items = make_items(300, 9)  # 3,000 rows, written 10 at a time as answers would come
    store = ResultsStore(location)
    writer = store.writer("run-1")
    for start in range(0, len(items), 10):
        writer.add_outcomes(results(items[start : start + 10], ACCEPTED))
    writer.close()
    assert store.compact() == {ACCEPTED: len(items)}
    assert pq.ParquetFile(location).metadata.num_row_groups == 1
    assert pd.read_parquet(location)["source_row"].tolist() == [i.source_row for i in items]


def test_a_long_service_message_is_stored_shortened(tmp_path):
    [item] = make_items(1, 0)
    message = "Invalid attribute: " + "value too long; " * 400
    store = ResultsStore(tmp_path / "results.parquet")
    writer = store.writer("run-1")
    writer.add_outcomes(Outcomes.of_results([ItemResult(item, REJECTED, 400, message, 1, "req", NOW)]))
    writer.close()
    store.compact()
    [stored] = pd.read_parquet(tmp_path / "results.parquet")["message"]
    assert stored.startswith("Invalid attribute: value too long; ") and len(stored) <= 500


def journal_rows(*numbers, status=ACCEPTED, run="r"):
    """Results rows of source ``s`` at ``numbers``, as a journal batch."""
    import pyarrow as pa

    from airflow_provider_pinpoint.results.rows import RESULTS_SCHEMA

    return pa.RecordBatch.from_pylist(
        [
            {"run_id": run, "record_type": "event", "endpoint_id": f"e{i}", "source": "s", "source_row": i}
            | {"status": status, "attempts": 1}
            for i in numbers
        ],
        schema=RESULTS_SCHEMA,
    )


def test_a_journal_that_grows_between_the_two_passes_stops_compaction_instead_of_misplacing_rows(tmp_path, monkeypatch):
    # Run A (still writing: two runs on one location where the lock is absent or best effort) opened
    # its journal first; run B's compaction must not apply its keep mask to rows shifted by A's growth.
    monkeypatch.setattr(store_module, "_KEPT_BYTES", 0)  # a table too large to keep: read twice
    location = tmp_path / "results.parquet"
    a = ResultsStore(location).writer("run-A")
    a.add(journal_rows(1, 2, status=FAILED, run="run-A"))
    store = ResultsStore(location)
    b = store.writer("run-B")
    b.add(journal_rows(1, 2, 3, run="run-B"))
    b.close()
    journal_a = sorted(os.listdir(store.staging))[0]
    real_open = store.fs.open
    opened: list[str] = []

    def open_(path, mode="rb", **kwargs):
        if mode == "rb" and path.endswith(journal_a):
            opened.append(path)
            if len(opened) == 2:  # the second pass: A answered meanwhile
                a.add(journal_rows(4, 5, run="run-A"))
        return real_open(path, mode, **kwargs)

    store.fs.open = open_
    try:
        with pytest.raises(PinpointLoaderError) as caught:
            store.compact()
    finally:
        del store.fs.open
    assert "changed while they were compacted" in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == [".results.parquet.staging"]  # no table, no temporary file
    assert len(os.listdir(store.staging)) == 2  # every journal kept
    a.close()
    done = ResultsStore(location)
    assert done.compact() == {ACCEPTED: 5}
    table = done.read()
    assert sorted(zip(table["source_row"].to_pylist(), table["run_id"].to_pylist(), strict=True)) == [
        (1, "run-B"),
        (2, "run-B"),
        (3, "run-B"),
        (4, "run-A"),
        (5, "run-A"),
    ]


def test_a_journal_that_grows_while_kept_rows_are_written_stops_compaction_and_keeps_every_journal(tmp_path):
    # The rows of the first pass are kept for the table (a small run), so the journals are read
    # once: run A's journal growing after that read must not be removed with rows the table lacks.
    location = tmp_path / "results.parquet"
    a = ResultsStore(location).writer("run-A")
    a.add(journal_rows(1, 2, status=FAILED, run="run-A"))
    store = ResultsStore(location)
    b = store.writer("run-B")
    b.add(journal_rows(1, 2, 3, run="run-B"))
    b.close()
    real_open = store.fs.open
    opened: list[str] = []

    def open_(path, mode="rb", **kwargs):
        opened.append(mode)
        if mode == "wb":  # the table being written: A answered meanwhile
            a.add(journal_rows(4, 5, run="run-A"))
        return real_open(path, mode, **kwargs)

    store.fs.open = open_
    try:
        with pytest.raises(PinpointLoaderError) as caught:
            store.compact()
    finally:
        del store.fs.open
    assert opened == ["rb", "wb"]  # A's journal read once (B's own journal is taken from its writer)
    assert "changed while they were compacted" in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == [".results.parquet.staging"]  # no table, no temporary file
    assert len(os.listdir(store.staging)) == 2  # every journal kept
    a.close()
    assert ResultsStore(location).compact() == {ACCEPTED: 5}


@pytest.mark.parametrize("change", ["removed", "grown"])
def test_on_object_storage_a_journal_changed_while_kept_rows_are_written_stops_compaction(tmp_path, change):
    # Object storage: a journal read once, its rows kept for the table, then removed (another run's
    # compaction, where the lock is best effort) or written again before the table replaces the
    # location: nothing is removed, and the error says the journals changed.
    location = f"memory://store-tests/{tmp_path.name}/results.parquet"
    a = ResultsStore(location).writer("run-A")  # another run's journal: read from its file
    a.add(journal_rows(1, 2, status=FAILED, run="run-A"))
    a.close()
    store = ResultsStore(location)
    b = store.writer("run-B")
    b.add(journal_rows(1, 2, 3, run="run-B"))
    b.close()
    fs = store.fs
    journals = fs.ls(store.staging, detail=False)
    [theirs] = [j for j in journals if "run-A" in j]
    real_open = fs.open
    opened: list[str] = []

    def open_(path, mode="rb", **kwargs):
        opened.append(mode)
        if mode == "wb":  # the table being written, from the rows kept
            if change == "removed":
                fs.rm(theirs)
            else:
                data = fs.cat_file(theirs)
                with real_open(theirs, "wb") as f:
                    f.write(data + bytes(16))
        return real_open(path, mode, **kwargs)

    fs.open = open_
    try:
        with pytest.raises(PinpointLoaderError) as caught:
            store.compact()
    finally:
        del fs.open
    assert opened == ["rb", "wb"]  # A's journal read once: the rows were kept
    assert "changed while they were compacted" in str(caught.value) and "\n" not in str(caught.value)
    left = fs.ls(f"/store-tests/{tmp_path.name}", detail=False)
    assert [posixpath.basename(p) for p in left] == [".results.parquet.staging"]  # no table, no temporary file
    assert sorted(fs.ls(store.staging, detail=False)) == sorted(j for j in journals if change == "grown" or j != theirs)
    fs.rm(f"/store-tests/{tmp_path.name}", recursive=True)


@pytest.mark.parametrize("kept_bytes", [0, 100_000, 1 << 30])
def test_the_table_is_the_same_whether_compaction_keeps_its_rows_or_reads_them_again(tmp_path, monkeypatch, kept_bytes):
    # Read twice, kept until they outgrow the budget, or kept whole: the same rows, counts and order.
    monkeypatch.setattr(store_module, "_KEPT_BYTES", kept_bytes)
    location = tmp_path / "results.parquet"
    first = ResultsStore(location)
    writer = first.writer("run-1")
    writer.add(journal_rows(*range(1, 3_000), status=FAILED))
    writer.close()
    assert first.compact() == {FAILED: 2_999}
    store = ResultsStore(location, rotate_rows=1_000)
    writer = store.writer("run-2")
    for start in range(1, 3_000, 500):  # the earlier table, then journals of three rotations
        writer.add(journal_rows(*range(start, start + 500, 2), run="run-2"))
    writer.close()
    assert store.compact() == {ACCEPTED: 1_500, FAILED: 1_499}
    table = ResultsStore(location).read()
    assert table.num_rows == 2_999 and len(set(table["source_row"].to_pylist())) == 2_999
    assert [row["status"] for row in table.slice(0, 4).to_pylist()] == [FAILED] * 4  # the table's rows first
    accepted = table.filter(pc.equal(table["status"], ACCEPTED))
    assert accepted["source_row"].to_pylist() == list(range(1, 3_000, 2))
    assert set(accepted["run_id"].to_pylist()) == {"run-2"}


def test_a_journal_gone_before_compaction_reads_it_is_one_line_and_leaves_the_table_alone(tmp_path):
    location = tmp_path / "results.parquet"
    store = ResultsStore(location)
    writer = ResultsStore(location).writer("run-1")  # another run's journal: read from its file
    writer.add(journal_rows(1, 2))
    writer.close()
    [journal] = os.listdir(store.staging)
    real_open = store.fs.open

    def open_(path, mode="rb", **kwargs):
        if mode == "rb" and path.endswith(journal):
            os.unlink(path)  # another run's compaction took it between the listing and the read
        return real_open(path, mode, **kwargs)

    store.fs.open = open_
    try:
        with pytest.raises(ResultsWriteError) as caught:
            store.compact()
    finally:
        del store.fs.open
    assert "\n" not in str(caught.value) and "FileNotFoundError" in str(caught.value)
    assert os.listdir(tmp_path) == [".results.parquet.staging"]


def test_a_journal_gone_between_the_passes_leaves_no_traceback_behind_on_stderr(tmp_path, monkeypatch):
    # The table writer is open when the second pass fails: left so, a Parquet writer finishes its
    # file when collected, after that file is closed, and Python prints "Exception ignored in ...
    # Traceback" on stderr.
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(store_module, "_KEPT_BYTES", 0)  # a table too large to keep: read twice
    location = tmp_path / "results.parquet"
    store = ResultsStore(location)
    writer = store.writer("run-1")
    writer.add(journal_rows(*range(1, 70_000)))  # more than one chunk: the table writer has begun
    writer.close()
    other = ResultsStore(location).writer("run-2")
    other.add(journal_rows(1))
    other.close()
    last = sorted(os.listdir(store.staging))[-1]
    real_open = store.fs.open
    opened: list[str] = []

    def open_(path, mode="rb", **kwargs):
        if mode == "rb" and path.endswith(last):
            opened.append(path)
            if len(opened) == 2:
                os.unlink(path)
        return real_open(path, mode, **kwargs)

    store.fs.open = open_
    try:
        store.compact()
    except ResultsWriteError as exc:
        message = str(exc)  # the error, and the frames its traceback holds, dropped here
    finally:
        del store.fs.open
    gc.collect()
    assert "FileNotFoundError" in message
    assert unraisable == []
    assert os.listdir(tmp_path) == [".results.parquet.staging"]


def test_a_journal_that_cannot_be_read_stops_the_resume_in_one_line(tmp_path):
    location = tmp_path / "results.parquet"
    store = ResultsStore(location)
    writer = store.writer("run-1")
    writer.add(journal_rows(1, 2))
    writer.close()
    os.mkdir(os.path.join(store.staging, f"{0:020d}-odd-00000.arrows"))  # listed as a journal, not a file
    with pytest.raises(InputError) as caught:
        ResultsStore(location).done_rows()
    message = str(caught.value)
    assert "could not read the results at" in message and "IsADirectoryError" in message and "\n" not in message


def test_rechunking_joins_small_batches_and_passes_a_whole_one_uncopied():
    import pyarrow as pa

    from airflow_provider_pinpoint.results.store import _rechunk

    def batch(start: int, rows: int) -> pa.RecordBatch:
        return pa.record_batch({"row": pa.array(range(start, start + rows), pa.int64())})

    big = batch(10, 8)
    out = list(_rechunk([batch(0, 3), batch(3, 3), batch(6, 4), big, batch(18, 2)], rows=5))
    assert [b.num_rows for b in out] == [6, 12, 2]  # 3+3, then 4 and the big one joined, then the rest
    assert [v for b in out for v in b.column(0).to_pylist()] == list(range(20))
    alone = list(_rechunk([big], rows=5))
    assert alone[0].column(0).buffers()[1].address == big.column(0).buffers()[1].address


def test_the_parquet_table_keeps_a_dictionary_only_for_columns_that_repeat(tmp_path):
    import pyarrow.parquet as pq

    location = tmp_path / "results.parquet"
    items = make_items(3, 4)
    store = ResultsStore(location)
    writer = store.writer("run-1")
    writer.add_outcomes(results(items, ACCEPTED))
    writer.close()
    store.compact()
    assert pq.read_table(location).num_rows == len(items)
    chunks = pq.ParquetFile(location).metadata.row_group(0)
    encodings = {chunks.column(i).path_in_schema: chunks.column(i).encodings for i in range(chunks.num_columns)}
    assert not any("DICTIONARY" in e for e in encodings["endpoint_id"] + encodings["source_row"])
    assert any("DICTIONARY" in e for e in encodings["status"])

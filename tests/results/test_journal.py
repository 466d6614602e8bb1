"""Journals survive damage: a garbled record batch is dropped with a warning and its rows are sent again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.results.journal import journal_paths
from airflow_provider_pinpoint.results.rows import RESULTS_SCHEMA
from airflow_provider_pinpoint.results.store import ResultsStore
from tests.helpers.items import APP, emulator_client

ROWS = 300


def events_file(tmp_path: Path, n: int = ROWS) -> Path:
    """A real Parquet events table: ``n`` valid events over 30 endpoints."""
    path = tmp_path / "events.parquet"
    pd.DataFrame(
        {
            "EndpointId": [f"ep-{i % 30:03d}" for i in range(n)],
            "EventId": [f"ev-{i:05d}" for i in range(n)],
            "EventType": ["purchase"] * n,
            "Timestamp": ["2026-01-01T00:00:00Z"] * n,
        }
    ).to_parquet(path)
    return path


def killed_run(emulator, tmp_path: Path, thirds: int = 3) -> tuple[Path, Path, list[pa.Table]]:
    """A run that recorded every row accepted in ``thirds`` journal batches, then died unclosed."""
    source = events_file(tmp_path)
    done = load_events(
        source, application_id=APP, results=str(tmp_path / "first.parquet"), client=emulator_client(emulator.url)
    )
    table = pa.Table.from_pandas(done.results, schema=RESULTS_SCHEMA, preserve_index=False)
    step = ROWS // thirds
    parts = [table.slice(i * step, step) for i in range(thirds)]
    location = tmp_path / "results.parquet"
    writer = ResultsStore(location).writer("killed")
    for part in parts:
        writer.add(part.to_batches()[0])
    emulator.reset()
    return source, location, parts


def damage(location: Path, at: int, size: int = 16) -> None:
    """Overwrite ``size`` bytes of the location's only journal at offset ``at``."""
    [journal] = journal_paths(ResultsStore(location).fs, str(location.parent / f".{location.name}.staging"))
    with open(journal, "r+b") as f:
        f.seek(at)
        f.write(bytes(255 - b for b in f.read(size)))


def journal_size(location: Path) -> int:
    return sum(p.stat().st_size for p in (location.parent / f".{location.name}.staging").iterdir())


def test_a_damaged_batch_is_dropped_with_one_warning_and_its_rows_are_sent_again(emulator, tmp_path, caplog):
    source, location, parts = killed_run(emulator, tmp_path)
    damage(location, journal_size(location) * 1 // 2)  # inside the middle batch
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        report = load_events(source, application_id=APP, results=str(location), client=emulator_client(emulator.url))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "journal" in r.getMessage()]
    assert len(warnings) == 1 and "1 damaged record batch" in warnings[0] and "\n" not in warnings[0]
    assert report.summary["skipped"] == 2 * len(parts[1]) and report.summary["accepted"] == ROWS
    assert sorted(e["event_id"] for e in emulator.events(APP)) == sorted(parts[1].column("event_id").to_pylist())


def test_a_damaged_frame_drops_the_rest_of_its_journal_and_those_rows_are_sent_again(emulator, tmp_path, caplog):
    source, location, parts = killed_run(emulator, tmp_path)
    first_record = 8 + 12 + len(parts[0].to_batches()[0].serialize())  # marker, frame, first batch
    damage(location, first_record, size=4)  # the second batch's length
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        report = load_events(source, application_id=APP, results=str(location), client=emulator_client(emulator.url))
    [warning] = [r.getMessage() for r in caplog.records if "journal" in r.getMessage()]
    assert "the rest of the file" in warning
    assert report.summary["skipped"] == len(parts[0]) and report.summary["accepted"] == ROWS
    resent = parts[1].column("event_id").to_pylist() + parts[2].column("event_id").to_pylist()
    assert sorted(e["event_id"] for e in emulator.events(APP)) == sorted(resent)


def rows(*numbers: int, status: str = "accepted") -> pa.RecordBatch:
    """Results rows of source ``s`` at ``numbers``."""
    return pa.RecordBatch.from_pylist(
        [
            {"run_id": "r", "record_type": "event", "endpoint_id": "e", "source": "s", "source_row": i}
            | {"status": status, "attempts": 1}
            for i in numbers
        ],
        schema=RESULTS_SCHEMA,
    )


def test_a_journal_an_earlier_loader_left_counts_next_to_a_new_one(tmp_path, caplog):
    # A run killed before an upgrade recorded these rows: the upgraded rerun must skip them, not send
    # every one of them again (the duplicate window is the requests in flight, not a whole run).
    location = tmp_path / "results.parquet"
    staging = tmp_path / ".results.parquet.staging"
    staging.mkdir()
    with pa.ipc.new_stream(str(staging / f"{0:020d}-old-00000.arrows"), RESULTS_SCHEMA) as old:
        old.write_batch(rows(1, 2))
        old.write_batch(rows(3))
    with open(staging / f"{1:020d}-cut-00000.arrows", "wb") as cut:  # killed inside its second batch
        cut.write(RESULTS_SCHEMA.serialize().to_pybytes() + rows(4).serialize().to_pybytes() + b"\xff\xff\xff")
    store = ResultsStore(location)
    store.writer("new").add(rows(5))
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        assert store.done_rows() == {"s": {1, 2, 3, 4, 5}}
        assert store.compact() == {"accepted": 5}
    assert not caplog.records
    assert ResultsStore(location).read().column("source_row").to_pylist() == [1, 2, 3, 4, 5]


def test_a_file_that_is_no_journal_is_ignored_with_a_warning_not_a_traceback(tmp_path, caplog):
    location = tmp_path / "results.parquet"
    staging = tmp_path / ".results.parquet.staging"
    staging.mkdir()
    (staging / f"{0:020d}-odd-00000.arrows").write_bytes(b"not a journal at all")
    store = ResultsStore(location)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        assert store.done_rows() == {}
        assert store.compact() == {}
    [warning] = [r.getMessage() for r in caplog.records if "journal" in r.getMessage()]
    assert "not a journal" in warning
    assert [p.name for p in tmp_path.iterdir()] == ["results.parquet"]


@pytest.mark.parametrize("cut", [3, 13, 200])
def test_a_batch_cut_short_by_a_kill_is_dropped_silently(tmp_path, caplog, cut):
    location = tmp_path / "results.parquet"
    table = pa.Table.from_pylist(
        [
            {"run_id": "r", "record_type": "event", "endpoint_id": "e", "source": "s", "source_row": i}
            | {"status": "accepted", "attempts": 1}
            for i in range(1, 4)
        ],
        schema=RESULTS_SCHEMA,
    )
    writer = ResultsStore(location).writer("killed")
    writer.add(table.slice(0, 2).to_batches()[0])
    writer.add(table.slice(2, 1).to_batches()[0])
    [journal] = (tmp_path / ".results.parquet.staging").iterdir()
    with open(journal, "r+b") as f:
        f.truncate(journal.stat().st_size - len(table.slice(2, 1).to_batches()[0].serialize()) - 12 + cut)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        assert ResultsStore(location).done_rows() == {"s": {1, 2}}
    assert not caplog.records


def test_rows_of_other_column_types_are_journaled_as_the_results_schema(tmp_path):
    # A journal holds no schema: a batch written with its own types (int64 codes, microsecond times,
    # as pandas gives them) was read back as RESULTS_SCHEMA, its bytes misread under a valid CRC.
    sent = datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    wide = pa.schema(
        [
            pa.field(f.name, {"status_code": pa.int64(), "attempts": pa.int64()}.get(f.name, f.type))
            if f.name != "sent_at"
            else pa.field("sent_at", pa.timestamp("us", tz="UTC"))
            for f in RESULTS_SCHEMA
        ]
    )
    values = [
        {"run_id": "r", "record_type": "event", "endpoint_id": f"e{i}", "source": "s", "source_row": i}
        | {"status": "accepted", "status_code": 202, "attempts": 2, "sent_at": sent}
        for i in (1, 2, 3)
    ]
    location = tmp_path / "results.parquet"
    store = ResultsStore(location)
    writer = store.writer("r")
    writer.add(pa.RecordBatch.from_pylist(values, schema=wide))
    writer.close()
    assert store.compact() == {"accepted": 3}
    assert ResultsStore(location).read().to_pylist() == [
        {name: value.get(name) for name in RESULTS_SCHEMA.names} for value in values
    ]


@pytest.mark.parametrize("run_id", ["team/nightly", "../up", "a\\b c?*", "x" * 300])
def test_any_run_id_makes_a_journal_in_the_staging_directory(tmp_path, run_id):
    location = tmp_path / "results.parquet"
    store = ResultsStore(location)
    writer = store.writer(run_id)
    writer.add(rows(1, 2))
    writer.close()
    [journal] = (tmp_path / ".results.parquet.staging").iterdir()
    assert journal.is_file()
    assert store.compact() == {"accepted": 2}
    assert ResultsStore(location).read().column("run_id").to_pylist() == ["r", "r"]

"""Journals survive damage: a garbled record batch is dropped with a warning and its rows are sent again."""

from __future__ import annotations

import gc
import json
import logging
import struct
import weakref
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.errors import PinpointLoaderError
from airflow_provider_pinpoint.prepare.requests import EVENT, Item, Request
from airflow_provider_pinpoint.results import journal as journal_module
from airflow_provider_pinpoint.results import rows as rows_module
from airflow_provider_pinpoint.results.journal import (
    MARKER_V2,
    MARKER_V3,
    ResultsWriter,
    journal_batches,
    journal_paths,
)
from airflow_provider_pinpoint.results.rows import (
    FAILED,
    REJECTED,
    RESULTS_SCHEMA,
    ItemResult,
    Outcomes,
    sent_at_millis,
    stamped,
)
from airflow_provider_pinpoint.results.store import ResultsStore
from tests.helpers.items import APP, emulator_client, make_items, make_requests

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


# Decisions of whole accepted requests: (code, attempts, request id, sent_at); a time with no zone counts as UTC.
ALIKE_CASES = [
    (202, 1, "req-9", datetime(2026, 1, 1, 12, 30, tzinfo=UTC)),
    (200, 3, None, datetime(2026, 1, 1, 12, 30, 0, 999_999)),
    (201, 1, 'réq "é"\u2028', datetime(1969, 12, 31, 23, 59, 59, 500, tzinfo=UTC)),
    (202, 2, "", datetime(2026, 6, 1, tzinfo=UTC)),
]


def alike_and_other_outcomes() -> list[Outcomes]:
    """Whole accepted requests (journaled as rows decided alike) with items decided one by one between them."""
    requests = make_requests(make_items(6, 9), per_request=10)
    decided = [Outcomes.all_accepted(r, *ALIKE_CASES[i % len(ALIKE_CASES)]) for i, r in enumerate(requests[:-1])]
    last = requests[-1].items
    one_by_one = [
        ItemResult(last[0], REJECTED, 400, "no", 1, "req-1", None),
        ItemResult(last[1], FAILED, None, "not sent", 0, None, None),
    ]
    return [*decided[:3], Outcomes.of_results(one_by_one), *decided[3:]]


@pytest.mark.parametrize("run_id", ["r", 'run "é"\u2028\\', "x" * 300])
def test_rows_decided_alike_read_back_as_the_rows_they_stand_for(tmp_path, run_id):
    decided = alike_and_other_outcomes()
    assert sum(o.uniform is not None for o in decided) > 3
    store = ResultsStore(tmp_path / "results.parquet")
    writer = store.writer(run_id)
    for outcomes in decided:
        writer.add_outcomes(outcomes)
    writer.close()
    run_ids = [pa.repeat(pa.scalar(run_id), len(o)) for o in decided]
    expected = pa.Table.from_batches([stamped(o, ids) for o, ids in zip(decided, run_ids, strict=True)])
    [journal] = journal_paths(store.fs, store.staging)
    assert pa.Table.from_batches(list(journal_batches(store.fs, journal, set()))).equals(expected)
    assert store.compact() == {"accepted": 50, "rejected": 1, "failed": 1}
    assert ResultsStore(tmp_path / "results.parquet").read().equals(expected)


def test_a_record_of_rows_decided_alike_is_smaller_than_its_rows(tmp_path):
    [request] = make_requests(make_items(1, 99), per_request=100)
    outcomes = Outcomes.all_accepted(request, 202, 1, "f" * 36, datetime(2026, 1, 1, tzinfo=UTC))
    sizes = []
    for name, add in (("alike", ResultsWriter.add_outcomes), ("rows", ResultsWriter.add)):
        store = ResultsStore(tmp_path / name / "results.parquet")
        writer = store.writer("r" * 23)
        add(writer, outcomes if name == "alike" else stamped(outcomes, pa.repeat(pa.scalar("r" * 23), 100)))
        writer.close()
        [journal] = journal_paths(store.fs, store.staging)
        sizes.append(Path(journal).stat().st_size)
    assert sizes[0] < sizes[1] * 2 // 3


def test_a_damaged_record_of_rows_decided_alike_is_dropped_and_the_others_read(tmp_path, caplog):
    requests = make_requests(make_items(3, 9), per_request=10)
    store = ResultsStore(tmp_path / "results.parquet")
    writer = store.writer("r")
    for request in requests:
        writer.add_outcomes(Outcomes.all_accepted(request, 202, 1, "q", datetime(2026, 1, 1, tzinfo=UTC)))
    writer.close()
    [journal] = journal_paths(store.fs, store.staging)
    size = Path(journal).stat().st_size
    damage(tmp_path / "results.parquet", size // 2, size=4)  # inside the second of three records
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        done = ResultsStore(tmp_path / "results.parquet").done_rows()  # the next run's reading
    [warning] = [r.getMessage() for r in caplog.records if "journal" in r.getMessage()]
    assert "1 damaged record batch" in warning
    expected: dict[str, set[int]] = {}
    for item in requests[0].items + requests[2].items:
        expected.setdefault(item.source, set()).add(item.source_row)
    assert done == expected


def test_a_journal_of_the_earlier_framed_format_is_read(tmp_path, caplog):
    # A run killed before an upgrade left a journal of the format before records of rows decided alike.
    staging = tmp_path / ".results.parquet.staging"
    staging.mkdir()
    with open(staging / f"{0:020d}-old-00000.arrows", "wb") as old:
        old.write(MARKER_V2)
        for batch in (rows(1, 2), rows(3)):
            payload = batch.serialize().to_pybytes()
            head = struct.pack("<II", len(payload), zlib.crc32(payload))
            old.write(head + struct.pack("<I", zlib.crc32(head)) + payload)
    store = ResultsStore(tmp_path / "results.parquet")
    store.writer("new").add_outcomes(
        Outcomes.all_accepted(
            Request([Item(EVENT, "e", "v", "s", 4, "{}")]), 202, 1, None, datetime(2026, 1, 1, tzinfo=UTC)
        )
    )
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        assert store.done_rows() == {"s": {1, 2, 3, 4}}
        assert store.compact() == {"accepted": 4}
    assert not caplog.records
    assert ResultsStore(tmp_path / "results.parquet").read().column("source_row").to_pylist() == [1, 2, 3, 4]


def journal_of(tmp_path: Path, decided: list[Outcomes], run_id: str = "r") -> tuple[ResultsStore, bytes]:
    store = ResultsStore(tmp_path / "results.parquet")
    writer = store.writer(run_id)
    for outcomes in decided:
        writer.add_outcomes(outcomes)
    writer.close()
    [journal] = journal_paths(store.fs, store.staging)
    return store, Path(journal).read_bytes()


def pairs_read(store: ResultsStore, path: str) -> list[tuple[str, int]]:
    """(source, source_row) of every row a journal gives back, sorted."""
    batches = list(journal_batches(store.fs, path, set()))
    return sorted(
        pair for b in batches for pair in zip(b["source"].to_pylist(), b["source_row"].to_pylist(), strict=True)
    )


def pairs_of(*requests: Request) -> list[tuple[str, int]]:
    return sorted((item.source, item.source_row) for request in requests for item in request.items)


def test_sent_at_of_rows_decided_alike_reads_back_as_arrow_stores_the_time(tmp_path):
    times = [case[3] for case in ALIKE_CASES]
    requests = make_requests(make_items(len(times) // 2, 1), per_request=1)
    decided = [Outcomes.all_accepted(r, 202, 1, "q", when) for r, when in zip(requests, times, strict=True)]
    store, _ = journal_of(tmp_path, decided)
    [journal] = journal_paths(store.fs, store.staging)
    read = pa.Table.from_batches(list(journal_batches(store.fs, journal, set()))).column("sent_at")
    # What Arrow itself makes of each time in the sent_at column's type, naive times as UTC.
    expected = pa.array([w if w.tzinfo else w.replace(tzinfo=UTC) for w in times], RESULTS_SCHEMA.field("sent_at").type)
    assert read.to_pylist() == expected.to_pylist()


@pytest.mark.parametrize("run_id", ["r", "ru", "run", "run-", "run-1", "run-12", "run-123", "run-1234"])
def test_a_record_of_rows_decided_alike_is_read_with_aligned_buffers(tmp_path, run_id):
    [request] = make_requests(make_items(1, 4), per_request=5)
    store, _ = journal_of(tmp_path, [Outcomes.all_accepted(request, 202, 1, None, None)], run_id)
    [journal] = journal_paths(store.fs, store.staging)
    [batch] = journal_batches(store.fs, journal, set())
    for column in batch.columns:
        assert all(b is None or b.address % 8 == 0 for b in column.buffers()), column.type


@pytest.mark.parametrize(
    "decision",
    [
        ("r", "accepted", 202, "", 1 << 31, None, 0),  # attempts past int32
        ("r", "accepted", True, "", 1, None, 0),  # a bool for a status code
        ("r", "accepted", 202, "", 1, 7, 0),  # a number for a request id
        ("r", "accepted", 202, "", 1, None),  # a value short
        ("r", "accepted", -(1 << 31) - 1, "", 1, None, 0),  # a status code below int32
        ("r", "accepted", 202.0, "", 1, None, 0),  # a float for a status code
        ("r", "accepted", 202, "", 1, None, 1 << 63),  # milliseconds past int64
    ],
)
def test_a_record_whose_decision_the_columns_cannot_hold_is_dropped_not_read(tmp_path, caplog, decision):
    import msgspec

    from airflow_provider_pinpoint.results.journal import _HEADER_LENGTH

    first, second = make_requests(make_items(2, 2), per_request=3)
    store = ResultsStore(tmp_path / "results.parquet")
    writer = store.writer("r")
    writer.add_outcomes(Outcomes.all_accepted(first, 202, 1, None, None))
    head = msgspec.json.encode(decision)
    items = second.columns.drop_columns(["body"])
    writer._write_locked(
        lambda: writer._write_record(_HEADER_LENGTH.pack(len(head)) + head, items.serialize(), items, 3)
    )
    writer.close()
    [journal] = journal_paths(store.fs, store.staging)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        assert pairs_read(store, journal) == pairs_of(first)
    assert any("1 damaged record batch" in r.getMessage() for r in caplog.records)


def test_a_decision_the_columns_cannot_hold_is_refused_when_written_and_leaves_no_record(tmp_path):
    [request] = make_requests(make_items(1, 2), per_request=3)
    store = ResultsStore(tmp_path / "results.parquet")
    writer = store.writer("r")
    with pytest.raises((OverflowError, pa.ArrowInvalid)):
        writer.add_outcomes(Outcomes.all_accepted(request, 202, 1 << 31, None, None))
    writer.close()
    assert not [pairs_read(store, j) for j in journal_paths(store.fs, store.staging) if pairs_read(store, j)]


def test_a_journal_cut_anywhere_or_with_a_bit_flipped_reads_exactly_its_intact_records(tmp_path):
    requests = make_requests(make_items(4, 1), per_request=2)
    decided = [Outcomes.all_accepted(r, 202, 1, "q", datetime(2026, 1, 1, tzinfo=UTC)) for r in requests[:3]]
    decided.insert(1, Outcomes.of_results([ItemResult(requests[3].items[0], REJECTED, 400, "no", 1, "q", None)]))
    per_record = [pairs_of(requests[0]), [(requests[3].items[0].source, requests[3].items[0].source_row)]]
    per_record += [pairs_of(requests[1]), pairs_of(requests[2])]
    store, data = journal_of(tmp_path, decided)
    # The records' bounds, parsed independently of the reader: a 12-byte frame then the payload.
    bounds, at = [], len(MARKER_V2)
    while at < len(data):
        (length,) = struct.unpack_from("<I", data, at)
        bounds.append((at, at + 12 + (length & 0x7FFFFFFF)))
        at = bounds[-1][1]
    assert len(bounds) == 4
    path = tmp_path / "journal.arrows"

    def read(raw: bytes) -> list[tuple[str, int]]:
        path.write_bytes(raw)
        return pairs_read(store, str(path))

    for cut in range(len(data) + 1):
        whole = [pair for rows, (_, end) in zip(per_record, bounds, strict=True) if end <= cut for pair in rows]
        assert read(data[:cut]) == sorted(whole), cut
    for at in range(len(MARKER_V2), len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 1 << (at % 8)
        [hit] = [i for i, (start, end) in enumerate(bounds) if start <= at < end]
        # A flip in a frame loses the rest of the file; one in a payload loses that record only.
        kept = range(hit) if at < bounds[hit][0] + 12 else [i for i in range(4) if i != hit]
        assert read(bytes(flipped)) == sorted(pair for i in kept for pair in per_record[i]), at


# Runs of rows decided alike that share some decision values and not others: read back, each
# column is made either once for all (a value shared by every run) or run by run.
SHARED_CASES = {
    "all shared": [(202, 1, "q", datetime(2026, 1, 1, tzinfo=UTC))] * 3,
    "request ids differ": [(202, 1, f"q{i}", datetime(2026, 1, 1, tzinfo=UTC)) for i in range(3)],
    "a null among values": [(202, 1, None, datetime(2026, 1, 1, tzinfo=UTC)), (202, 1, "q", None), (201, 2, "q", None)],
    "an empty text and a null": [(202, 1, "", datetime(2026, 1, 1, tzinfo=UTC)), (202, 1, None, None)],
}


@pytest.mark.parametrize("case", SHARED_CASES)
def test_runs_decided_alike_sharing_some_values_read_back_exactly(tmp_path, case):
    requests = make_requests(make_items(len(SHARED_CASES[case]), 7), per_request=8)
    decided = [Outcomes.all_accepted(r, *d) for r, d in zip(requests, SHARED_CASES[case], strict=True)]
    store = ResultsStore(tmp_path / "results.parquet")
    writer = store.writer("run")
    for outcomes in decided:
        writer.add_outcomes(outcomes)
    writer.close()
    expected = pa.Table.from_batches([stamped(o, pa.repeat(pa.scalar("run"), len(o))) for o in decided])
    [journal] = journal_paths(store.fs, store.staging)
    [batch] = journal_batches(store.fs, journal, set())  # the runs, read back as one batch
    assert pa.Table.from_batches([batch]).equals(expected)


def _run_with_every_kind_of_record(location: Path) -> tuple[ResultsStore, list[str]]:
    """A closed writer's journals (rotated every 25 rows): rows decided alike (one of them with
    metadata on its columns' schema), rows decided one by one, and rows decided alike but written
    as rows (their ids of another text type)."""
    store = ResultsStore(location, rotate_rows=25)
    writer = store.writer("run")
    decided = alike_and_other_outcomes()
    items, decision = decided[1].uniform
    at = items.schema.get_field_index("endpoint_id")
    decided[1].uniform = (items.set_column(at, "endpoint_id", items.column(at).cast(pa.large_string())), decision)
    items, decision = decided[2].uniform  # columns with metadata on their schema: written alike
    decided[2].uniform = (items.replace_schema_metadata({"origin": "test"}), decision)
    for outcomes in decided:
        writer.add_outcomes(outcomes)
    writer.close()
    return store, journal_paths(store.fs, store.staging)


def _rows_read(store: ResultsStore, journal: str) -> int:
    return sum(batch.num_rows for batch in journal_batches(store.fs, journal, set()))


@pytest.mark.parametrize("kept_bytes", [0, 1 << 30])
def test_a_run_compacts_its_own_journals_from_what_it_wrote_as_reading_them_gives(tmp_path, monkeypatch, kept_bytes):
    # Kept by the writer (a run compacting its own journals) or not (too many rows): the same table.
    monkeypatch.setattr(journal_module, "KEPT_BYTES", kept_bytes)
    store, journals = _run_with_every_kind_of_record(tmp_path / "results.parquet")
    assert len(journals) > 1
    from_files = pa.Table.from_batches([b for j in journals for b in journal_batches(store.fs, j, set())])
    assert store.compact() == {"accepted": 50, "rejected": 1, "failed": 1}
    assert ResultsStore(tmp_path / "results.parquet").read().equals(from_files)


@pytest.mark.parametrize("kept_bytes", [0, 1 << 30])
@pytest.mark.parametrize("change", ["flip", "cut"])
def test_an_own_journal_changed_on_disk_is_read_from_its_file_unless_its_size_is_as_written(
    tmp_path, monkeypatch, kept_bytes, change
):
    # A bit flipped in place: what the writer kept is used (the table has every row) when it kept
    # it; cut short, the journal is read from its file (its last record dropped) in either case.
    monkeypatch.setattr(journal_module, "KEPT_BYTES", kept_bytes)
    store, [first, *_] = _run_with_every_kind_of_record(tmp_path / "results.parquet")
    intact = _rows_read(store, first)
    data = bytearray(Path(first).read_bytes())
    if change == "flip":
        data[-3] ^= 0x10
    else:
        del data[-3:]
    Path(first).write_bytes(bytes(data))
    lost = intact - _rows_read(store, first)
    assert lost > 0
    from_memory = change == "flip" and kept_bytes > 0
    assert sum(store.compact().values()) == 52 - (0 if from_memory else lost)


def _kept_records(writer: ResultsWriter) -> list[object]:
    """Weak references to every record a writer keeps for compaction, and its items' batches."""
    kept = [r for records in (writer._kept or {}).values() for r in records]
    return [weakref.ref(r.items if hasattr(r, "items") and not callable(r.items) else r) for r in kept]


def _write_all(writer: ResultsWriter, decided: list[Outcomes]) -> None:
    """Write ``decided`` and close: nothing here keeps them alive afterwards."""
    for outcomes in decided:
        writer.add_outcomes(outcomes)
    writer.close()


def test_a_finished_run_lets_go_of_what_its_writer_kept_while_its_report_is_kept(emulator, tmp_path, monkeypatch):
    # The report reads the table through its store, which holds the run's writer: what the writer
    # kept for compaction must not stay alive with the report.
    writers: list[ResultsWriter] = []
    real_writer = ResultsStore.writer

    def writer(store: ResultsStore, run_id: str) -> ResultsWriter:
        made = real_writer(store, run_id)
        writers.append(made)
        return made

    monkeypatch.setattr(ResultsStore, "writer", writer)
    kept: list[object] = []
    real_compact = ResultsStore.compact

    def compact(store: ResultsStore) -> dict[str, int]:
        kept.extend(ref for w in writers for ref in _kept_records(w))
        return real_compact(store)

    monkeypatch.setattr(ResultsStore, "compact", compact)
    report = load_events(
        events_file(tmp_path),
        application_id=APP,
        results=str(tmp_path / "r.parquet"),
        client=emulator_client(emulator.url),
    )
    assert report.summary["accepted"] == ROWS and len(report.results) == ROWS
    assert kept  # the run's records were kept until compaction took them
    gc.collect()
    [run_writer] = writers
    assert run_writer._kept is None and not run_writer._sizes and run_writer.journals() == []
    assert [ref for ref in kept if ref() is not None] == []


@pytest.mark.parametrize("outcome", ["compacted", "journal gone", "writer failed"])
def test_compaction_lets_go_of_what_the_writers_kept_whether_it_succeeds_or_not(tmp_path, outcome):
    store = ResultsStore(tmp_path / "results.parquet")
    writer = store.writer("run")
    _write_all(writer, alike_and_other_outcomes())
    kept = _kept_records(writer)
    assert len(kept) > 3
    if outcome == "journal gone":
        other = ResultsStore(tmp_path / "results.parquet").writer("other")  # read from its file
        _write_all(other, alike_and_other_outcomes()[:1])
        [gone] = [j for j in journal_paths(store.fs, store.staging) if j not in writer.journals()]
        real_open = store.fs.open

        def open_(path, mode="rb", **kwargs):
            if path == gone:
                raise FileNotFoundError(path)
            return real_open(path, mode, **kwargs)

        store.fs.open = open_
        with pytest.raises(PinpointLoaderError):
            store.compact()
    elif outcome == "writer failed":
        writer.failed = OSError("disk full")
        assert store.compact() == {}
    else:
        assert store.compact() == {"accepted": 50, "rejected": 1, "failed": 1}
    gc.collect()
    assert writer._kept is None
    assert [ref for ref in kept if ref() is not None] == []


def test_reading_large_runs_of_rows_decided_alike_keeps_no_repeated_column_of_their_size(tmp_path):
    # A batch read back joins up to CHUNK_ROWS rows decided alike: the values repeated for it are
    # made for it, not kept in the module's caches for the life of the process (those keep a
    # request's worth of rows).
    requests = make_requests(make_items(30, 50), per_request=100)
    store = ResultsStore(tmp_path / "results.parquet")
    _write_all(store.writer("run"), [Outcomes.all_accepted(r, 202, 1, f"q{i}", None) for i, r in enumerate(requests)])
    [journal] = journal_paths(store.fs, store.staging)
    [batch] = journal_batches(store.fs, journal, set())
    rows = sum(len(r.items) for r in requests)
    assert rows > 1_000 and batch.num_rows == rows and batch.column("status").to_pylist() == ["accepted"] * rows
    assert store.compact() == {"accepted": rows}
    assert [n for n, _ in rows_module._OFFSETS if n > rows_module._CACHED_ROWS] == []
    assert [n for _, n, _ in rows_module._REPEATED if n > rows_module._CACHED_ROWS] == []


def _v3_record(items: pa.RecordBatch, decision: list) -> bytes:
    """A record of rows decided alike as the format before shared columns wrote it: a decision of seven
    values, then every item column."""
    header = json.dumps(decision).encode()
    header += b" " * (-(4 + len(header)) % 8)
    payload = struct.pack("<I", len(header)) + header + items.serialize().to_pybytes()
    head = struct.pack("<II", len(payload) | (1 << 31), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def test_a_journal_of_the_format_before_shared_columns_is_read(tmp_path, caplog):
    # A run killed before an upgrade left records of rows decided alike holding every item column.
    requests = make_requests(make_items(4, 3), per_request=4)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    decided = [Outcomes.all_accepted(r, 202, 1, f"q{i}", when) for i, r in enumerate(requests)]
    staging = tmp_path / ".results.parquet.staging"
    staging.mkdir()
    with open(staging / f"{0:020d}-old-00000.arrows", "wb") as old:
        old.write(MARKER_V3)
        for i, outcomes in enumerate(decided):
            items = outcomes.uniform[0]
            old.write(_v3_record(items, ["old", "accepted", 202, "", 1, f"q{i}", sent_at_millis(when)]))
    expected = pa.Table.from_batches([stamped(o, pa.repeat(pa.scalar("old"), len(o))) for o in decided])
    store = ResultsStore(tmp_path / "results.parquet")
    with caplog.at_level(logging.WARNING, logger="airflow_provider_pinpoint"):
        assert store.compact() == {"accepted": len(expected)}
    assert not caplog.records
    assert ResultsStore(tmp_path / "results.parquet").read().equals(expected)


@pytest.mark.parametrize("shared_rows", [1, 1_000])  # checked for what items share, or too small for it
def test_records_sharing_their_record_type_and_source_or_not_read_back_exactly(tmp_path, monkeypatch, shared_rows):
    monkeypatch.setattr(journal_module, "_SHARED_ROWS", shared_rows)
    # Requests of events only (type and source shared), of an endpoint and its events (neither), of
    # events of two sources (the type only), of endpoints only, in turns: each read back as the rows
    # it stands for, every row once.
    items = make_items(3, 6)
    events = [i for i in items if i.record_type == EVENT]
    other_source = [Item(EVENT, i.endpoint_id, i.event_id + "b", "more.parquet", i.source_row, i.body) for i in events]
    requests = [
        Request(events[:4]),
        Request(items[7:12]),
        Request(events[4:6] + other_source[:2]),
        Request(events[10:]),
        Request([items[0], items[14]]),  # endpoints only
    ]
    when = datetime(2026, 1, 1, tzinfo=UTC)
    decided = [Outcomes.all_accepted(r, 202, 1, f"q{i}", when) for i, r in enumerate(requests)]
    _, shared_only = journal_of(tmp_path / "shared", [decided[0], decided[3]])
    rows = len(decided[0]) + len(decided[3])
    assert shared_only.count(b"events.parquet") == (2 if shared_rows == 1 else rows)  # once a record, or a row
    store, _ = journal_of(tmp_path, decided)
    expected = pa.Table.from_batches([stamped(o, pa.repeat(pa.scalar("r"), len(o))) for o in decided])
    [journal] = journal_paths(store.fs, store.staging)
    assert pa.Table.from_batches(list(journal_batches(store.fs, journal, set()))).equals(expected)
    assert store.compact() == {"accepted": len(expected)}
    assert ResultsStore(tmp_path / "results.parquet").read().equals(expected)


def test_columns_of_one_value_made_for_compaction_are_shared_and_known_only_while_it_lasts():
    with rows_module.repeated_columns():
        made = rows_module._constant("reason", 1000, pa.string())
        assert rows_module._constant("reason", 1000, pa.string()) is made  # made once
        assert rows_module.single_value(made.slice(10, 20)).to_pylist() == ["reason"]
        other = pa.array(["reason"] * 999 + ["reasoN"])
        assert rows_module.single_value(other) is None  # a column not made here is compared
    assert rows_module._constant("reason", 1000, pa.string()) is not made

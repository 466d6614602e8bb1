"""The results table: one row per input row, written as it goes, so a killed run can be resumed.

While a run is going, rows are appended to journal files (Arrow IPC streams) in a hidden staging
directory next to the location: ``<dir>/.<name>.staging/``. Each answered request's rows are
written and flushed before the next answer is recorded, so a process killed at any moment loses at
most the answers of the requests still in flight; those rows are sent again by the next run, which
is the whole of the duplicate window. On object storage a journal file only exists once it is
closed, so there journals are rotated every few seconds and the window grows to that interval.

At the end of a run the earlier table at the location (if any) and every journal are compacted
into exactly the location given (Parquet, or CSV for ``.csv``): one row per input row, the
latest decision for each, a final one (accepted or rejected) preferred over a failed one. Then the
staging directory is removed. Reading that table back, with any leftover journals of a killed run,
is what tells the next run which rows to skip.
"""

from __future__ import annotations

import io
import os
import posixpath
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airflow_provider_pinpoint.batch import EVENT
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.send import ACCEPTED, REJECTED, ItemResult

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("record_type", pa.string()),
        ("endpoint_id", pa.string()),
        ("event_id", pa.string()),
        ("source", pa.string()),
        ("source_row", pa.int64()),
        ("status", pa.string()),
        ("status_code", pa.int32()),
        ("message", pa.string()),
        ("attempts", pa.int32()),
        ("request_id", pa.string()),
        ("sent_at", pa.timestamp("ms", tz="UTC")),
    ]
)
COLUMNS = tuple(SCHEMA.names)
KEY = ("record_type", "source", "source_row")
FINAL_STATUSES = (ACCEPTED, REJECTED)
JOURNAL_SUFFIX = ".arrows"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def item_results_batch(results: Sequence[ItemResult], run_id: str) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            pa.array([run_id] * len(results), pa.string()),
            pa.array([r.item.record_type for r in results], pa.string()),
            pa.array([r.item.endpoint_id for r in results], pa.string()),
            pa.array([r.item.event_id for r in results], pa.string()),
            pa.array([r.item.source for r in results], pa.string()),
            pa.array([r.item.source_row for r in results], pa.int64()),
            pa.array([r.status for r in results], pa.string()),
            pa.array([r.status_code for r in results], pa.int32()),
            pa.array([r.message for r in results], pa.string()),
            pa.array([r.attempts for r in results], pa.int32()),
            pa.array([r.request_id for r in results], pa.string()),
            pa.array([r.sent_at for r in results], SCHEMA.field("sent_at").type),
        ],
        schema=SCHEMA,
    )


def rejections_batch(rejections: Sequence[Any], run_id: str) -> pa.RecordBatch:
    """Rows refused by client-side validation (``pipeline.Rejection``): never sent, status rejected."""
    n = len(rejections)
    return pa.RecordBatch.from_arrays(
        [
            pa.array([run_id] * n, pa.string()),
            pa.array([r.record_type for r in rejections], pa.string()),
            pa.array([r.endpoint_id for r in rejections], pa.string()),
            pa.array([r.event_id for r in rejections], pa.string()),
            pa.array([r.source for r in rejections], pa.string()),
            pa.array([r.source_row for r in rejections], pa.int64()),
            pa.array([REJECTED] * n, pa.string()),
            pa.nulls(n, pa.int32()),
            pa.array([r.message for r in rejections], pa.string()),
            pa.array([0] * n, pa.int32()),
            pa.nulls(n, pa.string()),
            pa.nulls(n, SCHEMA.field("sent_at").type),
        ],
        schema=SCHEMA,
    )


class ResultsStore:
    """The results table at one location (``None``: kept in memory, no resume)."""

    def __init__(self, location: str | os.PathLike[str] | None, *, rotate_rows: int = 500_000, rotate_s: float = 10.0):
        self.location = None if location is None else os.fspath(location)
        self._rotate_rows = rotate_rows
        self._rotate_s = rotate_s
        self._memory: list[pa.RecordBatch] = []
        if self.location is None:
            return
        self.format = _format_of(self.location)
        self._fs, self._path = fsspec.core.url_to_fs(self.location)
        self.is_local = "file" in _protocols(self._fs)
        if self.is_local:
            self._path = os.path.abspath(self._path)
        parent, name = posixpath.split(self._path.replace(os.sep, "/"))
        self.staging = posixpath.join(parent, f".{name}.staging")

    # Reading ----------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether an earlier run left a table or journals here."""
        if self.location is None:
            return False
        return self._fs.exists(self._path) or bool(self._journals())

    def done_rows(self) -> dict[str, set[int]]:
        """Rows already accepted or rejected, by source: what a resumed run must skip."""
        table = self._collect()
        done = table.filter(pc.is_in(table["status"], pa.array(FINAL_STATUSES)))
        if done.num_rows == 0:
            return {}
        sources = pc.dictionary_encode(done["source"]).combine_chunks()
        codes = sources.indices.to_numpy()
        rows = done["source_row"].to_numpy()
        return {source: set(rows[codes == code].tolist()) for code, source in enumerate(sources.dictionary.to_pylist())}

    def _journals(self) -> list[str]:
        if not self._fs.exists(self.staging):
            return []
        return sorted(p for p in self._fs.ls(self.staging, detail=False) if p.endswith(JOURNAL_SUFFIX))

    def _collect(self) -> pa.Table:
        """The earlier table plus every journal, deduplicated: the latest word on each row."""
        if self.location is None:
            return _latest(pa.Table.from_batches(self._memory, schema=SCHEMA))
        parts: list[pa.Table] = []
        if self._fs.exists(self._path):
            parts.append(self._read_final())
        for journal in self._journals():
            parts.append(pa.Table.from_batches(_read_journal(self._fs, journal), schema=SCHEMA))
        return _latest(pa.concat_tables(parts) if parts else SCHEMA.empty_table())

    def _read_final(self) -> pa.Table:
        with self._fs.open(self._path, "rb") as f:
            data = f.read()
        try:
            if self.format == "csv":
                table = pacsv.read_csv(
                    pa.BufferReader(data),
                    convert_options=pacsv.ConvertOptions(column_types=SCHEMA, strings_can_be_null=True),
                )
            else:
                table = pq.read_table(pa.BufferReader(data))
            return table.select(list(COLUMNS)).cast(SCHEMA)
        except (pa.ArrowInvalid, KeyError, ValueError) as exc:
            raise InputError(
                f"{self.location} exists but is not a results table ({exc}); choose another results location."
            ) from None

    # Writing ----------------------------------------------------------------------------------

    def writer(self, run_id: str) -> ResultsWriter:
        return ResultsWriter(self, run_id)

    def compact(self) -> pa.Table:
        """Write the one clean table at the location and drop the staging journals; return the table."""
        table = self._collect()
        if self.location is None:
            return table
        sink = io.BytesIO()
        if self.format == "csv":
            pacsv.write_csv(table, sink)
        else:
            pq.write_table(table, sink)
        if self.is_local:
            os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
            tmp = f"{self._path}.{secrets.token_hex(4)}.tmp"
            with open(tmp, "wb") as f:
                f.write(sink.getvalue())
            os.replace(tmp, self._path)
        else:
            with self._fs.open(self._path, "wb") as f:
                f.write(sink.getvalue())
        if self._fs.exists(self.staging):
            self._fs.rm(self.staging, recursive=True)
        return table


class ResultsWriter:
    """Appends rows to a journal from any thread; each call is on disk when it returns (local)."""

    def __init__(self, store: ResultsStore, run_id: str) -> None:
        self._store = store
        self.run_id = run_id
        self._lock = threading.Lock()
        self._seq = 0
        self._file: Any = None
        self._stream: pa.ipc.RecordBatchStreamWriter | None = None
        self._rows_in_file = 0
        self._opened_at = 0.0

    def add_items(self, results: Sequence[ItemResult]) -> None:
        if results:
            self.add(item_results_batch(results, self.run_id))

    def add_rejections(self, rejections: Sequence[Any]) -> None:
        if rejections:
            self.add(rejections_batch(rejections, self.run_id))

    def add(self, batch: pa.RecordBatch) -> None:
        with self._lock:
            if self._store.location is None:
                self._store._memory.append(batch)
                return
            if self._stream is not None and self._due_rotation():
                self._close_journal()
            if self._stream is None:
                self._open_journal()
            self._stream.write_batch(batch)
            self._file.flush()
            self._rows_in_file += batch.num_rows

    def _due_rotation(self) -> bool:
        if self._rows_in_file >= self._store._rotate_rows:
            return True
        return not self._store.is_local and time.monotonic() - self._opened_at >= self._store._rotate_s

    def _open_journal(self) -> None:
        store = self._store
        store._fs.makedirs(store.staging, exist_ok=True)
        name = f"{time.time_ns():020d}-{self.run_id}-{self._seq:05d}{JOURNAL_SUFFIX}"
        self._seq += 1
        self._file = store._fs.open(posixpath.join(store.staging, name), "wb")
        self._stream = pa.ipc.new_stream(self._file, SCHEMA)
        self._rows_in_file = 0
        self._opened_at = time.monotonic()

    def _close_journal(self) -> None:
        self._stream.close()
        self._file.close()
        self._stream = self._file = None

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._close_journal()


def _read_journal(fs: Any, path: str) -> Iterable[pa.RecordBatch]:
    """The complete batches of a journal; a batch cut short by a kill is ignored (its rows are resent)."""
    with fs.open(path, "rb") as f:
        data = f.read()
    try:
        reader = pa.ipc.open_stream(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError):
        return []
    batches = []
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError):
            break
    return batches


def _latest(table: pa.Table) -> pa.Table:
    """One row per input row, in the order written: a final decision (accepted or rejected) beats a
    failure, and a later row beats an earlier one.

    The three key columns are folded into one int64 so that numpy sorts them in one pass; a run
    without resends or resumes has no repeated key and comes back untouched (no copy).
    """
    n = table.num_rows
    if n == 0:
        return table
    sources = pc.dictionary_encode(table["source"]).combine_chunks()
    rows = table["source_row"].to_numpy()
    if rows.min() < 0 or rows.max() >= 1 << 40:
        raise ValueError("source_row out of range for the results key")
    is_event = pc.equal(table["record_type"], EVENT).to_numpy(zero_copy_only=False).astype(np.int64)
    key = (is_event << 62) | (sources.indices.to_numpy().astype(np.int64) << 40) | rows
    ordered = np.sort(key)
    if not (ordered[1:] == ordered[:-1]).any():
        return table
    final = pc.is_in(table["status"], pa.array(FINAL_STATUSES)).to_numpy(zero_copy_only=False)
    # Within a key: failures first, then finals, each in the order written; the last one wins.
    order = np.lexsort((np.arange(n), final, key))
    ordered = key[order]
    keep = np.zeros(n, dtype=bool)
    keep[order[np.append(ordered[1:] != ordered[:-1], True)]] = True
    return table.filter(pa.array(keep))


def _format_of(location: str) -> str:
    lowered = location.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    raise InputError(f"results location {location!r} must end in .parquet, .pq or .csv (that picks the format)")


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)

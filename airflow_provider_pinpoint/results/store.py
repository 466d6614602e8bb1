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

import os
import posixpath
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airflow_provider_pinpoint.common.files import is_parquet
from airflow_provider_pinpoint.common.locations import filesystem, is_object_path, location_text
from airflow_provider_pinpoint.errors import InputError, PinpointLoaderError
from airflow_provider_pinpoint.prepare.requests import EVENT
from airflow_provider_pinpoint.results import rows
from airflow_provider_pinpoint.results.resume import DoneRows
from airflow_provider_pinpoint.results.rows import ACCEPTED, REJECTED, Outcomes, capped

SCHEMA = pa.schema([("run_id", pa.string()), *rows.SCHEMA])
COLUMNS = tuple(SCHEMA.names)
FINAL_STATUSES = (ACCEPTED, REJECTED)
JOURNAL_SUFFIX = ".arrows"
# Rows per batch when journals are read back and the table is written (bounds compaction memory).
_CHUNK_ROWS = 65_536


class ResultsWriteError(PinpointLoaderError):
    """The results could not be written (disk full, object store refused): the run stops, as it cannot keep count."""


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


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
            pa.array([capped(r.message) for r in rejections], pa.string()),
            pa.array([0] * n, pa.int32()),
            pa.nulls(n, pa.string()),
            pa.nulls(n, SCHEMA.field("sent_at").type),
        ],
        schema=SCHEMA,
    )


class ResultsStore:
    """The results table at one location (``None``: kept in memory, no resume).

    ``location``: a local path, an fsspec URL, or an ``ObjectStoragePath`` / ``UPath``, which is
    written through its own filesystem (so its connection's credentials apply). ``self.location``
    is its text (:func:`~airflow_provider_pinpoint.common.locations.location_text`).
    """

    def __init__(self, location: Any, *, rotate_rows: int = 500_000, rotate_s: float = 10.0):
        if location is not None and not (is_object_path(location) or isinstance(location, str | os.PathLike)):
            raise InputError(f"results must be a path, a URL or an ObjectStoragePath, not a {type(location).__name__}")
        self.location = None if location is None else location_text(location)
        self._rotate_rows = rotate_rows
        self._rotate_s = rotate_s
        self._memory: list[pa.RecordBatch] = []
        if self.location is None:
            return
        self._fs, self._path = filesystem(location)
        self.format = _format_of(self._path, self.location)
        self.is_local = "file" in _protocols(self._fs)
        if self.is_local:
            self._path = os.path.abspath(self._path)
        parent, name = posixpath.split(self._path.replace(os.sep, "/"))
        self._parent = parent
        self.staging = posixpath.join(parent, f".{name}.staging")

    # Reading ----------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether an earlier run left a table or journals here."""
        if self.location is None:
            return False
        return self._fs.exists(self._path) or bool(self._journals())

    def done_rows(self) -> dict[str, DoneRows]:
        """Rows already accepted or rejected, by source: what a resumed run must skip.

        Each source's rows come with the endpoint and event ids recorded for them, so the reader can
        tell a rerun on the same input from one on a different input under the same source name.
        """
        parts: dict[str, list[pa.RecordBatch]] = {}
        for batch in self._batches():
            done = batch.filter(pc.is_in(batch.column("status"), pa.array(FINAL_STATUSES)))
            if done.num_rows == 0:
                continue
            done = done.select(["source", "source_row", "endpoint_id", "event_id"])
            sources = pc.dictionary_encode(done.column("source"))
            codes = sources.indices.to_numpy(zero_copy_only=False)
            for code, source in enumerate(sources.dictionary.to_pylist()):
                parts.setdefault(source, []).append(done.filter(pa.array(codes == code)))
        location = self.location or "memory"
        return {source: DoneRows(pa.Table.from_batches(batches), location) for source, batches in parts.items()}

    def read(self) -> pa.Table:
        """The table as compacted: at the location, or the in-memory one."""
        if self.location is None:
            return _latest(pa.Table.from_batches(self._memory, schema=SCHEMA))
        return pa.Table.from_batches(list(self._final_batches()), schema=SCHEMA)

    def _journals(self) -> list[str]:
        if not self._fs.exists(self.staging):
            return []
        return sorted(p for p in self._fs.ls(self.staging, detail=False) if p.endswith(JOURNAL_SUFFIX))

    def _batches(self) -> Iterator[pa.RecordBatch]:
        """The earlier table, then every journal in the order written, in batches of bounded size."""

        def every() -> Iterator[pa.RecordBatch]:
            if self._fs.exists(self._path):
                yield from self._final_batches()
            for journal in self._journals():
                yield from _journal_batches(self._fs, journal)

        return _rechunk(every())

    def _final_batches(self) -> Iterator[pa.RecordBatch]:
        with self._fs.open(self._path, "rb") as f:
            try:
                if self.format == "csv":
                    reader: Iterable[pa.RecordBatch] = pacsv.open_csv(
                        f, convert_options=pacsv.ConvertOptions(column_types=SCHEMA, strings_can_be_null=True)
                    )
                else:
                    reader = pq.ParquetFile(f).iter_batches(batch_size=_CHUNK_ROWS, columns=list(COLUMNS))
                for batch in reader:
                    yield batch.select(list(COLUMNS)).cast(SCHEMA)
            except (pa.ArrowInvalid, KeyError, ValueError) as exc:
                raise InputError(
                    f"{self.location} exists but is not a results table ({exc}); choose another results location."
                ) from None

    # Writing ----------------------------------------------------------------------------------

    def writer(self, run_id: str) -> ResultsWriter:
        return ResultsWriter(self, run_id)

    def _keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row's key (``_KeyCodes``) and whether its status is final, in the order written.

        The per-batch pieces are joined and dropped before the caller sorts: at 5 million rows each
        copy of the keys is 40 MB, and compaction runs at the end of a load, on top of what it held.
        """
        codes = _KeyCodes()
        keys: list[np.ndarray] = []
        finals: list[np.ndarray] = []
        for batch in self._batches():
            keys.append(codes(batch))
            finals.append(_is_final(batch))
        key = np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)
        del keys
        return key, np.concatenate(finals) if finals else np.empty(0, dtype=bool)

    def compact(self) -> dict[str, int]:
        """Write the one clean table at the location, drop the journals; return its rows by status.

        Two streaming passes, so memory stays at two int64 per row (the keys and, for a moment, a
        sorted copy) plus one batch: the first finds which rows survive (the latest word on each),
        the second writes them.
        """
        if self.location is None:
            return _status_counts(self.read().to_batches())
        keep = _keep_mask(*self._keys())
        self._fs.makedirs(self._parent, exist_ok=True)
        tmp = f"{self._path}.{secrets.token_hex(4)}.tmp"
        counts: dict[str, int] = {}
        with self._fs.open(tmp, "wb") as f:
            writer = pacsv.CSVWriter(f, SCHEMA) if self.format == "csv" else pq.ParquetWriter(f, SCHEMA)
            offset = 0
            for batch in self._batches():
                n = batch.num_rows
                if keep is not None:
                    batch = batch.filter(pa.array(keep[offset : offset + n]))
                offset += n
                writer.write_batch(batch)
                _add_counts(counts, batch)
            writer.close()
        if self.is_local:
            os.replace(tmp, self._path)
        else:
            self._fs.mv(tmp, self._path)
        if self._fs.exists(self.staging):
            self._fs.rm(self.staging, recursive=True)
        return counts


class ResultsWriter:
    """Appends rows to a journal from any thread; each call is on disk when it returns (local)."""

    def __init__(self, store: ResultsStore, run_id: str) -> None:
        self._store = store
        self.run_id = run_id
        self._lock = threading.Lock()
        self._seq = 0
        self._file: Any = None
        self._rows_in_file = 0
        self._opened_at = 0.0
        self._run_ids: pa.Array | None = None  # the run id repeated, reused while answers have as many rows

    def add_outcomes(self, decided: Outcomes) -> None:
        """Rows the sender decided, stamped with this run's id."""
        n = len(decided)
        if n:
            if self._run_ids is None or len(self._run_ids) != n:
                self._run_ids = pa.repeat(pa.scalar(self.run_id, pa.string()), n)
            self.add(pa.RecordBatch.from_arrays([self._run_ids, *decided.batch.columns], schema=SCHEMA))

    def add_rejections(self, rejections: Sequence[Any]) -> None:
        if rejections:
            self.add(rejections_batch(rejections, self.run_id))

    def add(self, batch: pa.RecordBatch) -> None:
        with self._lock:
            if self._store.location is None:
                self._store._memory.append(batch)
                return
            if self._file is not None and self._due_rotation():
                self._close_journal()
            if self._file is None:
                self._open_journal()
            # One write per batch: the batch's IPC message, serialised by Arrow in one call (an IPC
            # stream writer on a Python file makes a dozen small writes per batch).
            self._file.write(batch.serialize())
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
        self._file.write(SCHEMA.serialize())  # a journal is an Arrow IPC stream: the schema, then the batches
        self._rows_in_file = 0
        self._opened_at = time.monotonic()

    def _close_journal(self) -> None:
        self._file.write(_END_OF_STREAM)
        self._file.close()
        self._file = None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._close_journal()


_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _journal_batches(fs: Any, path: str) -> Iterator[pa.RecordBatch]:
    """The complete batches of a journal; a batch cut short by a kill is ignored (its rows are resent)."""
    with fs.open(path, "rb") as f:
        try:
            reader = pa.ipc.open_stream(f)
        except (pa.ArrowInvalid, OSError):
            return
        while True:
            try:
                yield reader.read_next_batch()
            except (StopIteration, pa.ArrowInvalid, OSError):
                return


def _rechunk(batches: Iterable[pa.RecordBatch], rows: int = 0) -> Iterator[pa.RecordBatch]:
    """Small journal batches (one per answer) joined into batches of about ``rows`` rows."""
    rows = rows or _CHUNK_ROWS
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.concat_batches(pending)
            pending, count = [], 0
    if pending:
        yield pa.concat_batches(pending)


class _KeyCodes:
    """Folds (record_type, source, source_row) into one int64 per row, batch after batch.

    Sources get codes in the order they first appear (22 bits), rows keep their number (40 bits),
    the record type takes the top bit: numpy then finds repeated rows with one sort.
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def __call__(self, batch: pa.RecordBatch) -> np.ndarray:
        sources = pc.dictionary_encode(batch.column("source"))
        mapping = np.array(
            [self._codes.setdefault(name, len(self._codes)) for name in sources.dictionary.to_pylist()], dtype=np.int64
        )
        rows = batch.column("source_row").to_numpy(zero_copy_only=False).astype(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= 1 << 40 or len(self._codes) >= 1 << 21):
            raise ValueError("results key out of range (source_row >= 2^40 or over 2M sources)")
        is_event = pc.equal(batch.column("record_type"), EVENT).to_numpy(zero_copy_only=False).astype(np.int64)
        local = sources.indices.to_numpy(zero_copy_only=False)
        return (is_event << 62) | (mapping[local] << 40) | rows


def _is_final(batch: pa.RecordBatch) -> np.ndarray:
    return pc.is_in(batch.column("status"), pa.array(FINAL_STATUSES)).to_numpy(zero_copy_only=False)


def _keep_mask(key: np.ndarray, final: np.ndarray) -> np.ndarray | None:
    """Which rows survive, or None when no row repeats (keep them all).

    Within a key, a final decision (accepted or rejected) beats a failure and a later row beats an
    earlier one: sorted by (key, final, order), the last row of each key wins.
    """
    n = len(key)
    if n < 2:
        return None
    ordered = np.sort(key)
    repeats = (ordered[1:] == ordered[:-1]).any()
    del ordered
    if not repeats:
        return None
    order = np.lexsort((np.arange(n), final, key))
    ordered = key[order]
    keep = np.zeros(n, dtype=bool)
    keep[order[np.append(ordered[1:] != ordered[:-1], True)]] = True
    return keep


def _latest(table: pa.Table) -> pa.Table:
    """One row per input row, in the order written (the in-memory form of compaction)."""
    batches = table.to_batches()
    if not batches:
        return table
    codes = _KeyCodes()
    keep = _keep_mask(np.concatenate([codes(b) for b in batches]), np.concatenate([_is_final(b) for b in batches]))
    return table if keep is None else table.filter(pa.array(keep))


def _add_counts(counts: dict[str, int], batch: pa.RecordBatch) -> None:
    for entry in pc.value_counts(batch.column("status")).to_pylist():
        counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]


def _status_counts(batches: Iterable[pa.RecordBatch]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for batch in batches:
        _add_counts(counts, batch)
    return counts


def _format_of(path: str, location: str) -> str:
    if path.lower().endswith(".csv"):
        return "csv"
    if is_parquet(path):
        return "parquet"
    raise InputError(f"results location {location!r} must end in .parquet, .pq or .csv (that picks the format)")


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)

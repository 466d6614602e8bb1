"""Journals: the results rows of a running run, appended to files as answers come, so a kill loses
at most the answers still in flight.

Journal files live in a hidden staging directory next to the location (``<dir>/.<name>.staging/``).
Each answered request's rows are written and flushed before the next answer is recorded, so a
process killed at any moment loses only the rows of requests in flight; those are sent again by the
next run, which is the whole of the duplicate window. On object storage a file exists only once it
is closed, so there journals are rotated every few seconds and the window grows to that interval.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_provider_pinpoint.results.rows import RESULTS_SCHEMA, Outcomes, rejections_batch, stamped

if TYPE_CHECKING:
    from airflow_provider_pinpoint.results.store import ResultsStore

JOURNAL_SUFFIX = ".arrows"
_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


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
            self.add(stamped(decided, self._run_ids))

    def add_rejections(self, rejections: Sequence[Any]) -> None:
        """Rows refused by validation (``prepare.flow.Rejection``)."""
        if rejections:
            self.add(rejections_batch(rejections, self.run_id))

    def add(self, batch: pa.RecordBatch) -> None:
        """Append results rows (:data:`~airflow_provider_pinpoint.results.rows.RESULTS_SCHEMA`)."""
        with self._lock:
            store = self._store
            if store.location is None:
                store.memory.append(batch)
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
        if self._rows_in_file >= self._store.rotate_rows:
            return True
        return not self._store.is_local and time.monotonic() - self._opened_at >= self._store.rotate_s

    def _open_journal(self) -> None:
        store = self._store
        store.fs.makedirs(store.staging, exist_ok=True)
        name = f"{time.time_ns():020d}-{self.run_id}-{self._seq:05d}{JOURNAL_SUFFIX}"
        self._seq += 1
        self._file = store.fs.open(posixpath.join(store.staging, name), "wb")
        self._file.write(RESULTS_SCHEMA.serialize())  # an Arrow IPC stream: the schema, then the batches
        self._rows_in_file = 0
        self._opened_at = time.monotonic()

    def _close_journal(self) -> None:
        self._file.write(_END_OF_STREAM)
        self._file.close()
        self._file = None

    def close(self) -> None:
        """Close the journal file being written (on object storage, that is when it appears)."""
        with self._lock:
            if self._file is not None:
                self._close_journal()


def journal_paths(fs: Any, staging: str) -> list[str]:
    """The journal files in a staging directory, in the order they were opened."""
    if not fs.exists(staging):
        return []
    return sorted(p for p in fs.ls(staging, detail=False) if p.endswith(JOURNAL_SUFFIX))


def journal_batches(fs: Any, path: str) -> Iterator[pa.RecordBatch]:
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

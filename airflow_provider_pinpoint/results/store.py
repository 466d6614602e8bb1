"""The results table at one location: one row per input row, so a killed run can be resumed.

While a run is going its rows go to journals (:mod:`~airflow_provider_pinpoint.results.journal`).
At the end the earlier table at the location (if any) and every journal are compacted
(:mod:`~airflow_provider_pinpoint.results.compaction`) into exactly the location given (Parquet, or
CSV for ``.csv``), and the journals compacted are removed. Reading that table back, with any
leftover journals of a killed run, is what tells the next run which rows to skip. A run holds the
location meanwhile (:meth:`ResultsStore.lock`).
"""

from __future__ import annotations

import logging
import os
import posixpath
import secrets
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.common.locations import filesystem, is_object_path, location_text
from airflow_provider_pinpoint.errors import InputError, PinpointLoaderError
from airflow_provider_pinpoint.results import compaction
from airflow_provider_pinpoint.results.formats import CHUNK_ROWS, abandon, format_of, table_batches, table_writer
from airflow_provider_pinpoint.results.journal import (
    ResultsReadError,
    ResultsWriteError,
    ResultsWriter,
    journal_batches,
    journal_paths,
)
from airflow_provider_pinpoint.results.lock import LocationLock
from airflow_provider_pinpoint.results.resume import DoneRows
from airflow_provider_pinpoint.results.rows import FINAL_STATUSES, RESULTS_SCHEMA, repeated_columns

log = logging.getLogger(__name__)

__all__ = ["ResultsReadError", "ResultsStore", "ResultsWriteError", "new_run_id"]


def new_run_id() -> str:
    """A run id that sorts by start time: ``20260101T120000Z-1a2b3c``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


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
        self.rotate_rows = rotate_rows
        self.rotate_s = rotate_s
        self.memory: list[pa.RecordBatch] = []  # the rows, when there is no location
        self._damaged: set[str] = set()  # journals whose damage was reported (once each)
        self._writers: list[ResultsWriter] = []
        if self.location is None:
            return
        self.fs, self._path = filesystem(location)
        self.format = format_of(self._path, self.location)
        self.is_local = "file" in _protocols(self.fs)
        if self.is_local:
            self._path = os.path.abspath(self._path)
        parent, name = posixpath.split(self._path.replace(os.sep, "/"))
        self._parent = parent
        self.staging = posixpath.join(parent, f".{name}.staging")
        self._lock_path = posixpath.join(parent, f".{name}.lock")

    def lock(self, run_id: str, **timing: float) -> AbstractContextManager[Any]:
        """Hold the location for ``run_id`` inside ``with``: a second run is refused with
        :class:`~airflow_provider_pinpoint.results.lock.LocationBusy`; see
        :mod:`~airflow_provider_pinpoint.results.lock` for what holds where. ``timing``: its
        ``heartbeat_s`` / ``stale_s`` / ``settle_s`` (object storage only)."""
        if self.location is None:
            return nullcontext()
        try:
            self.fs.makedirs(self._parent, exist_ok=True)
        except Exception as exc:  # the directory cannot be made (a file in the way, no access): one line
            raise ResultsWriteError.of(self.location, exc) from exc
        return LocationLock(self.fs, self._lock_path, self.location, run_id, local=self.is_local, **timing)

    # Reading ----------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether an earlier run left a table or journals here."""
        if self.location is None:
            return False
        try:
            return self.fs.exists(self._path) or bool(journal_paths(self.fs, self.staging))
        except Exception as exc:
            raise ResultsReadError.of(self.location, exc) from exc

    def done_rows(self) -> dict[str, DoneRows]:
        """Rows already accepted or rejected, by source: what a resumed run must skip.

        Each source's rows come with the endpoint and event ids recorded for them, so the reader can
        tell a rerun on the same input from one on a different input under the same source name.
        """
        try:
            return self._done_rows()
        except PinpointLoaderError:
            raise
        except Exception as exc:  # a journal gone or refused meanwhile, a store unreachable: one line
            raise ResultsReadError.of(self.location, exc) from exc

    def _done_rows(self) -> dict[str, DoneRows]:
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
            return compaction.latest(pa.Table.from_batches(self.memory, schema=RESULTS_SCHEMA))
        return pa.Table.from_batches(list(self._table_batches()), schema=RESULTS_SCHEMA)

    def _batches(self, journals: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The earlier table, then the journals (all of them unless given) in the order written,
        in batches of bounded size."""

        def every() -> Iterator[pa.RecordBatch]:
            if self.fs.exists(self._path):
                yield from self._table_batches()
            own = {path: writer for writer in self._writers for path in writer.journals()}
            for journal in journal_paths(self.fs, self.staging) if journals is None else journals:
                writer = own.get(journal)
                written = None if writer is None else writer.written_batches(journal, self.fs.size(journal))
                yield from journal_batches(self.fs, journal, self._damaged) if written is None else written

        return _rechunk(every())

    def _table_batches(self) -> Iterator[pa.RecordBatch]:
        with self.fs.open(self._path, "rb") as f:
            yield from table_batches(f, self.format, self.location or "")

    # Writing ----------------------------------------------------------------------------------

    def writer(self, run_id: str) -> ResultsWriter:
        """A writer appending this run's rows to a journal here."""
        writer = ResultsWriter(self, run_id)
        self._writers.append(writer)
        return writer

    def compact(self) -> dict[str, int]:
        """Write the one clean table at the location, drop the journals; return its rows by status.

        When a writer failed, nothing is touched and ``{}`` is returned: the journals stay for the
        next run, and the write error, already on its way to the caller, is the one to report.
        A failure writing the table is a :class:`ResultsWriteError`; the journals stay then too.
        """
        if self.location is None:
            counts: dict[str, int] = {}
            for batch in self.read().to_batches():
                compaction.add_counts(counts, batch)
            return counts
        try:
            return self._compact()
        finally:  # succeeded or not, what the writers kept for it is no longer needed
            for writer in self._writers:
                writer.release()

    def _compact(self) -> dict[str, int]:
        if any(writer.failed is not None for writer in self._writers):
            return {}
        # Both passes read the same journals, and only those are removed: one that appears meanwhile
        # (another run's, where the lock is best effort) is left for the run that wrote it.
        tmp = f"{self._path}.{secrets.token_hex(4)}.tmp"
        try:
            journals = journal_paths(self.fs, self.staging)
            sizes = self._sizes(journals)
            read = _Kept(self._batches(journals), _KEPT_BYTES)
            try:
                with repeated_columns():  # the same few columns of one value, made once for both passes
                    keep, rows = compaction.survivors(read)
                    counts = self._write_table(tmp, keep, rows, journals, read.batches, sizes)
            finally:  # an error's traceback keeps this frame: not the rows with it
                if read.batches:
                    read.batches.clear()
        except PinpointLoaderError:
            _remove_quietly(self.fs, tmp)
            raise
        except Exception as exc:  # reading or writing failed (a journal gone, a disk full): one line
            _remove_quietly(self.fs, tmp)
            raise ResultsWriteError.of(self.location, exc) from exc
        for journal in journals:
            try:
                self.fs.rm(journal)
            except FileNotFoundError:
                pass
            except Exception as exc:  # the table is complete: a journal left over is read again, harmlessly
                log.warning(
                    "could not remove a results journal at %s (%s); the next run reads it again",
                    self.location,
                    type(exc).__name__,
                )
        try:
            if self.fs.exists(self.staging) and not self.fs.ls(self.staging, detail=False):
                self.fs.rmdir(self.staging)
        except OSError:  # an empty directory left behind is harmless (object stores have none to remove)
            pass
        return counts

    def _write_table(
        self,
        tmp: str,
        keep: np.ndarray | None,
        rows: int,
        journals: list[str],
        kept: list[pa.RecordBatch] | None,
        sizes: list[int | None],
    ) -> dict[str, int]:
        """Write the surviving rows to ``tmp``, then put it in place of the location in one step.

        ``kept``: the rows of the first pass, when it kept them all; otherwise they are read again.
        Kept rows were read once only, so the journals are checked to still be there with ``sizes``
        bytes (a run still writing to one, where the lock is best effort, would lose the rows it
        added when the journals are removed; another run's compaction may have removed one): the
        second reading checks that otherwise, by its count of rows or a journal not found.
        """
        self.fs.makedirs(self._parent, exist_ok=True)
        batches = self._batches(journals) if kept is None else _drained(kept)
        with self.fs.open(tmp, "wb") as f:
            writer = table_writer(f, self.format)
            try:
                counts = compaction.write_survivors(batches, keep, rows, writer)
                writer.close()
            except BaseException:
                abandon(writer)
                raise
        if kept is not None and self._sizes(journals) != sizes:
            raise compaction.changed()
        if self.is_local:
            os.replace(tmp, self._path)
        else:
            self.fs.mv(tmp, self._path)
        return counts

    def _sizes(self, journals: list[str]) -> list[int | None]:
        """The journals' sizes in bytes, None for one gone. A local journal can grow while it is
        read; on object storage one appears only once closed, but can still be removed (by another
        run's compaction) or written again: there one listing of the staging directory, made afresh
        (a filesystem may cache listings), gives them all."""
        if self.is_local:
            return [_local_size(journal) for journal in journals]
        self.fs.invalidate_cache(self.staging)
        try:
            listed = {entry["name"]: entry["size"] for entry in self.fs.ls(self.staging, detail=True)}
        except FileNotFoundError:  # the staging directory is gone with every journal in it
            listed = {}
        return [listed.get(journal) for journal in journals]


# Compaction keeps the rows of its first pass for its second up to this many bytes of Arrow buffers
# (a run of about 300,000 rows): reading, summing and decoding the journals again was about a third
# of compacting a run's table. Larger tables are read again, as memory stays bounded.
_KEPT_BYTES = 48 << 20


class _Kept:
    """``batches`` as they pass, kept in :attr:`batches` while they fit in ``budget`` bytes (else None)."""

    def __init__(self, batches: Iterable[pa.RecordBatch], budget: int) -> None:
        self._source = batches
        self._budget = budget
        self._bytes = 0
        self.batches: list[pa.RecordBatch] | None = []

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._source:
            if self.batches is not None:
                self._bytes += batch.get_total_buffer_size()
                if self._bytes > self._budget:
                    self.batches = None
                else:
                    self.batches.append(batch)
            yield batch


def _local_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return None


def _drained(batches: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``batches`` in order, each let go once written."""
    batches.reverse()
    while batches:
        yield batches.pop()


def _remove_quietly(fs: Any, path: str) -> None:
    """Remove a half-written file if possible; a failure here must not hide the error that caused it."""
    try:
        if fs.exists(path):
            fs.rm(path)
    except Exception:  # the caller raises the first error
        pass


def _rechunk(batches: Iterable[pa.RecordBatch], rows: int = CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
    """Small journal batches (one per answer) joined into batches of about ``rows`` rows; a batch
    that is one on its own (a sync's unchanged rows come a slice at a time) goes as it is, uncopied."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield _joined(pending)
            pending, count = [], 0
    if pending:
        yield _joined(pending)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)

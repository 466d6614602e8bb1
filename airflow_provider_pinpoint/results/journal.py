"""Journals: the results rows of a running run, appended to files as answers come, so a kill loses
at most the answers still in flight.

Journal files live in a hidden staging directory next to the location (``<dir>/.<name>.staging/``).
Each answered request's rows are written and flushed before the next answer is recorded, so a
process killed at any moment loses only the rows of requests in flight; those are sent again by the
next run, which is the whole of the duplicate window. On object storage a file exists only once it
is closed, so there journals are rotated every few seconds and the window grows to that interval.

A journal is a format marker, then one framed record per batch: the payload's length, its CRC32,
the CRC32 of those eight bytes, then the batch as an Arrow IPC message. Rows decided alike (a
request accepted whole, the normal case) are one record of their own kind, flagged in the length's
top bit: the decision once, as a small JSON list behind its length (run id, status, status code,
message, attempts, request id, sent_at in milliseconds), then only the items' own columns
(``ITEM_COLUMNS_SCHEMA``) as the IPC message; writing the decision's columns row by row made over
half of each record, and of what building, summing, writing and reading it back cost. In a record
of many rows (a sync's pieces of rows not sent), the items' record type and source, when one value
each throughout, go in that list too (else null, and they stay columns): the IPC message then holds
only the ids and row numbers, a third of its bytes for a sync's rows.
Journals of the earlier formats are read too: the same frames with decisions of seven values
(marker ``...\x00\x03``), and with no flagged records (marker ``...\x00\x02``).

Reading checks both sums: a damaged batch is dropped (its rows count as not sent, so the next run
sends them again) instead of making every later resume fail; a damaged frame loses the rest of its
file the same way. A batch cut short by a kill is dropped silently: that is how a killed run ends.

A writer also keeps the records it wrote, up to :data:`KEPT_BYTES`: the compaction that ends its
run takes its own journals from there (each whose file has the size written) instead of reading
them back; any other journal, or one of a larger run, is read from its file.
"""

from __future__ import annotations

import logging
import posixpath
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import msgspec
import pyarrow as pa

from airflow_provider_pinpoint.common.text import first_line
from airflow_provider_pinpoint.errors import InputError, PinpointLoaderError
from airflow_provider_pinpoint.results.formats import CHUNK_ROWS
from airflow_provider_pinpoint.results.rows import (
    ITEM_COLUMNS_SCHEMA,
    RESULTS_SCHEMA,
    Outcomes,
    own_columns,
    rejections_batch,
    results_of_alike,
    sent_at_millis,
    shared_items,
    stamped,
    unshared_items,
)

if TYPE_CHECKING:
    from airflow_provider_pinpoint.results.store import ResultsStore

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".arrows"
# The first bytes of a journal in this format; an earlier loader's journals (plain IPC streams) lack it.
MARKER = b"PPJRNL\x00\x04"
# The format whose records of rows decided alike hold every item column: read as well.
MARKER_V3 = b"PPJRNL\x00\x03"
# The format before records of rows decided alike: read as well (a run killed before an upgrade).
MARKER_V2 = b"PPJRNL\x00\x02"
# In a record's length: the record holds rows decided alike (one decision, then the items' columns).
_ALIKE = 1 << 31
_HEADER_LENGTH = struct.Struct("<I")
# A decision's JSON list (run id, status, status code, message, attempts, request id, sent_at in
# milliseconds), made and read by msgspec: a tenth of what the json module takes for it. Read typed
# and bounded (32-bit status code and attempts, 64-bit milliseconds), so that a record whose values
# the results columns cannot hold is dropped like a damaged one, checked in msgspec's own decoding.
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_Int32 = Annotated[int, msgspec.Meta(ge=_INT32_MIN, le=_INT32_MAX)]
_Int64 = Annotated[int, msgspec.Meta(ge=_INT64_MIN, le=_INT64_MAX)]
_DecisionValues = tuple[str, str, _Int32 | None, str | None, _Int32, str | None, _Int64 | None]
# Then the record type and source shared by every item of the record (null: a column of their own).
_SharedValues = tuple[str, str, _Int32 | None, str | None, _Int32, str | None, _Int64 | None, str | None, str | None]
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_SharedValues)
_DECODER_V3 = msgspec.json.Decoder(_DecisionValues)
_FRAME = struct.Struct("<III")  # payload length, CRC32 of the payload, CRC32 of the first eight bytes
_LENGTH_AND_SUM = struct.Struct("<II")
# Items of a record of rows decided alike are checked for a shared record type and source from this
# many rows (a sync's pieces of rows not sent): for a request's hundred rows the check cost more
# than the bytes it saves, and a run's journal took three times the CPU.
_SHARED_ROWS = 1_000
# No results batch comes near this: a larger length is a damaged frame.
_MAX_RECORD = 1 << 30
# How an Arrow IPC stream, an earlier loader's journal, begins.
_IPC_CONTINUATION = b"\xff\xff\xff\xff"
# A writer keeps the records it wrote while their IPC messages come to at most this many bytes (a run
# of about 400,000 rows accepted whole): compaction in the same process then takes them from memory.
KEPT_BYTES = 32 << 20


class ResultsWriteError(PinpointLoaderError):
    """The results could not be written (disk full, object store refused): the run stops, as it cannot keep count."""

    @classmethod
    def of(cls, location: str | None, error: BaseException) -> ResultsWriteError:
        """The one line saying that writing at ``location`` failed with ``error``, and what to do."""
        return cls(
            f"could not write the results at {location} ({type(error).__name__}: {_no_address(first_line(error))}); "
            "the run stopped; free space or fix access, then rerun with the same results location to resume"
        )


class ResultsReadError(InputError):
    """The results (table or journals) at a location could not be read: nothing was sent."""

    @classmethod
    def of(cls, location: str | None, error: BaseException) -> ResultsReadError:
        """The one line saying that reading at ``location`` failed with ``error``."""
        return cls(
            f"could not read the results at {location} ({type(error).__name__}: {_no_address(first_line(error))}); "
            "nothing was sent; fix access, or choose another results location"
        )


# Characters of a run id kept in a journal's file name (a run id is any text the caller gives).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:+~-]")

# What an object store's client may put in an error: its endpoint or proxy URL (with a password in
# it, for a proxy), an IP address, a host and port.
_ADDRESS = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>)]+"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
    r"|(?<![\w/.-])[A-Za-z0-9][\w.-]*:\d{2,5}\b"
)


def _no_address(text: str) -> str:
    """``text`` with every URL and network address in it replaced: errors carry none."""
    return _ADDRESS.sub("<address>", text)


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
        # What was written, by journal: its size, and its records while they fit in KEPT_BYTES
        # (None past that), for compaction to take instead of reading the journal back.
        self._path = ""
        self._sizes: dict[str, int] = {}
        self._kept: dict[str, list[pa.RecordBatch | _Alike]] | None = {}
        self._kept_bytes = 0
        # The first error writing the journal: nothing more is written after it (a record after a
        # half-written one could not be read back), and the journals are left for the next run.
        self.failed: Exception | None = None

    def add_outcomes(self, decided: Outcomes) -> None:
        """Rows the sender decided, stamped with this run's id."""
        n = len(decided)
        if n and decided.uniform is not None and self._store.location is not None:
            items, decision = decided.uniform
            values = (self.run_id, *decision[:5], sent_at_millis(decision.sent_at))
            if items.schema.equals(ITEM_COLUMNS_SCHEMA) and _storable(values):
                self._write_locked(lambda: self._append_alike(items, values))
                return
        if n:
            if self._run_ids is None or len(self._run_ids) != n:
                self._run_ids = pa.repeat(pa.scalar(self.run_id, pa.string()), n)
            self.add(stamped(decided, self._run_ids))

    def add_rejections(self, rejections: Sequence[Any]) -> None:
        """Rows refused by validation (``prepare.flow.Rejection``)."""
        if rejections:
            self.add(rejections_batch(rejections, self.run_id))

    def add(self, batch: pa.RecordBatch) -> None:
        """Append results rows (:data:`~airflow_provider_pinpoint.results.rows.RESULTS_SCHEMA`).

        A failed write raises its own error, here and on every later call. A batch of other column
        types is cast first: a journal records no schema, it is read back as RESULTS_SCHEMA, and
        its CRC would vouch for bytes meaning other values under that schema.
        """
        if not batch.schema.equals(RESULTS_SCHEMA):
            batch = _conformed(batch)
        if self._store.location is None:
            with self._lock:
                self._store.memory.append(batch)
            return
        self._write_locked(lambda: self._append(batch))

    def _write_locked(self, append: Callable[[], None]) -> None:
        """Run ``append`` under the writer's lock; the first failure is kept and raised on every later call."""
        with self._lock:
            if self.failed is not None:
                raise self.failed
            try:
                append()
            except Exception as exc:
                self.failed = exc
                raise

    def _append(self, batch: pa.RecordBatch) -> None:
        # The batch's IPC message, serialised by Arrow in one call (an IPC stream writer on a
        # Python file makes a dozen small writes per batch), behind its frame.
        self._write_record(b"", batch.serialize(), batch, batch.num_rows)

    def _append_alike(self, items: pa.RecordBatch, values: tuple[Any, ...]) -> None:
        shared = shared_items(items) if items.num_rows >= _SHARED_ROWS else (None, None)
        values = (*values, *shared)
        if shared != (None, None):
            items = items.select(own_columns(shared).names)
        header = _ENCODER.encode(values)
        # Spaces after the JSON (still valid JSON) keep the IPC message 8-byte aligned in the payload,
        # as Arrow's format asks of its buffers when they are read in place.
        header += b" " * (-(_HEADER_LENGTH.size + len(header)) % 8)
        record = _Alike(items, list(values))
        self._write_record(_HEADER_LENGTH.pack(len(header)) + header, items.serialize(), record, items.num_rows)

    def _write_record(self, head: bytes, message: pa.Buffer, record: pa.RecordBatch | _Alike, rows: int) -> None:
        """One record: its frame, ``head`` (a decision, for rows decided alike) and the IPC ``message``;
        ``record``: the same as reading it back gives it, kept while there is room."""
        if self._file is not None and self._due_rotation():
            self._close_journal()
        if self._file is None:
            self._open_journal()
        size = len(head) + message.size
        if size > _MAX_RECORD:  # its length would read as damaged (or, flagged, as another kind)
            raise ValueError(f"a results record of {size:,} bytes is more than a journal record holds")
        head_and_length = _LENGTH_AND_SUM.pack((size | _ALIKE) if head else size, zlib.crc32(message, zlib.crc32(head)))
        # One write call, one copy of the message: one system call.
        data = b"".join((head_and_length, struct.pack("<I", zlib.crc32(head_and_length)), head, message))
        self._file.write(data)
        self._file.flush()
        self._rows_in_file += rows
        self._sizes[self._path] += len(data)
        if self._kept is not None:
            self._kept_bytes += message.size
            if self._kept_bytes > KEPT_BYTES:
                self._kept = None
            else:
                self._kept[self._path].append(record)

    def _due_rotation(self) -> bool:
        if self._rows_in_file >= self._store.rotate_rows:
            return True
        return not self._store.is_local and time.monotonic() - self._opened_at >= self._store.rotate_s

    def _open_journal(self) -> None:
        store = self._store
        store.fs.makedirs(store.staging, exist_ok=True)
        # The run id is in every row; in the name it is only for people, and may not make a path.
        name = f"{time.time_ns():020d}-{_UNSAFE.sub('_', self.run_id)[:100]}-{self._seq:05d}{JOURNAL_SUFFIX}"
        self._seq += 1
        self._path = posixpath.join(store.staging, name)
        self._file = store.fs.open(self._path, "wb")
        self._file.write(MARKER)
        self._sizes[self._path] = len(MARKER)
        if self._kept is not None:
            self._kept[self._path] = []
        self._rows_in_file = 0
        self._opened_at = time.monotonic()

    def _close_journal(self) -> None:
        self._file.close()
        self._file = None

    def journals(self) -> list[str]:
        """The journals this writer opened."""
        with self._lock:
            return list(self._sizes)

    def written_batches(self, path: str, size: int) -> Iterator[pa.RecordBatch] | None:
        """The batches of the journal at ``path`` as reading it gives them, from what this writer
        kept of it; None unless the writer is closed without a failure, kept every record of it, and
        the file has the ``size`` it wrote (a journal changed since is read from its file).

        Taken from memory, a journal is neither read back nor summed: compacting a run's own
        journals cost about a third more when read.
        """
        with self._lock:
            if self.failed is not None or self._file is not None or self._kept is None:
                return None
            records = self._kept.get(path)
            if records is None or self._sizes[path] != size:
                return None
        return _grouped(map(_as_read, records))

    def release(self) -> None:
        """Let go of what only compaction needs: the records kept (up to ``KEPT_BYTES``) and, once the
        journal is closed, the sizes written. A finished run's report keeps its store, and so this
        writer, alive: without this, a run's last tens of MB of records would stay in memory with it.
        Nothing is kept after: a later compaction reads the journals from their files."""
        with self._lock:
            self._kept = None
            self._kept_bytes = 0
            if self._file is None:
                self._sizes = {}

    def close(self) -> None:
        """Close the journal file being written (on object storage, that is when it appears).

        After a failed write, closing is best effort and raises nothing: the first error is the one
        to report. Otherwise a failure is a :class:`ResultsWriteError`.
        """
        with self._lock:
            if self._file is None:
                return
            try:
                self._close_journal()
            except Exception as exc:
                self._file = None
                if self.failed is not None:
                    return
                self.failed = exc
                raise ResultsWriteError.of(self._store.location, exc) from exc


def _conformed(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` as :data:`RESULTS_SCHEMA` (its columns by name, cast); a missing column is a ValueError."""
    missing = [name for name in RESULTS_SCHEMA.names if name not in batch.schema.names]
    if missing:
        raise ValueError(f"results rows lack the column(s) {', '.join(missing)}")
    return pa.RecordBatch.from_arrays(
        [batch.column(field.name).cast(field.type) for field in RESULTS_SCHEMA], schema=RESULTS_SCHEMA
    )


def journal_paths(fs: Any, staging: str) -> list[str]:
    """The journal files in a staging directory, in the order they were opened."""
    if not fs.exists(staging):
        return []
    return sorted(p for p in fs.ls(staging, detail=False) if p.endswith(JOURNAL_SUFFIX))


def journal_batches(fs: Any, path: str, warned: set[str]) -> Iterator[pa.RecordBatch]:
    """The intact batches of a journal, in the order written.

    Damage is logged once per journal (``warned`` holds the journals already reported); a batch cut
    short at the end, as a kill leaves it, is dropped without a word.
    """
    with fs.open(path, "rb") as f:
        marker = f.read(len(MARKER))
        if marker not in (MARKER, MARKER_V3, MARKER_V2):
            if marker.startswith(_IPC_CONTINUATION):
                # An earlier loader's journal (a plain IPC stream, no sums), left by a run killed before
                # an upgrade: its rows are recorded, so a resume must skip them rather than send them all again.
                f.seek(0)
                yield from _stream_batches(
                    f, lambda: _warn(warned, path, "an earlier journal of other columns, ignored")
                )
            elif len(marker) == len(MARKER):
                _warn(warned, path, "not a journal this loader writes (damaged), ignored")
            return
        yield from _grouped(_records(f, marker, path, warned))


def _records(f: Any, marker: bytes, path: str, warned: set[str]) -> Iterator[pa.RecordBatch | _Alike]:
    """The intact records of a journal after its ``marker``, in the order written: batches, and rows
    decided alike (in the formats that have them) as they are kept."""
    alike_kind = marker != MARKER_V2
    shared_kind = marker == MARKER
    dropped = 0
    read = 0
    while True:
        frame = f.read(_FRAME.size)
        if len(frame) < _FRAME.size:
            break
        length, payload_sum, frame_sum = _FRAME.unpack(frame)
        alike = alike_kind and bool(length & _ALIKE)
        if alike:
            length &= ~_ALIKE
        if zlib.crc32(frame[: _LENGTH_AND_SUM.size]) != frame_sum or length > _MAX_RECORD:
            rest = f"{read} record batch(es) read, {dropped} damaged, the rest of the file lost with a damaged frame"
            _warn(warned, path, rest)
            return
        payload = f.read(length)
        if len(payload) < length:
            break
        record = _alike(payload, payload_sum, shared_kind) if alike else _batch(payload, payload_sum)
        if record is None:
            dropped += 1
            continue
        read += 1
        yield record
    if dropped:
        _warn(warned, path, f"{dropped} damaged record batch(es) dropped")


class _Alike(NamedTuple):
    """A record of rows decided alike, as kept: the items' own columns (:func:`own_columns`), the run
    id, decision values, and the record type and source shared by the items (null: in ``items``)."""

    items: pa.RecordBatch
    decision: list[Any]


def _grouped(records: Iterator[pa.RecordBatch | _Alike]) -> Iterator[pa.RecordBatch]:
    """Records as results batches: consecutive records of rows decided alike (up to ``CHUNK_ROWS``
    rows) become one batch, made at once. Records whose items share other columns (a request of
    endpoints and events next to one of events) are joined with every item column of their own."""
    group: list[_Alike] = []
    rows = 0
    for record in records:
        if group and isinstance(record, _Alike) and _shape(record) != _shape(group[0]):
            group = [_unshared(kept) for kept in group]
            record = _unshared(record)
        if isinstance(record, _Alike):
            group.append(record)
            rows += record.items.num_rows
            if rows < CHUNK_ROWS:
                continue
        if group:
            yield results_of_alike([kept.items for kept in group], [kept.decision for kept in group])
            group, rows = [], 0
        if not isinstance(record, _Alike):
            yield record
    if group:
        yield results_of_alike([kept.items for kept in group], [kept.decision for kept in group])


def _shape(record: _Alike) -> tuple[bool, bool]:
    """Which of the record type and source a record's items share (else hold as columns)."""
    return record.decision[7] is None, record.decision[8] is None


def _unshared(record: _Alike) -> _Alike:
    """``record`` with every item column in its items, none in its decision."""
    if _shape(record) == (True, True):
        return record
    return _Alike(unshared_items(record.items, record.decision[7:]), [*record.decision[:7], None, None])


def _as_read(record: pa.RecordBatch | _Alike) -> pa.RecordBatch | _Alike:
    """A record kept as written, with the schema reading it back gives (no metadata)."""
    if isinstance(record, _Alike):
        items = record.items
        schema = own_columns(record.decision[7:])
        if items.schema.equals(schema, check_metadata=True):
            return record
        return _Alike(pa.RecordBatch.from_arrays(items.columns, schema=schema), record.decision)
    if record.schema.equals(RESULTS_SCHEMA, check_metadata=True):
        return record
    return pa.RecordBatch.from_arrays(record.columns, schema=RESULTS_SCHEMA)


def _stream_batches(f: Any, foreign: Callable[[], None]) -> Iterator[pa.RecordBatch]:
    """The complete batches of an earlier loader's journal; a batch cut short by a kill ends it."""
    try:
        reader = pa.ipc.open_stream(f)
    except (pa.ArrowInvalid, OSError):
        return
    if not reader.schema.equals(RESULTS_SCHEMA):
        foreign()
        return
    while True:
        try:
            yield reader.read_next_batch()
        except (StopIteration, pa.ArrowInvalid, OSError):
            return


def _batch(payload: bytes, payload_sum: int) -> pa.RecordBatch | None:
    """The batch in a record, or None when the record is damaged."""
    if zlib.crc32(payload) != payload_sum:
        return None
    try:
        return pa.ipc.read_record_batch(pa.py_buffer(payload), RESULTS_SCHEMA)
    except (pa.ArrowInvalid, OSError):
        return None


def _alike(payload: bytes, payload_sum: int, shared_kind: bool) -> _Alike | None:
    """A record of rows decided alike, as kept; None when the record is damaged. ``shared_kind``: the
    format whose decisions end with the items' shared record type and source."""
    if zlib.crc32(payload) != payload_sum:
        return None
    try:
        (size,) = _HEADER_LENGTH.unpack_from(payload)
        start = _HEADER_LENGTH.size
        text = payload[start : start + size]
        decision = list(_DECODER.decode(text) if shared_kind else (*_DECODER_V3.decode(text), None, None))
        message = pa.py_buffer(payload)[start + size :]
        if message.address % 8:  # a record written before its JSON was padded: read from a copy
            message = pa.py_buffer(message.to_pybytes())
        items = pa.ipc.read_record_batch(message, own_columns(decision[7:]))
    except (pa.ArrowInvalid, OSError, ValueError, struct.error, msgspec.DecodeError):
        return None
    return _Alike(items, decision)


def _storable(values: Sequence[Any]) -> bool:
    """Whether a decision's values (as :data:`_DecisionValues`) fit the results columns: text, 32-bit
    status code and attempts, 64-bit milliseconds. Such a record is read back whole; any other is
    written as rows, whose columns refuse what they cannot hold at once, as before."""
    run_id, status, code, message, attempts, request_id, sent_at = values
    return (
        isinstance(run_id, str)
        and isinstance(status, str)
        and (code is None or (type(code) is int and _INT32_MIN <= code <= _INT32_MAX))
        and (message is None or isinstance(message, str))
        and (type(attempts) is int and _INT32_MIN <= attempts <= _INT32_MAX)
        and (request_id is None or isinstance(request_id, str))
        and (sent_at is None or (type(sent_at) is int and _INT64_MIN <= sent_at <= _INT64_MAX))
    )


def _warn(warned: set[str], path: str, what: str) -> None:
    if path not in warned:
        warned.add(path)
        log.warning("results journal %s: %s; their rows will be sent again", path, what)

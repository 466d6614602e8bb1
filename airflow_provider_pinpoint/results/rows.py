"""What the sender decided about items: the statuses, and the rows they become in the results table.

The sender reports decisions as :class:`Outcomes`, a batch of rows (one per item) with their
counts. An answer that accepts a whole request, the normal case, is recorded straight from the
request's columns (:meth:`Outcomes.all_accepted`): no Python object per item. Anything decided
item by item (a rejection, a resend, a split, a stop) goes through :class:`ItemResult`.
"""

from __future__ import annotations

import json
import operator
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from airflow_provider_pinpoint.common.text import SCRUBBED, one_line, scrubbed, shortened
from airflow_provider_pinpoint.prepare.requests import EVENT, ITEM_SCHEMA, Item, Request

ACCEPTED = "accepted"
REJECTED = "rejected"
FAILED = "failed"
# Not sent because the sync state says the destination has them (see airflow_provider_pinpoint.state).
UNCHANGED = "unchanged"  # an endpoint whose body is the one last accepted
ALREADY_SENT = "already_sent"  # an event accepted in an earlier run

# The longest message a results row keeps.
MESSAGE_CHARS = 500

_ITEM_COLUMNS = 5  # record_type .. source_row: the item's own columns, as in requests.ITEM_SCHEMA
# A decided item's row, as the sender reports it (no run id yet).
DECISION_SCHEMA = pa.schema(
    [
        *list(ITEM_SCHEMA)[:_ITEM_COLUMNS],
        ("status", pa.string()),
        ("status_code", pa.int32()),
        ("message", pa.string()),
        ("attempts", pa.int32()),
        ("request_id", pa.string()),
        ("sent_at", pa.timestamp("ms", tz="UTC")),
    ]
)
# A row of the results table: the decision stamped with the run that made it.
RESULTS_SCHEMA = pa.schema([("run_id", pa.string()), *DECISION_SCHEMA])
COLUMNS = tuple(RESULTS_SCHEMA.names)
# An item's own columns without its body: what results rows keep of it.
ITEM_COLUMNS_SCHEMA = pa.schema(list(ITEM_SCHEMA)[:_ITEM_COLUMNS])
_RUN_ID = RESULTS_SCHEMA.field("run_id")
FINAL_STATUSES = (ACCEPTED, REJECTED, UNCHANGED, ALREADY_SENT)


@dataclass(slots=True)
class ItemResult:
    """The final word on one item, decided on its own."""

    item: Item
    status: str
    status_code: int | None
    message: str
    attempts: int
    request_id: str | None
    sent_at: datetime | None


class Row(NamedTuple):
    """One row of :class:`Outcomes`, for reading them in Python (tests, notebooks)."""

    record_type: str
    endpoint_id: str
    event_id: str | None
    source: str
    source_row: int
    status: str
    status_code: int | None
    message: str | None
    attempts: int
    request_id: str | None
    sent_at: datetime | None


class Decision(NamedTuple):
    """What one answer decided alike for every item of a request: the decision columns' one value each."""

    status: str
    status_code: int | None
    message: str | None
    attempts: int
    request_id: str | None
    sent_at: datetime | None


class Outcomes:
    """Items decided together (usually by one answer): ``batch`` holds a row each (:data:`DECISION_SCHEMA`).

    Items decided alike (:meth:`all_accepted`) keep their request's columns and the one
    :class:`Decision` (``uniform``) instead, and make ``batch`` only when it is asked for: the
    results journal records them as they are (a row's decision is the same in every row), so on
    the normal path the batch is never built.
    """

    __slots__ = ("_batch", "uniform", "accepted", "rejected", "failed", "events_accepted")

    def __init__(
        self, batch: pa.RecordBatch | None, accepted: int, rejected: int, failed: int, events_accepted: int
    ) -> None:
        self._batch: pa.RecordBatch | None = batch
        # The items (:data:`ITEM_COLUMNS_SCHEMA`) and their one decision, when decided alike.
        self.uniform: tuple[pa.RecordBatch, Decision] | None = None
        self.accepted = accepted
        self.rejected = rejected
        self.failed = failed
        self.events_accepted = events_accepted

    @property
    def batch(self) -> pa.RecordBatch:
        """The rows, one per item (:data:`DECISION_SCHEMA`)."""
        if self._batch is None:
            assert self.uniform is not None
            self._batch = decided_alike(*self.uniform)
        return self._batch

    def __len__(self) -> int:
        if self._batch is None and self.uniform is not None:
            return self.uniform[0].num_rows
        return self.batch.num_rows

    def rows(self) -> list[Row]:
        return [Row(*values) for values in zip(*(column.to_pylist() for column in self.batch.columns), strict=True)]

    @classmethod
    def all_accepted(
        cls, request: Request, code: int, attempts: int, request_id: str | None, sent_at: datetime
    ) -> Outcomes:
        """Every item of ``request`` accepted by one answer, with one status code.

        The request's own columns (but its bodies) are kept as they are, with the decision beside
        them: reading them out of a slice of a larger batch, to build a new batch, made an array
        object per column and cost as much again; the batch (see :func:`decided_alike`) is made
        only if something asks for it.
        """
        n = len(request)
        outcomes = cls(None, n, 0, 0, request.event_count)
        outcomes.uniform = (
            request.columns.drop_columns(_BODY),
            Decision(ACCEPTED, code, "", attempts, request_id, sent_at),
        )
        return outcomes

    @classmethod
    def of_results(cls, results: Sequence[ItemResult]) -> Outcomes:
        """Items decided one by one."""
        n = len(results)
        if n == 0:
            return cls(pa.RecordBatch.from_pylist([], schema=DECISION_SCHEMA), 0, 0, 0, 0)
        status, code, _, attempts, request_id, sent_at = zip(*map(_RESULT_FIELDS, results), strict=True)
        items = zip(*map(_ITEM_FIELDS, map(_ITEM, results)), strict=True)
        message = tuple(map(_stored_message, results))
        columns = (*items, status, code, message, attempts, request_id, sent_at)
        batch = pa.RecordBatch.from_arrays(
            [pa.array(values, field.type) for values, field in zip(columns, DECISION_SCHEMA, strict=True)],
            schema=DECISION_SCHEMA,
        )
        accepted = status.count(ACCEPTED)
        rejected = status.count(REJECTED)
        events = sum(1 for result in results if result.status == ACCEPTED and result.item.record_type == EVENT)
        return cls(batch, accepted, rejected, n - accepted - rejected, events)


def _stored_message(result: ItemResult) -> str | None:
    """The message as the results table keeps it: without anything that looks like an address (a
    service may quote the item it refused), the item's own address included, on one line and capped in length."""
    message = result.message
    if not message:
        return message
    item = result.item
    if item.record_type != EVENT and '"Address"' in item.body:
        address = json.loads(item.body).get("Address")
        if isinstance(address, str) and address:
            message = message.replace(address, SCRUBBED)
    return one_line(scrubbed(message), MESSAGE_CHARS)


def shared_items(items: pa.RecordBatch) -> tuple[str | None, str | None]:
    """The record type and the source of every item of ``items`` (:data:`ITEM_COLUMNS_SCHEMA`), each
    None unless it is one text value throughout."""
    shared = (single_value(items.column(_RECORD_TYPE)), single_value(items.column(_SOURCE)))
    return tuple(None if value is None else value[0].as_py() for value in shared)  # type: ignore[return-value]


def own_columns(shared: Sequence[str | None]) -> pa.Schema:
    """The columns of :data:`ITEM_COLUMNS_SCHEMA` that items keep when they share ``shared`` (their
    record type and source, each None when not shared: then it is a column of theirs)."""
    return _OWN_COLUMNS[shared[0] is None, shared[1] is None]


def unshared_items(items: pa.RecordBatch, shared: Sequence[str | None]) -> pa.RecordBatch:
    """``items`` (:func:`own_columns` for ``shared``) with every column of :data:`ITEM_COLUMNS_SCHEMA`."""
    own = dict(zip(items.schema.names, items.columns, strict=True))
    for name, value in zip(_SHARED, shared, strict=True):
        if value is not None:
            own[name] = _constant(value, items.num_rows, _TEXT)
    return pa.RecordBatch.from_arrays([own[name] for name in ITEM_COLUMNS_SCHEMA.names], schema=ITEM_COLUMNS_SCHEMA)


def results_of_alike(items: Sequence[pa.RecordBatch], decisions: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """Runs of items, each decided alike, as one batch of results rows.

    ``decisions``: for each run, its run id then its :class:`Decision` with ``sent_at`` in
    milliseconds (:func:`sent_at_millis`), then the record type and source its items share (None:
    not shared), as the journal keeps them; ``items``: the runs' :func:`own_columns`, alike in every
    run. Each decision column is made from one value per run, repeated by one ``take``: making them
    run by run cost more than the rest of reading a journal. A value the same in every run is
    repeated as it is.
    """
    joined = items[0] if len(items) == 1 else pa.concat_batches(list(items))
    n = joined.num_rows
    runs: pa.Array | None = None

    def column(values: tuple[Any, ...], field: pa.Field) -> pa.Array:
        nonlocal runs
        first = values[0]
        # Compared by ``==``: the journal reads each value typed (text or null, a whole number or
        # null), so no True stands for a 1 here.
        if values.count(first) == len(values):
            # One value for every run (a run id, a status; all of them for a sync's unchanged rows):
            # repeated as bytes, where a ``take`` copied it value by value.
            return _constant(first, n, field.type)
        if runs is None:
            runs = pa.array(np.repeat(np.arange(len(items), dtype=np.int32), [batch.num_rows for batch in items]))
        return pa.array(values, field.type).take(runs)

    per_run = list(zip(*decisions, strict=True))
    run_ids, status, code, message, attempts, request_id, sent_at = (
        column(values, field) for values, field in zip(per_run[: len(_ALIKE_FIELDS)], _ALIKE_FIELDS, strict=True)
    )
    own = dict(zip(joined.schema.names, joined.columns, strict=True))
    for name, values in zip(_SHARED, per_run[len(_ALIKE_FIELDS) :], strict=True):
        if values[0] is not None:  # shared by the items: one value per run, as a decision's
            own[name] = column(values, _TEXT_FIELD)
    item_columns = [own[name] for name in ITEM_COLUMNS_SCHEMA.names]
    return pa.RecordBatch.from_arrays(
        [run_ids, *item_columns, status, code, message, attempts, request_id, sent_at], schema=RESULTS_SCHEMA
    )


def sent_at_millis(when: datetime | None) -> int | None:
    """``when`` in milliseconds since the epoch, as the ``sent_at`` column holds it (floored, as
    ``pa.scalar`` does; a naive time counts as UTC)."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _MILLISECOND


def stamped(decided: Outcomes, run_ids: pa.Array) -> pa.RecordBatch:
    """``decided``'s rows as results rows: ``run_ids`` is the run id repeated once per row.

    The column is added to the batch as it is (a tenth of the CPU of building a new batch from
    its columns); a batch of other column types then differs from :data:`RESULTS_SCHEMA`, which
    the journal checks.
    """
    return decided.batch.add_column(0, _RUN_ID, run_ids)


def rejections_batch(rejections: Sequence[Any], run_id: str) -> pa.RecordBatch:
    """Rows refused by client-side validation (``prepare.flow.Rejection``): never sent, status rejected."""
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
            pa.nulls(n, RESULTS_SCHEMA.field("sent_at").type),
        ],
        schema=RESULTS_SCHEMA,
    )


def capped(message: str | None) -> str | None:
    """A message as stored: the service's can be long (it may quote the request), the table keeps the start."""
    return None if message is None else shortened(message, MESSAGE_CHARS)


# The fields of an ItemResult and of its Item that become columns, read in C by attrgetter.
_RESULT_FIELDS = operator.attrgetter("status", "status_code", "message", "attempts", "request_id", "sent_at")
_ITEM_FIELDS = operator.attrgetter("record_type", "endpoint_id", "event_id", "source", "source_row")
_ITEM = operator.attrgetter("item")

_REPEATED: dict[tuple[Any, int, pa.DataType], pa.Array] = {}
# Repeated values (:func:`_repeated`, :func:`_repeated_text`) are kept for at most this many rows, a
# request's worth, where making them was most of the cost. A batch of rows decided alike read back
# from a journal, or a sync's rows not sent, has up to tens of thousands: keeping theirs, one per
# count, held tens of MB for the life of the process, for a saving too small to see there.
_CACHED_ROWS = 500
_TEXT = pa.string()
_INT32 = pa.int32()
_DECISION_FIELDS = list(DECISION_SCHEMA)[_ITEM_COLUMNS:]
_BODY = [ITEM_SCHEMA.names[_ITEM_COLUMNS]]
_ALIKE_FIELDS = [_RUN_ID, *_DECISION_FIELDS]
_TEXT_FIELD = pa.field("shared", _TEXT)
# The item columns a record of rows decided alike may hold once, in its decision, when every item
# shares its value: the record type and the source.
_SHARED = ("record_type", "source")
_RECORD_TYPE = ITEM_COLUMNS_SCHEMA.get_field_index("record_type")
_SOURCE = ITEM_COLUMNS_SCHEMA.get_field_index("source")
# The items' own columns, by (record type not shared, source not shared).
_OWN_COLUMNS = {
    (type_own, source_own): pa.schema(
        [
            field
            for field in ITEM_COLUMNS_SCHEMA
            if (field.name != "record_type" or type_own) and (field.name != "source" or source_own)
        ]
    )
    for type_own in (False, True)
    for source_own in (False, True)
}


def decided_alike(items: pa.RecordBatch, decision: Decision) -> pa.RecordBatch:
    """Items (:data:`ITEM_COLUMNS_SCHEMA`) all decided as ``decision``: a batch of :data:`DECISION_SCHEMA`.

    Appending columns works on the batch in Arrow's own structures; reading a slice's columns out
    as Python objects and building a batch from them took twice the CPU for 100 rows. The constant
    columns of the usual decisions are made once (see :func:`_repeated`).
    """
    n = items.num_rows
    columns = (
        _repeated(decision.status, n),
        _repeated(decision.status_code, n, _INT32),
        _repeated(decision.message, n),
        _repeated(decision.attempts, n, _INT32),
        _repeated_text(decision.request_id, n),
        _repeated_time(decision.sent_at, n),
    )
    batch = items
    for field, column in zip(_DECISION_FIELDS, columns, strict=True):
        batch = batch.append_column(field, column)
    return batch


_OFFSETS: dict[tuple[int, int], pa.Buffer] = {}


def _repeated_text(text: str | None, n: int) -> pa.Array:
    """``text`` (None: null) ``n`` times, as a string column: its bytes repeated behind offsets made once
    per (count, length) for a few rows. ``pa.repeat`` of a string scalar took about 9 µs for 100 rows, this 3."""
    if text is None:
        return _repeated(None, n)
    data = text.encode()
    if n * len(data) >= 1 << 31:  # beyond 32-bit offsets: Arrow's own way (a large string type is not the schema's)
        return pa.repeat(pa.scalar(text, _TEXT), n)
    key = (n, len(data))
    offsets = _OFFSETS.get(key)
    if offsets is None:
        offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int64) * len(data)).astype(np.int32))
        if n <= _CACHED_ROWS:
            if len(_OFFSETS) > 1024:
                _OFFSETS.clear()
            _OFFSETS[key] = offsets
    return pa.Array.from_buffers(_TEXT, n, [None, offsets, pa.py_buffer(data * n)])


_SENT_AT = DECISION_SCHEMA.field("sent_at").type
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_INT64 = struct.Struct("=q")  # native order, as Arrow buffers


def _repeated_time(when: datetime | None, n: int) -> pa.Array:
    """``when`` ``n`` times, as a ``sent_at`` column: its milliseconds' bytes, repeated.

    ``pa.repeat`` of a time-zoned timestamp scalar took about 100 µs for 100 rows, the largest
    piece of recording an accepted request; this is the same values (floored to the millisecond,
    as ``pa.scalar`` does; a naive time counts as UTC) for a few.
    """
    millis = sent_at_millis(when)
    if millis is None:
        return _repeated(None, n, _SENT_AT)
    return pa.Array.from_buffers(_SENT_AT, n, [None, pa.py_buffer(_INT64.pack(millis) * n)])


def _constant(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    """``value`` (as the journal keeps it: ``sent_at`` in milliseconds) ``n`` times, as a column of ``type_``."""
    if value is None:
        return pa.nulls(n, type_)
    if type_ == _TEXT:
        scope = _SCOPE.get()
        return _repeated_text(value, n) if scope is None or n <= _CACHED_ROWS else scope.text(value, n)
    if type_ == _SENT_AT:
        return pa.Array.from_buffers(_SENT_AT, n, [None, pa.py_buffer(_INT64.pack(value) * n)])
    return pa.repeat(pa.scalar(value, type_), n)


def _repeated(value: Any, n: int, type_: pa.DataType = _TEXT) -> pa.Array:
    """``value`` ``n`` times: the same few (accepted, 202, 1 attempt, 100 rows) come back for every
    request, so they are made once for a few rows (Arrow arrays are immutable, sharing them is safe)."""
    key = (value, n, type_)
    array = _REPEATED.get(key)
    if array is None:
        array = pa.repeat(pa.scalar(value, type_), n)
        if n <= _CACHED_ROWS:
            if len(_REPEATED) > 1024:
                _REPEATED.clear()
            _REPEATED[key] = array
    return array


def single_value(column: pa.Array) -> pa.Array | None:
    """``column``'s first value, as a one-value array, when every value is the same text; else None
    (also for a column with nulls, or not of text).

    Comparing the bytes with themselves shifted by one value is a ``memcmp``: a tenth of what
    hashing every value costs, and most columns of a sync's unchanged rows hold one value.
    """
    n = len(column)
    if n == 0 or column.type != _TEXT or column.null_count:
        return None
    _, offsets_buffer, data = column.buffers()
    scope = _SCOPE.get()
    if scope is not None and data is not None and (offsets_buffer.address, data.address) in scope.made:
        return column.slice(0, 1)  # one made by the scope of repeated columns (or a slice of it)
    offsets = np.frombuffer(offsets_buffer, np.int32, n + 1, 4 * column.offset)
    start = int(offsets[0])
    width = int(offsets[1]) - start
    if int(offsets[-1]) - start != n * width or (np.diff(offsets) != width).any():
        return None
    if width and n > 1:
        # Every value is ``width`` bytes: all are the same when the bytes read the same one value on.
        length = (n - 1) * width
        if data is None or not data.slice(start, length).equals(data.slice(start + width, length)):
            return None
    return column.slice(0, 1)


class _RepeatedColumns:
    """Text columns of one value made while :func:`repeated_columns` lasts, by (value, count), up to
    ``budget`` bytes; and the buffers of each, which tell them from any other column at no cost."""

    def __init__(self, budget: int) -> None:
        self._arrays: dict[tuple[str, int], pa.Array] = {}
        self._budget = budget
        self.made: set[tuple[int, int]] = set()

    def text(self, value: str, n: int) -> pa.Array:
        array = self._arrays.get((value, n))
        if array is None:
            array = _repeated_text(value, n)
            size = array.get_total_buffer_size()
            _, offsets, data = array.buffers()
            if size <= self._budget and data is not None:
                self._budget -= size
                self._arrays[value, n] = array
                self.made.add((offsets.address, data.address))
        return array


_SCOPE: ContextVar[_RepeatedColumns | None] = ContextVar("repeated_columns", default=None)


@contextmanager
def repeated_columns(budget: int = 16 << 20) -> Iterator[None]:
    """While this lasts (in this thread), the columns of one text value that rows decided alike read
    back are made once per value and count and shared, up to ``budget`` bytes, and known as such to
    :func:`single_value`: compaction reads every journal twice, and a sync's batches repeat the
    same run id, reason, record type and source in every one of their rows."""
    token = _SCOPE.set(_RepeatedColumns(budget))
    try:
        yield
    finally:
        _SCOPE.reset(token)

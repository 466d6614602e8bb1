"""Tables in, requests and rejections out: read -> validate -> reshape -> pack, with no sending.

The endpoints table is read whole (events join to it by id, and its ids are compared across all
its rows), and only its accepted rows' ids and JSON bodies are kept, as Arrow columns, until
their events go out; events stream batch by batch, so memory stays bounded by one batch plus
those columns.
Every input row comes out exactly once: inside exactly one request, or as a :class:`Rejection`.

Per batch, reading and the column work (Parquet/CSV decoding, validation, JSON assembly, event ids:
mostly Arrow code that releases the GIL) run one batch ahead in a worker thread, while the calling
thread packs the previous batch into requests. Batches are still validated one after another, in
input order, so what validation carries across batches stays deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.common.compressed import CompressedStrings
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare import coerce, packing, validation
from airflow_provider_pinpoint.prepare.bodies import endpoint_bodies, event_bodies
from airflow_provider_pinpoint.prepare.event_ids import event_ids_for
from airflow_provider_pinpoint.prepare.read import check_mapping, read_batches, read_table
from airflow_provider_pinpoint.prepare.requests import ENDPOINT, EVENT, Request, item_batch

if TYPE_CHECKING:  # the state is imported only by a run that uses one
    from airflow_provider_pinpoint.state.sync import Known, Sync, Unsent

# Rows of the first events batch validated on their own, so that the first requests go out early.
_FIRST_ROWS = 1_024

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Rejection:
    """One input row refused client-side; it becomes a results row with status "rejected"."""

    record_type: str
    endpoint_id: str | None
    event_id: str | None
    source: str
    source_row: int
    message: str


def prepare(
    events: Any = None,
    endpoints: Any = None,
    *,
    column_mapping: Mapping[str, Any] | None = None,
    csv_list_delimiter: str | None = None,
    max_events_per_request: int = quotas.MAX_EVENTS_PER_REQUEST,
    max_request_bytes: int = quotas.MAX_REQUEST_BYTES,
    skip: Mapping[str, Collection[int]] | None = None,
    batch_rows: int = 65_536,
    pack_rows: int = 16_384,
    sync: Sync | None = None,
) -> Iterator[Request | list[Rejection] | Unsent]:
    """Yield PutEvents requests and lists of rejections for the given tables (either may be absent).

    Events are read and validated ``batch_rows`` at a time and packed ``pack_rows`` at a time: a
    packed part's requests hold the text of its events and of the endpoint rows they take, two or
    three times over until they are sent, and early in a load over many endpoints nearly every
    event takes one, so smaller packed parts lower the peak memory. A part's last request, short,
    is carried into the next part (:class:`~airflow_provider_pinpoint.prepare.packing.EventPacker`),
    so the parts cost no extra requests.

    ``sync``: the sync state; rows it says need no sending come out as
    :class:`~airflow_provider_pinpoint.state.Unsent` instead of in a request.
    """
    if events is None and endpoints is None:
        raise InputError("nothing to load: give an events table, an endpoints table, or both")
    if not 1 <= max_events_per_request <= quotas.MAX_EVENTS_PER_REQUEST:
        raise ValueError(f"max_events_per_request must be between 1 and {quotas.MAX_EVENTS_PER_REQUEST}")
    if not 1 <= max_request_bytes <= quotas.MAX_REQUEST_BYTES:
        raise ValueError(f"max_request_bytes must be between 1 and {quotas.MAX_REQUEST_BYTES}")
    if batch_rows < 1 or pack_rows < 1:
        raise ValueError("batch_rows and pack_rows must be >= 1")
    check_mapping(column_mapping, events=events, endpoints=endpoints)
    limits = {"max_events": max_events_per_request, "max_bytes": max_request_bytes}
    read: dict[str, Any] = {"column_mapping": column_mapping, "csv_list_delimiter": csv_list_delimiter, "skip": skip}
    pending = packing.PendingEndpoints.empty()
    state = validation.EventState()
    if endpoints is not None:
        # Without an events table, nothing reads what validation keeps of the endpoints for events.
        for_events = state if events is not None else None
        rejections, pending, unchanged = _endpoints(endpoints, read, batch_rows, for_events, sync)
        if rejections:
            yield rejections
        yield from unchanged
    if events is not None:
        batches = _small_first(read_batches(events, kind="events", batch_rows=batch_rows, **read), _FIRST_ROWS)
        packer = packing.EventPacker(pending, **limits)
        for columns in _one_ahead(batches, lambda batch: _event_columns(batch, state, sync)):
            if columns.rejections:
                yield columns.rejections
            if columns.unsent is not None:
                yield columns.unsent
            items, sizes = columns.items(), columns.sizes
            del columns  # the requests hold their own copy of the rows: the batch's columns can go
            for start in range(0, items.num_rows, pack_rows):
                yield from _handed_on(packer.pack(items.slice(start, pack_rows), sizes[start : start + pack_rows]))
            del items, sizes
            # Arrow's allocator keeps what a batch freed for reuse; on a long load that is the
            # high-water mark of every batch so far, held for the whole load: hand it back.
            pa.default_memory_pool().release_unused()
        yield from _handed_on(packer.finish())
    yield from packing.pack_endpoints(pending.take_rest(), **limits)


def _endpoints(
    source: Any,
    read: Mapping[str, Any],
    batch_rows: int,
    state: validation.EventState | None,
    sync: Sync | None,
) -> tuple[list[Rejection], packing.PendingEndpoints, Iterator[Unsent]]:
    """The endpoints table's rejections and its accepted rows as columns; nothing else of the table is kept.

    The table is read whole (the files of a directory are unified into one schema first), then
    validated and reshaped ``batch_rows`` rows at a time, what validation compares across rows
    (ids, a user's endpoints) carried from slice to slice: validated at once, a large table took
    several times its size. The accepted rows' JSON bodies wait for their
    events for most of the load, so they are kept compressed. Arrow's allocator keeps the memory
    freed on the way, which it would keep for the whole load; it is handed back slice by slice.
    """
    table = read_table(source, kind="endpoints", batch_rows=batch_rows, **read)
    # The ids as validation makes them text (42.0 -> "42"), made once for validation and the state.
    ids = coerce.to_string(table.column("Id"))[0] if sync is not None and "Id" in table.column_names else None
    seen = validation.seen_for(table, ids)  # what the slices need to carry from one to the next
    rejections: list[Rejection] = []
    kept: list[tuple[pa.Array, ...]] = []  # each slice's accepted ids, sources and rows
    bodies = CompressedStrings()  # the accepted rows' JSON, compressed slice by slice
    # With a state: what it holds for each row, read once, so that a slice is compared as soon as it
    # is validated and only its changed rows' bodies are built (most rows of a daily sync are unchanged).
    known = None
    if sync is not None and ids is not None:
        known = sync.known(ids, distinct=seen.ids_distinct)
    del ids
    for start in range(0, table.num_rows, batch_rows):
        comparison = _Comparison(known, start) if known is not None else None
        checked = validation.endpoints(table.slice(start, batch_rows), seen, unchanged=comparison)
        hashes, same = None, np.zeros(len(checked), dtype=bool)
        if comparison is not None:
            hashes, same = comparison.hashes, comparison.same & ~checked.rejected
        del comparison
        # An unchanged row's values were accepted before, so its body was within the size limit then.
        changed = np.flatnonzero(~same) if same.any() else None  # None: every row
        text = _changed_bodies(checked, changed)
        validation.check_size(checked, text, quotas.MAX_ENDPOINT_BYTES, "endpoint", rows=changed)
        rejections += _rejections(checked, ENDPOINT, "Id", None)
        keep = ~checked.rejected
        columns = (checked.columns["Id"], checked.sources, checked.rows)
        if not keep.all():
            columns = tuple(column.filter(pa.array(keep)) for column in columns)
        kept.append(columns)
        sent = keep if changed is None else keep[changed]  # of the rows ``text`` holds, those that go
        bodies.extend(text if sent.all() else text.filter(pa.array(sent)))
        if sync is not None:
            if hashes is None:  # values of a kind not hashed: nothing was compared, every row goes
                from airflow_provider_pinpoint.state.keys import text_hashes

                hashes = text_hashes(text)
            if keep.all():  # as on most slices: no copy of the slice's hashes
                sync.add_compared(columns[0], hashes, same, np.arange(start, start + len(keep)))
            else:
                sync.add_compared(columns[0], hashes[keep], same[keep], start + np.flatnonzero(keep))
        del checked, text, columns, hashes
        pa.default_memory_pool().release_unused()  # what the slice freed, before the next one
    del table, seen, known
    if not kept:
        return rejections, packing.PendingEndpoints.empty(), iter(())
    ids, sources, rows = (pa.concat_arrays(list(parts)) for parts in zip(*kept, strict=True))
    del kept
    # Encoded once here, the sources are shared, not copied, by the pending rows and validation's messages.
    sources = _encoded(sources)
    if state is not None:  # what events are checked against (None: no events follow)
        validation.accepted_endpoints(ids, sources, rows, state)
    unchanged: Iterator[Unsent] = iter(())
    if sync is not None:  # after validation took them all in: events still find their endpoint valid
        same = sync.unchanged_endpoints()
        if same.any():
            unchanged = sync.unsent(
                sync.UNCHANGED,
                ENDPOINT,
                ids.filter(same),
                None,
                sources.filter(same),
                rows.filter(same),
                chunk=batch_rows,
            )
            keep = np.flatnonzero(~same)
            ids, sources, rows = (column.take(pa.array(keep)) for column in (ids, sources, rows))
            # (the bodies were built for the changed rows only)
    pending = packing.PendingEndpoints(ids, sources, rows, bodies)
    del ids, sources, rows, bodies
    pa.default_memory_pool().release_unused()
    return rejections, pending, unchanged


def _encoded(sources: pa.Array) -> pa.Array:
    """``pc.dictionary_encode`` of the rows' sources. Most tables are one file: when every row has
    the first row's source (one comparison each, a fraction of hashing every value), the
    dictionary is that one value and every index 0. Sources read as a dictionary already (a
    ``_source`` column of the input's own) are Arrow's to encode: it keeps them as they are."""
    if (
        len(sources)
        and not sources.null_count
        and not pa.types.is_dictionary(sources.type)
        and pc.all(pc.equal(sources, sources[0])).as_py()
    ):
        indices = pa.array(np.zeros(len(sources), dtype=np.int32))
        # a dictionary of its own: a slice of the sources would keep all their text
        return pa.DictionaryArray.from_arrays(indices, pa.array([sources[0].as_py()], sources.type))
    return pc.dictionary_encode(sources)


class _Comparison:
    """A slice's rows compared with the sync state as soon as validation has normalised them
    (``validation.endpoints``'s ``unchanged``): the rows found unchanged skip the rules that judge
    a row by its own values, which the service's acceptance of those values settled before."""

    def __init__(self, known: Known, start: int) -> None:
        self.known = known
        self.start = start
        self.hashes: np.ndarray | None = None
        self.same = np.zeros(0, dtype=bool)

    def __call__(self, checked: validation.Checked) -> np.ndarray:
        from airflow_provider_pinpoint.state.values import row_hashes  # only a run with a state needs it

        self.hashes = row_hashes(checked.columns, len(checked))
        self.same = self.known.same(self.start, checked.columns["Id"], self.hashes)
        return self.same


def _changed_bodies(checked: validation.Checked, changed: np.ndarray | None) -> pa.Array:
    """The JSON bodies of the slice's rows at positions ``changed`` (None: of every row), in order.

    Only the changed rows' bodies are built, and they stay that many rows long: the size check and
    the bodies kept find their rows by these positions, with no pass over the unchanged rows.
    """
    if changed is None:
        return endpoint_bodies(checked.columns, len(checked))
    picked = pa.array(changed)
    return endpoint_bodies({name: column.take(picked) for name, column in checked.columns.items()}, len(changed))


@dataclass(frozen=True, slots=True)
class _EventColumns:
    """One batch of events after validation and reshaping: its rejections and the columns of its good rows."""

    rejections: list[Rejection]
    endpoint_ids: pa.Array
    event_ids: pa.Array
    sources: pa.Array
    rows: pa.Array
    bodies: pa.Array
    sizes: np.ndarray
    unsent: Unsent | None = None  # rows the sync state takes out

    def items(self) -> pa.RecordBatch:
        """The good rows as event items (:data:`batch.ITEM_SCHEMA`)."""
        return item_batch(EVENT, self.endpoint_ids, self.event_ids, self.sources, self.rows, self.bodies)


def _event_columns(batch: pa.RecordBatch, state: validation.EventState, sync: Sync | None) -> _EventColumns:
    checked = validation.events(batch, state)
    bodies = event_bodies(checked.columns, len(checked))
    validation.check_size(checked, bodies, quotas.MAX_EVENT_BYTES, "event")
    rejections = _rejections(checked, EVENT, "EndpointId", "EventId")
    keep = pa.array(~checked.rejected)
    endpoint_ids = checked.columns["EndpointId"].filter(keep)
    bodies = bodies.filter(keep)
    sources = checked.sources.filter(keep)
    rows = checked.rows.filter(keep)
    given = checked.columns.get("EventId")
    event_ids = event_ids_for(given.filter(keep) if given is not None else None, endpoint_ids, bodies, sources, rows)
    unsent = None
    if sync is not None:
        sent = sync.already_sent(endpoint_ids, event_ids)
        if sent.any():
            taken = (c.filter(sent) for c in (endpoint_ids, event_ids, sources, rows))
            unsent = next(sync.unsent(sync.ALREADY_SENT, EVENT, *taken, chunk=len(sent)))
            keep = pa.array(~sent)
            endpoint_ids, event_ids, sources, rows, bodies = (
                c.filter(keep) for c in (endpoint_ids, event_ids, sources, rows, bodies)
            )
    sizes = packing.event_wire_sizes(event_ids, bodies)
    return _EventColumns(rejections, endpoint_ids, event_ids, sources, rows, bodies, sizes, unsent)


def _small_first(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The batches, the first one cut after ``rows`` rows: its first requests are ready to send while
    the rest of a large first batch is still being validated (the sender starts sooner). Batches are
    validated in order whatever their sizes, so the cut changes no outcome."""
    iterator = iter(batches)
    for first in iterator:
        yield first.slice(0, rows)
        if first.num_rows > rows:
            yield first.slice(rows)
        break
    yield from iterator


def _handed_on(requests: list[Request]) -> Iterator[Request]:
    """The requests in order, each let go of here once the caller has taken it (its body can then be
    freed as soon as it is sent, not when the whole batch is)."""
    requests.reverse()
    while requests:
        yield requests.pop()


def _one_ahead(items: Iterator[T], work: Callable[[T], R]) -> Iterator[R]:
    """``work`` applied to each item in order, one item ahead of the caller, in one worker thread.

    The worker also pulls the items (reading the next batch is mostly GIL-free decoding too); one
    worker keeps them in order.
    """

    def next_result() -> tuple[R] | None:
        for item in items:
            return (work(item),)
        return None

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pinpoint-prepare") as pool:
        future = pool.submit(next_result)
        try:
            while True:
                done = future.result()
                if done is None:
                    return
                future = pool.submit(next_result)
                held = list(done)
                del done  # so that the caller's ``del`` of the result frees it
                yield held.pop()
        finally:
            future.cancel()


def _rejections(checked: validation.Checked, record_type: str, id_column: str, event_id_column: str | None) -> list:
    ids = checked.columns.get(id_column)
    event_ids = checked.columns.get(event_id_column) if event_id_column else None
    return [
        Rejection(
            record_type,
            ids[i].as_py() if ids is not None else None,
            event_ids[i].as_py() if event_ids is not None else None,
            checked.sources[i].as_py(),
            checked.rows[i].as_py(),
            checked.reasons[i],
        )
        for i in sorted(checked.reasons)
    ]

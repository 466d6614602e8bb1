"""Items -> PutEvents requests: events grouped by endpoint, within the count and byte quotas.

Byte accounting is exact (the same arithmetic as :func:`~airflow_provider_pinpoint.prepare.requests.request_size`), from per-item sizes
worked out column-wise. Items are laid out once in their final order (each endpoint's own item, if
it has one, then its events), so a request is a slice of that list and packing only decides where
to cut. The loop runs once per endpoint, not once per event, except for an endpoint whose events do
not fit in one request: those are spread over several requests, its ``Endpoint`` data riding with
the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.common.compressed import CompressedStrings
from airflow_provider_pinpoint.prepare.requests import (
    ENDPOINT,
    EVENT,
    EVENT_OVERHEAD,
    ITEM_SCHEMA,
    NEEDS_JSON_ESCAPE,
    Request,
    endpoint_entry_size,
    item_batch,
    json_escape_extra,
    request_size,
    requests_of,
)

_EMPTY_REQUEST = request_size([])
# A request being filled starts here: every entry adds a separating comma that the last one gives back.
_START = _EMPTY_REQUEST - 1


class PendingEndpoints:
    """Endpoint rows not sent yet, held as Arrow columns until a request takes them.

    Packing takes each endpoint's row out for the request that carries its first events (or at the
    end, if it has none); the sender's retry pool packs its endpoint items through one too. Held as
    one ``Item`` each (a Python object with its id, source and JSON body as ``str``, in a dict by id)
    they cost about 1.4 KB apiece: with 500,000 endpoints, most of the loader's peak memory. As
    columns they cost their bytes, and the JSON bodies, most of those bytes, are held compressed
    (:class:`~airflow_provider_pinpoint.common.compressed.CompressedStrings`). Lookups go the other way
    round, the waiting ids probed against a batch's few distinct ids (Arrow hashes the smaller
    side), and the waiting ids shrink as their endpoints are taken, so the probes get cheaper as
    the load goes on.
    """

    def __init__(self, ids: pa.Array, sources: pa.Array, rows: pa.Array, bodies: pa.Array | CompressedStrings) -> None:
        """Columns of the accepted endpoint rows, one row per endpoint id (ids are distinct)."""
        self._ids = ids
        self._sources = pc.dictionary_encode(sources)
        self._rows = rows
        self._bodies = bodies if isinstance(bodies, CompressedStrings) else CompressedStrings([bodies])
        self._waiting_ids = ids
        self._waiting_at = np.arange(len(ids), dtype=np.int64)

    @classmethod
    def empty(cls) -> PendingEndpoints:
        """No endpoint rows (a load without an endpoints table)."""
        text = pa.array([], pa.string())
        return cls(text, text, pa.array([], pa.int64()), text)

    def __len__(self) -> int:
        return len(self._waiting_at)

    def take(self, endpoint_ids: pa.Array) -> tuple[np.ndarray, pa.RecordBatch]:
        """Which of these (distinct) ids have a waiting row, and those rows in the order of the ids;
        the rows taken stop waiting."""
        has = np.zeros(len(endpoint_ids), dtype=bool)
        if not len(self._waiting_at) or not len(endpoint_ids):
            return has, self._columns(self._waiting_at[:0])
        wanted = pc.index_in(self._waiting_ids, value_set=endpoint_ids.cast(self._ids.type))
        hit = np.asarray(wanted.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if not hit.any():
            return has, self._columns(self._waiting_at[:0])
        slots = wanted.filter(pa.array(hit)).to_numpy(zero_copy_only=False)
        has[slots] = True
        heads = self._columns(self._waiting_at[hit][np.argsort(slots, kind="stable")])
        self._waiting_ids = self._waiting_ids.filter(pa.array(~hit))
        self._waiting_at = self._waiting_at[~hit]
        if len(self._waiting_at) < len(self._ids) // 2:
            self._compact()
        return has, heads

    def _compact(self) -> None:
        """Keep only the waiting rows' columns, so the bodies of endpoints already sent are freed."""
        index = pa.array(self._waiting_at)
        self._ids, self._sources, self._rows = (column.take(index) for column in (self._ids, self._sources, self._rows))
        self._bodies = self._bodies.subset(self._waiting_at)
        self._waiting_ids = self._ids
        self._waiting_at = np.arange(len(self._ids), dtype=np.int64)

    def take_rest(self, chunk: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The rows still waiting, in table order, ``chunk`` at a time (all stop waiting)."""
        waiting, self._waiting_at = self._waiting_at, self._waiting_at[:0]
        self._waiting_ids = self._waiting_ids.slice(0, 0)
        for start in range(0, len(waiting), chunk):
            yield self._columns(waiting[start : start + chunk])

    def _columns(self, at: np.ndarray) -> pa.RecordBatch:
        index = pa.array(at, pa.int64())
        return item_batch(
            ENDPOINT,
            self._ids.take(index),
            pa.nulls(len(at), pa.string()),
            self._sources.take(index).dictionary_decode(),
            self._rows.take(index),
            self._bodies.take(at),
        )


def event_wire_sizes(event_ids: pa.Array, bodies: pa.Array) -> np.ndarray:
    """Bytes each event adds to a request (``"<id>":<body>,``), as :meth:`Item.wire_size` counts them."""
    sizes = pc.add(pc.binary_length(event_ids), pc.binary_length(bodies)).to_numpy(zero_copy_only=False)
    sizes = sizes.astype(np.int64) + EVENT_OVERHEAD
    escaped = np.flatnonzero(pc.match_substring_regex(event_ids, NEEDS_JSON_ESCAPE).to_numpy(zero_copy_only=False))
    for i in escaped.tolist():
        sizes[i] += json_escape_extra(event_ids[i].as_py())
    return sizes


def _entry_sizes(endpoint_ids: pa.Array) -> np.ndarray:
    """:func:`~airflow_provider_pinpoint.prepare.requests.endpoint_entry_size` of each id, column-wise (ids needing JSON escapes one by one)."""
    sizes = pc.binary_length(endpoint_ids).to_numpy(zero_copy_only=False).astype(np.int64) + endpoint_entry_size("")
    escaped = np.flatnonzero(pc.match_substring_regex(endpoint_ids, NEEDS_JSON_ESCAPE).to_numpy(zero_copy_only=False))
    for i in escaped.tolist():
        sizes[i] = endpoint_entry_size(endpoint_ids[i].as_py())
    return sizes


def endpoint_wire_sizes(bodies: pa.Array) -> np.ndarray:
    """Bytes each endpoint's own item adds to its entry (its JSON in place of ``{}``)."""
    return pc.binary_length(bodies).to_numpy(zero_copy_only=False).astype(np.int64) - 2


class EventPacker:
    """Packs event items into requests part after part, every request full but the load's last.

    A part's requests are cut greedily over its events, laid out grouped by endpoint: each request
    takes events until the next one would break the event or byte limit, and may cut an endpoint's
    events between two requests (the endpoint's entry then appears in both, its ``Endpoint`` data in
    the first). A part's last request is not sent short: its rows are carried to the front of the
    next part, so when only the event count binds a load makes exactly ceil(events / max_events)
    requests. Within an endpoint, events keep their input order from request to request; requests
    go out concurrently, so nothing is promised about the order the service sees them in (nor is
    anything documented about an order it keeps).
    """

    def __init__(self, endpoints: PendingEndpoints, *, max_events: int, max_bytes: int) -> None:
        self._endpoints = endpoints
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._carry: pa.RecordBatch | None = None  # the last request's rows, laid out (heads and events)
        self._carry_sizes = np.zeros(0, dtype=np.int64)

    def pack(self, events: pa.RecordBatch, sizes: np.ndarray) -> list[Request]:
        """The full requests these events (and those carried) make; the last request is carried on."""
        return self._pack(events, sizes, final=False)

    def finish(self) -> list[Request]:
        """The request carried from the last part, if any (the end of the input)."""
        return self._pack(pa.RecordBatch.from_pylist([], schema=ITEM_SCHEMA), np.zeros(0, dtype=np.int64), final=True)

    def _pack(self, events: pa.RecordBatch, sizes: np.ndarray, *, final: bool) -> list[Request]:
        carried_heads = None
        if self._carry is not None:
            is_event = pc.equal(self._carry.column("record_type"), EVENT)
            carried_heads = self._carry.filter(pc.invert(is_event))
            events = pa.concat_batches([self._carry.filter(is_event), events])
            sizes = np.concatenate([self._carry_sizes, sizes])
            self._carry = None
        if not events.num_rows:
            return []
        layout, cuts, ordered_sizes, first_event = _laid_out(
            events, sizes, self._endpoints, carried_heads, self._max_events, self._max_bytes
        )
        if not final and events.num_rows - first_event[-1] < self._max_events:
            # A copy: a slice would hold the whole part's layout until the next part comes.
            self._carry = layout.take(pa.array(np.arange(cuts[-1], layout.num_rows)))
            self._carry_sizes = ordered_sizes[first_event[-1] :]
            layout = layout.slice(0, cuts[-1])
            cuts = cuts[:-1]
        return requests_of(layout, cuts)


def pack_events(
    events: pa.RecordBatch,
    sizes: np.ndarray,
    endpoints: PendingEndpoints,
    *,
    max_events: int,
    max_bytes: int,
) -> list[Request]:
    """Requests for a batch of event items (:data:`ITEM_SCHEMA`), grouped by endpoint in order of first appearance.

    ``sizes`` are the items' :func:`event_wire_sizes`. ``endpoints`` holds the endpoint rows not
    sent yet: an endpoint's item is taken out and goes first in the request that carries its first
    events. Every request but the last is full (see :class:`EventPacker`).
    """
    return EventPacker(endpoints, max_events=max_events, max_bytes=max_bytes)._pack(events, sizes, final=True)


def _laid_out(
    events: pa.RecordBatch,
    sizes: np.ndarray,
    endpoints: PendingEndpoints,
    carried_heads: pa.RecordBatch | None,
    max_events: int,
    max_bytes: int,
) -> tuple[pa.RecordBatch, list[int], np.ndarray, list[int]]:
    """The items in their final order (each endpoint's own item, if it has one, then its events, by
    endpoint in order of first appearance), where each request starts in that layout, the events'
    sizes in that order, and the index of each request's first event among them."""
    encoded = pc.dictionary_encode(events.column("endpoint_id"))
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    group_ids = encoded.dictionary
    counts = np.bincount(codes, minlength=len(group_ids))
    order = np.argsort(codes, kind="stable")
    has_head, heads = endpoints.take(group_ids)
    if carried_heads is not None and carried_heads.num_rows:
        # Heads already taken for the carried events: merged in, in the order of their groups.
        taken_at = np.flatnonzero(has_head)
        carried_at = pc.index_in(carried_heads.column("endpoint_id"), value_set=group_ids).to_numpy(
            zero_copy_only=False
        )
        has_head[carried_at] = True
        heads = pa.concat_batches([heads, carried_heads]).take(
            pa.array(np.argsort(np.concatenate([taken_at, carried_at]), kind="stable"))
        )
    head_sizes = np.zeros(len(group_ids), dtype=np.int64)
    head_sizes[has_head] = endpoint_wire_sizes(heads.column("body"))
    entry_sizes = _entry_sizes(group_ids)
    ordered_sizes = sizes[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))

    # The final layout: each group's head (if any), then its events in input order.
    n = events.num_rows
    heads_through = np.cumsum(has_head)
    event_slots = np.arange(n) + np.repeat(heads_through, counts)
    head_slots = (starts + heads_through - 1)[has_head]
    picks = np.empty(n + heads.num_rows, dtype=np.int64)
    picks[event_slots] = order
    picks[head_slots] = np.arange(n, n + heads.num_rows)
    # Early in a load with many endpoints nearly every event's endpoint is still waiting, so the
    # endpoint rows are as big as the events' own text: they go as soon as they are joined to them.
    both = pa.concat_batches([events, heads])
    del heads
    layout = both.take(pa.array(picks))
    del both

    firsts = _cuts(ordered_sizes, starts, entry_sizes, head_sizes, max_events, max_bytes)
    # A request that starts at an endpoint's first event starts at that endpoint's own item.
    group_of = np.searchsorted(starts, firsts, side="right") - 1
    at_start = firsts == starts[group_of]
    slots = firsts + heads_through[group_of] - (has_head[group_of] & at_start)
    return layout, slots.tolist(), ordered_sizes, firsts.tolist()


def _cuts(
    sizes: np.ndarray,
    starts: np.ndarray,
    entry_sizes: np.ndarray,
    head_sizes: np.ndarray,
    max_events: int,
    max_bytes: int,
) -> np.ndarray:
    """Where each request starts among the events (laid out by group, ``sizes`` in that order):
    greedily, each request takes events until the next would break the event or byte limit.

    An event that opens its group's entry in a request costs the entry too (less the comma its
    last event gives back), and the group's own item if it is the group's first event. Greedy
    cutting is the fewest requests for this order, since any run of events within a feasible
    request is feasible too. When no request is bound by bytes the cuts are every ``max_events``
    events, found without a loop.
    """
    n = len(sizes)
    opening = entry_sizes - 1  # an entry's bytes in a request, its last event's comma given back
    cost = sizes.astype(np.int64)
    cost[starts] += opening + head_sizes
    before = np.concatenate(([0], np.cumsum(cost)))
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    # A request that starts within a group opens that group's entry again (without its own item).
    reopen = opening[group_of]
    reopen[starts] = 0
    budget = max_bytes - _START
    firsts = np.arange(0, n, max_events)
    ends = np.minimum(firsts + max_events, n)
    if np.all(before[ends] - before[firsts] + reopen[firsts] <= budget):
        return firsts
    out: list[int] = []
    first = 0
    while first < n:
        out.append(first)
        fits = int(np.searchsorted(before, before[first] - reopen[first] + budget, side="right")) - 1
        first = max(first + 1, min(first + max_events, fits, n))
    return np.asarray(out, dtype=np.int64)


def pack_endpoints(chunks: Iterable[pa.RecordBatch], *, max_events: int, max_bytes: int) -> Iterator[Request]:
    """Requests for endpoint items (:data:`ITEM_SCHEMA`) that have no events (``Events: {}``), at most
    ``max_events`` entries each; a request does not span two chunks."""
    for chunk in chunks:
        entries = (_entry_sizes(chunk.column("endpoint_id")) + endpoint_wire_sizes(chunk.column("body"))).tolist()
        cuts: list[int] = []
        count, size = 0, _START
        for slot, entry in enumerate(entries):
            if not count or count + 1 > max_events or size + entry > max_bytes:
                cuts.append(slot)
                count, size = 0, _START
            count += 1
            size += entry
        yield from requests_of(chunk, cuts)

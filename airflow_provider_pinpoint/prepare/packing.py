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
    EVENT_OVERHEAD,
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
    events.
    """
    if not events.num_rows:
        return []
    encoded = pc.dictionary_encode(events.column("endpoint_id"))
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    group_ids = encoded.dictionary
    counts = np.bincount(codes, minlength=len(group_ids))
    order = np.argsort(codes, kind="stable")
    has_head, heads = endpoints.take(group_ids)
    head_sizes = np.zeros(len(group_ids), dtype=np.int64)
    head_sizes[has_head] = endpoint_wire_sizes(heads.column("body"))
    entry_sizes = _entry_sizes(group_ids)
    ordered_sizes = sizes[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    wholes = entry_sizes + head_sizes + np.add.reduceat(ordered_sizes, starts) - 1

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
    group_slots = starts + heads_through - has_head

    # Greedy packing, one step per request: the furthest group that keeps the request within the
    # event, entry and byte limits is found by binary search over running totals. Groups too big
    # for one request are spread over several on their own.
    events_before = np.concatenate(([0], np.cumsum(counts)))
    bytes_before = np.concatenate(([0], np.cumsum(wholes)))
    big = np.flatnonzero((counts > max_events) | (_START + wholes > max_bytes)).tolist()
    cuts: list[int] = []
    group, groups, next_big = 0, len(counts), 0
    while group < groups:
        cuts.append(int(group_slots[group]))
        while next_big < len(big) and big[next_big] < group:
            next_big += 1
        if next_big < len(big) and big[next_big] == group:
            _spread(
                cuts,
                int(group_slots[group] + has_head[group]),
                ordered_sizes[starts[group] : starts[group] + counts[group]].tolist(),
                _START + int(entry_sizes[group] + head_sizes[group]) - 1,
                _START + int(entry_sizes[group]) - 1,
                max_events,
                max_bytes,
            )
            group += 1
            continue
        stop = min(
            int(np.searchsorted(events_before, events_before[group] + max_events, side="right")) - 1,
            int(np.searchsorted(bytes_before, bytes_before[group] + max_bytes - _START, side="right")) - 1,
            group + max_events,
            big[next_big] if next_big < len(big) else groups,
        )
        group = max(stop, group + 1)
    return requests_of(layout, cuts)


def _spread(
    cuts: list[int], first_slot: int, sizes: list[int], size: int, fresh: int, max_events: int, max_bytes: int
) -> None:
    """Cut one endpoint's events into requests of their own (the first one carries its Endpoint data)."""
    events = 0
    for offset, event_size in enumerate(sizes):
        if events and (events + 1 > max_events or size + event_size > max_bytes):
            cuts.append(first_slot + offset)
            events, size = 0, fresh
        events += 1
        size += event_size


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

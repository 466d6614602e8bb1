"""Items -> PutEvents requests: events grouped by endpoint, within the count and byte quotas.

Byte accounting is exact (the same arithmetic as :func:`batch.request_size`), from per-item sizes
worked out column-wise. Items are laid out once in their final order (each endpoint's own item, if
it has one, then its events), so a request is a slice of that list and packing only decides where
to cut. The loop runs once per endpoint, not once per event, except for an endpoint whose events do
not fit in one request: those are spread over several requests, its ``Endpoint`` data riding with
the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping, Sequence
from itertools import pairwise, repeat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.batch import Item, Request, endpoint_entry_size, request_size

_EMPTY_REQUEST = request_size([])
# A request being filled starts here: every entry adds a separating comma that the last one gives back.
_START = _EMPTY_REQUEST - 1
_EVENT_OVERHEAD = len('"":,')
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def event_wire_sizes(event_ids: pa.Array, bodies: pa.Array) -> np.ndarray:
    """Bytes each event adds to a request (``"<id>":<body>,``), as :meth:`Item.wire_size` counts them."""
    sizes = pc.add(pc.binary_length(event_ids), pc.binary_length(bodies)).to_numpy(zero_copy_only=False)
    sizes = sizes.astype(np.int64) + _EVENT_OVERHEAD
    escaped = np.flatnonzero(pc.match_substring_regex(event_ids, _NEEDS_ESCAPE).to_numpy(zero_copy_only=False))
    for i in escaped.tolist():
        key = json.dumps(event_ids[i].as_py(), ensure_ascii=False)[1:-1]
        sizes[i] = _EVENT_OVERHEAD + len(bodies[i].as_py().encode()) + len(key.encode())
    return sizes


def pack_events(
    items: Sequence[Item],
    sizes: np.ndarray,
    endpoints: MutableMapping[str, Item],
    *,
    max_events: int,
    max_bytes: int,
) -> Iterator[Request]:
    """Requests for a batch of event items, grouped by endpoint in order of first appearance.

    ``endpoints`` maps endpoint ids to endpoint items not sent yet: an endpoint's item is taken out
    and goes first in the request that carries its first events.
    """
    if not items:
        return
    codes, group_ids = pd.factorize(np.array([item.endpoint_id for item in items], dtype=object), sort=False)
    counts = np.bincount(codes)
    order = np.argsort(codes, kind="stable")
    heads = list(map(endpoints.pop, group_ids, repeat(None)))
    has_head = np.fromiter((head is not None for head in heads), dtype=bool, count=len(heads))
    head_sizes = np.zeros(len(heads), dtype=np.int64)
    head_sizes[has_head] = [head.wire_size() for head in heads if head is not None]
    entry_sizes = np.fromiter(map(endpoint_entry_size, group_ids), dtype=np.int64, count=len(group_ids))
    ordered_sizes = sizes[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    wholes = entry_sizes + head_sizes + np.add.reduceat(ordered_sizes, starts) - 1

    # The final layout: each group's head (if any), then its events in input order.
    heads_through = np.cumsum(has_head)
    event_slots = np.arange(len(items)) + np.repeat(heads_through, counts)
    head_slots = (starts + heads_through - 1)[has_head]
    present_heads = [head for head in heads if head is not None]
    pool = [*items, *present_heads]
    picks = np.empty(len(pool), dtype=np.int64)
    picks[event_slots] = order
    picks[head_slots] = np.arange(len(items), len(pool))
    layout = list(map(pool.__getitem__, picks.tolist()))
    group_slots = (starts + heads_through - has_head).tolist()

    cuts = [0]
    events = entries = 0
    size = _START
    for group, (count, whole) in enumerate(zip(counts.tolist(), wholes.tolist(), strict=True)):
        if events and (events + count > max_events or entries + 1 > max_events or size + whole > max_bytes):
            cuts.append(group_slots[group])
            events = entries = 0
            size = _START
        if count <= max_events and _START + whole <= max_bytes:
            events += count
            entries += 1
            size += whole
            continue
        events, size = _spread(
            cuts,
            group_slots[group] + int(has_head[group]),
            ordered_sizes[starts[group] : starts[group] + count].tolist(),
            _START + int(entry_sizes[group]) + int(head_sizes[group]) - 1,
            _START + int(entry_sizes[group]) - 1,
            max_events,
            max_bytes,
        )
        entries = 1
    for start, stop in pairwise([*cuts, len(layout)]):
        yield Request(layout[start:stop])


def _spread(
    cuts: list[int], first_slot: int, sizes: list[int], size: int, fresh: int, max_events: int, max_bytes: int
) -> tuple[int, int]:
    """Cut one endpoint's events into requests; returns the event count and size of the last one."""
    events = 0
    for offset, event_size in enumerate(sizes):
        if events and (events + 1 > max_events or size + event_size > max_bytes):
            cuts.append(first_slot + offset)
            events, size = 0, fresh
        events += 1
        size += event_size
    return events, size


def pack_endpoints(items: Sequence[Item], *, max_events: int, max_bytes: int) -> Iterator[Request]:
    """Requests for endpoint items that have no events (``Events: {}``), at most ``max_events`` entries each."""
    current: list[Item] = []
    size = _START
    for item in items:
        entry = endpoint_entry_size(item.endpoint_id) + item.wire_size()
        if current and (len(current) + 1 > max_events or size + entry > max_bytes):
            yield Request(current)
            current, size = [], _START
        current.append(item)
        size += entry
    if current:
        yield Request(current)

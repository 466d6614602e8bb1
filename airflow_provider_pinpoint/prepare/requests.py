"""The unit of sending: one PutEvents request, built from pre-serialised item fragments.

Each input row becomes one item whose JSON is serialised exactly once, when it is reshaped. A
:class:`Request` is an ordered run of items; its body is assembled by joining the fragments, so
packing can account for the exact wire size, and the sender can split a request (HTTP 413) or
resend only the items the service asked for again (per-item 429/500) without touching the
original rows or serialising anything twice.

On the normal path items stay Arrow columns from reshaping to the results table: packing lays
them out, :func:`requests_of` builds all bodies of a batch at once, and an answer that accepts a
whole request is recorded from the same columns. An :class:`Item` object per row is made only
for what the sender handles one by one (splits, resends, a stop).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.prepare.bodies import constant, needs_escape

ENDPOINT = "endpoint"
EVENT = "event"

# '{"BatchItem":{' + '}}'
_BODY_OVERHEAD = len('{"BatchItem":{}}')
# '"<id>":{"Endpoint":<frag>,"Events":{<events>}}' without the id and fragments, plus a comma
_ENDPOINT_OVERHEAD = len('"":{"Endpoint":,"Events":{}},')
# '"<event id>":<frag>,'
EVENT_OVERHEAD = len('"":,')
# The characters json.dumps(ensure_ascii=False) escapes: the one rule for sizing ids, here and in pack.
NEEDS_JSON_ESCAPE = r'[\x00-\x1f"\\]'
_NEEDS_JSON_ESCAPE = re.compile(NEEDS_JSON_ESCAPE)


@dataclass(slots=True)
class Item:
    """One input row on its way to the service, and what the results table needs to say about it.

    ``body`` is the JSON of the row's ``Endpoint`` map (for an endpoint row) or of its ``Event`` map
    (for an event row). The other fields carry no personal data: they go into the results table.
    """

    record_type: str  # ENDPOINT or EVENT
    endpoint_id: str
    event_id: str | None  # None for endpoint rows
    source: str
    source_row: int  # 1-based data row within ``source``
    body: str

    def wire_size(self) -> int:
        """Bytes this item adds to a request body, beyond its endpoint's own entry."""
        if self.record_type == ENDPOINT:
            return len(self.body.encode()) - 2  # replaces the '{}' placeholder
        event_id = self.event_id or ""
        return len(event_id.encode()) + len(self.body.encode()) + EVENT_OVERHEAD + json_escape_extra(event_id)


def json_escape_extra(key: str) -> int:
    """Extra bytes JSON escaping adds to a key (zero for ordinary ids)."""
    if _NEEDS_JSON_ESCAPE.search(key) is None:
        return 0
    return len(json.dumps(key, ensure_ascii=False).encode()) - 2 - len(key.encode())


def _quoted(key: str) -> str:
    """``key`` as a JSON string, exactly as ``json.dumps(key, ensure_ascii=False)`` writes it.

    Ordinary ids need no escaping, and a regex search finds that for a fraction of what
    ``json.dumps`` costs per call (it ran once per item of every request).
    """
    if _NEEDS_JSON_ESCAPE.search(key) is None:
        return f'"{key}"'
    return json.dumps(key, ensure_ascii=False)


def endpoint_entry_size(endpoint_id: str) -> int:
    """Bytes a request spends on an endpoint's entry with ``Endpoint: {}`` and no events."""
    return len(endpoint_id.encode()) + _ENDPOINT_OVERHEAD + 2 + json_escape_extra(endpoint_id)


class Request:
    """One PutEvents request: items grouped by endpoint in the order given.

    A request from packing holds its items as Arrow columns (``columns``, in :data:`ITEM_SCHEMA`)
    and its body, built for all requests of a batch at once (:func:`requests_of`); its ``items``
    are made only if the sender needs them one by one (a split, a resend, a stop). A request made
    from a list of items (the sender's resends and splits, tests) builds its body from them.
    """

    __slots__ = ("_items", "_columns", "_body", "_events")

    def __init__(
        self,
        items: list[Item] | None = None,
        *,
        columns: pa.RecordBatch | None = None,
        body: bytes | None = None,
        events: int | None = None,
    ) -> None:
        if (items is None) == (columns is None):
            raise TypeError("a Request is made from items or from columns")
        self._items = items
        self._columns = columns
        self._body = body
        self._events = events

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else self.columns.num_rows

    def __repr__(self) -> str:
        return f"Request({len(self)} items, {self.event_count} events)"

    @property
    def items(self) -> list[Item]:
        """The items, one object each (made from the columns on first use, then kept: the sender
        tells them apart by identity)."""
        if self._items is None:
            self._items = items_of(self._columns)
        return self._items

    @property
    def columns(self) -> pa.RecordBatch:
        """The items as columns (:data:`ITEM_SCHEMA`)."""
        if self._columns is None:
            self._columns = item_columns(self.items)
        return self._columns

    @property
    def event_count(self) -> int:
        if self._events is None:
            self._events = sum(1 for item in self.items if item.record_type == EVENT)
        return self._events

    def keys(self) -> tuple[list[str], list[str | None]]:
        """Each item's endpoint id and event id (None for an endpoint's own item), as lists."""
        if self._items is not None:
            return [item.endpoint_id for item in self._items], [item.event_id for item in self._items]
        return self.columns.column(1).to_pylist(), self.columns.column(2).to_pylist()

    def body(self) -> bytes:
        """The EventsRequest JSON, as sent on the wire."""
        if self._body is None:
            self._body = _body_of(self.items)
        return self._body

    def batch_item(self) -> dict:
        """The request as the ``BatchItem`` parameter of boto3's ``put_events`` (for validation, dry runs)."""
        return json.loads(self.body())["BatchItem"]

    def split(self) -> tuple[Request, Request]:
        """Two halves by item count, for a 413 answer.

        Packing lays out each endpoint's own row before its events, so that row lands in the first
        half or in the same half as its first events; the halves are sent as they are, and events
        cut off from their endpoint's row go with ``Endpoint: {}`` (the row went in the first half).
        """
        items = self.items
        half = len(items) // 2
        return Request(items[:half]), Request(items[half:])


def _body_of(items: Sequence[Item]) -> bytes:
    """A request's body from its items, one by one (the reference :func:`requests_of` agrees with)."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.endpoint_id, []).append(item)
    parts = []
    for endpoint_id, group in groups.items():
        endpoint = "{}"
        events = []
        for item in group:
            if item.record_type == ENDPOINT:
                endpoint = item.body
            else:
                events.append(f"{_quoted(item.event_id or '')}:{item.body}")
        parts.append(f'{_quoted(endpoint_id)}:{{"Endpoint":{endpoint},"Events":{{{",".join(events)}}}}}')
    return ('{"BatchItem":{' + ",".join(parts) + "}}").encode()


ITEM_SCHEMA = pa.schema(
    [
        ("record_type", pa.string()),
        ("endpoint_id", pa.string()),
        ("event_id", pa.string()),
        ("source", pa.string()),
        ("source_row", pa.int64()),
        ("body", pa.string()),
    ]
)
_ITEM_FIELDS = operator.attrgetter(*ITEM_SCHEMA.names)


def item_columns(items: Sequence[Item]) -> pa.RecordBatch:
    """Items as columns (:data:`ITEM_SCHEMA`)."""
    if not items:
        return pa.RecordBatch.from_pylist([], schema=ITEM_SCHEMA)
    fields = zip(*map(_ITEM_FIELDS, items), strict=True)
    return pa.RecordBatch.from_arrays(
        [pa.array(values, field.type) for values, field in zip(fields, ITEM_SCHEMA, strict=True)], schema=ITEM_SCHEMA
    )


def item_batch(
    record_type: str, endpoint_ids: pa.Array, event_ids: pa.Array, sources: pa.Array, rows: pa.Array, bodies: pa.Array
) -> pa.RecordBatch:
    """Rows of one record type as items (:data:`ITEM_SCHEMA`), from columns of any compatible type."""
    return pa.RecordBatch.from_arrays(
        [
            pa.repeat(pa.scalar(record_type, pa.string()), len(rows)),
            *(
                column.cast(field.type)
                for column, field in zip(
                    (endpoint_ids, event_ids, sources, rows, bodies), list(ITEM_SCHEMA)[1:], strict=True
                )
            ),
        ],
        schema=ITEM_SCHEMA,
    )


def items_of(columns: pa.RecordBatch) -> list[Item]:
    """Columns (:data:`ITEM_SCHEMA`) as one :class:`Item` each."""
    return list(map(Item, *(column.to_pylist() for column in columns.columns)))


def requests_of(layout: pa.RecordBatch, starts: Sequence[int]) -> list[Request]:
    """Requests cut from ``layout`` (:data:`ITEM_SCHEMA`) where each begins (``starts``, ascending,
    the first 0), with every body built at once, column-wise.

    Within a request, an endpoint's items must be adjacent, its own item (if any) first: the layout
    packing makes. Each row becomes one piece of JSON text: the request's opening (first row) or a
    comma if something precedes it in its entry or request; for the first row of an endpoint's
    entry, the quoted endpoint id and the entry's opening (with ``"Endpoint":{}`` when the row is
    an event); for an event, its quoted id and colon; the row's own JSON; after an endpoint's own
    item, the opening of its ``Events``; and ``}}`` after the entry's last row (``}}}}`` after the
    request's). The pieces of each request are then joined in one kernel call.
    """
    n = layout.num_rows
    if n == 0:
        return []
    record_types, endpoint_ids, event_ids, _, _, bodies = layout.columns
    first = np.zeros(n, dtype=bool)
    first[list(starts)] = True
    is_event = pc.equal(record_types, EVENT).to_numpy(zero_copy_only=False)
    same_id = np.zeros(n, dtype=bool)
    if n > 1:
        same_id[1:] = pc.equal(endpoint_ids.slice(1), endpoint_ids.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    opens = first | ~same_id | ~is_event  # the row opens an endpoint's entry
    after_event = np.zeros(n, dtype=bool)
    after_event[1:] = is_event[:-1]
    closes = np.ones(n, dtype=bool)
    closes[:-1] = opens[1:]
    last = np.zeros(n, dtype=bool)
    last[np.asarray(starts[1:], dtype=np.int64) - 1] = True
    last[-1] = True
    # Before a row: the request's opening, or a comma; after it: the entry's end, or the request's too.
    before = pa.array(
        (first * 2 + (~first & (opens | after_event))).astype(np.int8), mask=~(first | opens | after_event)
    )
    after = pa.array(last.astype(np.int8), mask=~closes)
    opening = pa.array(is_event.astype(np.int8), mask=~opens)
    pieces = pc.binary_join_element_wise(
        pc.take(pa.array([None, ",", '{"BatchItem":{'], pa.string()), before),
        constant('"', opens),
        pc.if_else(pa.array(opens), _json_text(endpoint_ids), pa.scalar(None, pa.string())),
        pc.take(pa.array(['":{"Endpoint":', '":{"Endpoint":{},"Events":{']), opening),
        constant('"', is_event),
        _json_text(event_ids),
        constant('":', is_event),
        bodies,
        constant(',"Events":{', ~is_event),
        pc.take(pa.array(["}}", "}}}}"]), after),
        "",
        null_handling="replace",
        null_replacement="",
    )
    offsets = np.append(np.asarray(starts, dtype=np.int64), n)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pieces), "")
    del pieces  # a copy of the whole batch's text: gone before the bodies are made from the joined one
    texts = joined.cast(pa.binary()).to_pylist()
    del joined
    events = np.add.reduceat(is_event.astype(np.int64), offsets[:-1]).tolist()
    return [
        Request(columns=layout.slice(start, stop - start), body=text, events=count)
        for start, stop, text, count in zip(offsets[:-1].tolist(), offsets[1:].tolist(), texts, events, strict=True)
    ]


def _json_text(strings: pa.Array) -> pa.Array:
    """Strings as they go between JSON quotes, escaped exactly as ``json.dumps(ensure_ascii=False)``
    does (ordinary ids need nothing; the rare others are escaped one by one)."""
    if not needs_escape(strings):
        return strings
    return pa.array(
        [None if s is None else json.dumps(s, ensure_ascii=False)[1:-1] for s in strings.to_pylist()], pa.string()
    )


def request_size(items: Sequence[Item]) -> int:
    """Exact byte size of the body a request of ``items`` would have."""
    size = _BODY_OVERHEAD
    seen: set[str] = set()
    with_events: set[str] = set()
    for item in items:
        if item.endpoint_id not in seen:
            seen.add(item.endpoint_id)
            size += endpoint_entry_size(item.endpoint_id)
        if item.record_type == EVENT:
            with_events.add(item.endpoint_id)
        size += item.wire_size()
    # No comma after the last endpoint entry, nor after the last event of each endpoint.
    return size - (1 if seen else 0) - len(with_events)

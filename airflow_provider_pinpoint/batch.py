"""The unit of sending: one PutEvents request, built from pre-serialised item fragments.

Each input row becomes one :class:`Item` whose JSON is serialised exactly once, when it is
reshaped. A :class:`Request` is an ordered list of items; its body is assembled by joining the
fragments, so packing can account for the exact wire size, and the sender can split a request
(HTTP 413) or resend only the items the service asked for again (per-item 429/500) without
touching the original rows or serialising anything twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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
        return len(self.event_id.encode()) + len(self.body.encode()) + EVENT_OVERHEAD + json_escape_extra(self.event_id)


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


@dataclass(slots=True)
class Request:
    """One PutEvents request: items grouped by endpoint in the order given."""

    items: list[Item] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return sum(1 for item in self.items if item.record_type == EVENT)

    def body(self) -> bytes:
        """The EventsRequest JSON, as sent on the wire."""
        groups: dict[str, list[Item]] = {}
        for item in self.items:
            groups.setdefault(item.endpoint_id, []).append(item)
        parts = []
        for endpoint_id, items in groups.items():
            endpoint = "{}"
            events = []
            for item in items:
                if item.record_type == ENDPOINT:
                    endpoint = item.body
                else:
                    events.append(f"{_quoted(item.event_id)}:{item.body}")
            parts.append(f'{_quoted(endpoint_id)}:{{"Endpoint":{endpoint},"Events":{{{",".join(events)}}}}}')
        return ('{"BatchItem":{' + ",".join(parts) + "}}").encode()

    def batch_item(self) -> dict:
        """The request as the ``BatchItem`` parameter of boto3's ``put_events`` (for validation, dry runs)."""
        return json.loads(self.body())["BatchItem"]

    def subset(self, items: Iterable[Item]) -> Request:
        return Request(list(items))

    def split(self) -> tuple[Request, Request]:
        """Two halves by item count, for a 413 answer.

        Packing lays out each endpoint's own row before its events, so that row lands in the first
        half or in the same half as its first events; the halves are sent as they are, and events
        cut off from their endpoint's row go with ``Endpoint: {}`` (the row went in the first half).
        """
        half = len(self.items) // 2
        return Request(self.items[:half]), Request(self.items[half:])


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

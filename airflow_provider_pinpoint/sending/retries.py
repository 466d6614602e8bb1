"""The retry bookkeeping: attempts per item, the pool of items to send again, and their backoff.

The engine's workers count each item's attempts here and put back the items an answer asked to be
resent (per-item 429 / 5xx, or no status). The workers take them out again packed into
requests by the same packing as fresh ones, once a full request's worth is ready or, at the end of
the input, whatever is ready.
"""

from __future__ import annotations

import random
import threading
import time

from airflow_provider_pinpoint.prepare import packing
from airflow_provider_pinpoint.prepare.requests import EVENT, Item, Request, item_columns


class Retries:
    """Attempts per item (by identity, for items not yet decided) and the pool of items waiting to be resent."""

    def __init__(
        self,
        *,
        max_attempts: int,
        max_events: int,
        max_bytes: int,
        backoff_base_s: float,
        backoff_cap_s: float,
        seed: int | None,
    ) -> None:
        self.max_attempts = max_attempts
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._random = random.Random(seed)
        self._attempts: dict[int, int] = {}  # id(item) -> attempts so far
        self._lock = threading.Lock()
        self._pool: list[tuple[float, Item]] = []  # (not before, item)

    # Attempts -------------------------------------------------------------------------------------

    def attempts(self, item: Item) -> int:
        """Attempts so far of an item not yet decided."""
        return self._attempts.get(id(item), 0)

    def most(self, items: list[Item]) -> int:
        """The most attempts any of ``items`` has had."""
        return max(self.attempts(item) for item in items)

    def sent(self, items: list[Item]) -> None:
        """Count one more attempt for each item."""
        counts = self._attempts
        for key in map(id, items):
            counts[key] = counts.get(key, 0) + 1

    def sent_once(self, request: Request) -> list[Item]:
        """A fresh request's items, one by one, each counted as sent once (its first attempt is not
        counted per item until something other than a whole acceptance happens)."""
        items = list(request.items)
        for item in items:
            self._attempts[id(item)] = 1
        return items

    def exhausted(self, item: Item) -> bool:
        return self.attempts(item) >= self.max_attempts

    def settled(self, item: Item) -> int:
        """Forget a decided item; its attempts."""
        return self._attempts.pop(id(item), 0)

    def backoff(self, attempts: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempts-1))]."""
        return self._random.uniform(0, min(self._backoff_cap_s, self._backoff_base_s * 2 ** (attempts - 1)))

    # The pool -------------------------------------------------------------------------------------

    def put_back(self, items: list[Item]) -> None:
        """Resend ``items`` later, after a backoff by the most attempts among them."""
        not_before = time.monotonic() + self.backoff(self.most(items))
        with self._lock:
            self._pool.extend((not_before, item) for item in items)

    def __len__(self) -> int:
        return len(self._pool)

    def next_ready(self) -> float | None:
        """When the earliest item in the pool may go (monotonic time), None if the pool is empty."""
        with self._lock:
            return min((t for t, _ in self._pool), default=None)

    def take_ready(self, *, final: bool) -> list[Request]:
        """Ready items packed into requests: only full ones unless ``final``; the items taken leave the pool."""
        now = time.monotonic()
        with self._lock:
            if not final and len(self._pool) < self._max_events:
                return []
            ready = [item for not_before, item in self._pool if not_before <= now]
            if not ready:
                return []
            requests = self._pack(ready, final=final)
            if not requests:
                return []
            taken = {id(item) for request in requests for item in request.items}
            self._pool = [(t, item) for t, item in self._pool if id(item) not in taken]
        return requests

    def take_all(self) -> list[Item]:
        """Empty the pool (the run is ending); the items it held."""
        with self._lock:
            left = [item for _, item in self._pool]
            self._pool.clear()
        return left

    def _pack(self, items: list[Item], *, final: bool) -> list[Request]:
        """Items into requests by the same packing as fresh ones: events grouped by endpoint, each
        request within the event, entry and byte limits. Unless ``final``, only full requests: the
        rest waits for more retries or the end of the input. The requests hold these very item
        objects (their attempts are counted by identity)."""
        limits = {"max_events": self._max_events, "max_bytes": self._max_bytes}
        events = [item for item in items if item.record_type == EVENT]
        heads: dict[str, Item] = {}
        twins: list[Item] = []  # an endpoint item whose id another in the pool has: a request of its own
        for item in items:
            if item.record_type == EVENT:
                continue
            if item.endpoint_id in heads:
                twins.append(item)
            else:
                heads[item.endpoint_id] = item
        head_columns = item_columns(list(heads.values()))
        waiting = packing.PendingEndpoints(
            head_columns.column("endpoint_id"),
            head_columns.column("source"),
            head_columns.column("source_row"),
            head_columns.column("body"),
        )
        with_events: list[Request] = []
        if events:
            columns = item_columns(events)
            sizes = packing.event_wire_sizes(columns.column("event_id"), columns.column("body"))
            with_events = packing.pack_events(columns, sizes, waiting, **limits)
        without = list(packing.pack_endpoints(waiting.take_rest(chunk=max(1, len(waiting))), **limits))
        if not final:
            # Greedy packing closed every request but the last because the next item did not fit.
            for requests in (with_events, without):
                last = requests[-1] if requests else None
                if last and len(last) < self._max_events and last.event_count < self._max_events:
                    requests.pop()
        own = {(item.record_type, item.source, item.source_row): item for item in items}
        return [
            *(
                Request([own[key] for key in _keys(request)], body=request.body())
                for request in (*with_events, *without)
            ),
            *(Request([item]) for item in twins),
        ]


def _keys(request: Request) -> list[tuple[str, str, int]]:
    """(record type, source, row) of each item: what tells an input row from every other."""
    columns = request.columns
    return list(
        zip(*(columns.column(name).to_pylist() for name in ("record_type", "source", "source_row")), strict=True)
    )

"""The sending engine: every item ends accepted, rejected or failed, and is recorded exactly once.

A feeder thread pulls requests from the caller's iterator (reading, validating and packing the
next batch while the current one is sent) into a bounded queue; the caller's thread hands each to
a worker thread. The workers bound the requests in flight (which is also the bound on duplicates a crash can cause), and one
:class:`~airflow_provider_pinpoint.sending.ratelimit.RateLimiter` paces them all. A worker owns its request
until every item in it is decided or handed back:

- request-level 429 / 5xx / timeout / broken connection: the same request again after a backoff
  (exponential, full jitter), until an item runs out of attempts; 429 also slows the rate limiter;
- 413: split in two and send each half (a single item that is still too large is rejected);
- 400 for the whole request: every item in it is rejected with the service's message;
- 403 / 404: the run stops at once (nothing else is sent) and the error is raised to the caller;
- a 202 answer: each item by its own status. 2xx accepted, 4xx rejected with the service's
  message, 429 / 5xx (or no status at all) go back to a retry pool; the caller's thread packs
  those into later requests once a full request's worth is ready or the input is exhausted.

Items a stop (``stop_event`` or a fatal error) catches before they were sent are recorded as
failed, so a rerun with the same results location sends them again.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.prepare import packing
from airflow_provider_pinpoint.prepare.requests import EVENT, Item, Request, item_columns
from airflow_provider_pinpoint.results.rows import ACCEPTED, FAILED, REJECTED, ItemResult, Outcomes
from airflow_provider_pinpoint.sending.ratelimit import RateLimiter
from airflow_provider_pinpoint.sinks.putevents import (
    SENDER_THREAD_PREFIX,
    BadRequest,
    PayloadTooLarge,
    PutEventsTransport,
    Response,
    RetryableError,
)

__all__ = ["ACCEPTED", "FAILED", "REJECTED", "ItemResult", "Outcomes", "SendStats", "Sender"]


@dataclass(slots=True)
class SendStats:
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0  # requests that repeated items already sent once
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    events_accepted: int = 0


class Sender:
    """Sends requests concurrently; reports decided items through ``record`` (from any thread)."""

    def __init__(
        self,
        transport: PutEventsTransport,
        application_id: str,
        *,
        record: Callable[[Outcomes], None],
        limiter: RateLimiter,
        max_in_flight: int = 8,
        max_attempts: int = 8,
        max_events_per_request: int = quotas.MAX_EVENTS_PER_REQUEST,
        max_request_bytes: int = quotas.MAX_REQUEST_BYTES,
        stop_event: threading.Event | None = None,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 10.0,
        seed: int | None = None,
        prefetch: int = 256,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self._transport = transport
        self._application_id = application_id
        self._record_callback = record
        self._limiter = limiter
        self._max_in_flight = max_in_flight
        self._max_attempts = max_attempts
        self._max_events = max_events_per_request
        self._max_bytes = max_request_bytes
        self._user_stop = stop_event or threading.Event()
        self._stop = threading.Event()  # set by the user's stop_event or a fatal error
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._random = random.Random(seed)
        self._prefetch = prefetch
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._attempts: dict[int, int] = {}  # id(item) -> attempts so far, for items not yet decided
        self._retry_pool: list[tuple[float, Item]] = []  # (not before, item)
        self._in_flight = 0
        self._fatal: FatalServiceError | None = None
        self._crash: Exception | None = None
        self.stats = SendStats()

    # The caller's thread --------------------------------------------------------------------------

    def run(self, requests: Iterable[Request]) -> SendStats:
        """Send everything; raise FatalServiceError if the service refused the run."""
        pool = ThreadPoolExecutor(self._max_in_flight, thread_name_prefix=SENDER_THREAD_PREFIX)
        feed = _Feed(requests, self._stopping, self._prefetch)
        try:
            for request in feed:
                self._submit(pool, request, retry=False)
                self._submit_retries(pool, final=False)
            self._drain(pool)
        except BaseException:
            self._stop.set()
            raise
        finally:
            feed.close()
            pool.shutdown(wait=True)
            with self._lock:
                left = [item for _, item in self._retry_pool]
                self._retry_pool.clear()
            self._give_up(left + feed.unsent(), self._stop_reason(), None)
        if self._fatal is not None:
            raise self._fatal
        if self._crash is not None:
            raise self._crash
        return self.stats

    def _stopping(self) -> bool:
        if self._user_stop.is_set():
            self._stop.set()
        return self._stop.is_set()

    def _stop_reason(self) -> str:
        if self._fatal is not None:
            return f"not sent: {self._fatal}"
        return "not sent: the run was stopped"

    def _submit(self, pool: ThreadPoolExecutor, request: Request, *, retry: bool) -> None:
        with self._changed:
            while self._in_flight >= self._max_in_flight:
                self._changed.wait(0.2)
                if self._stopping():
                    break
            self._in_flight += 1
        pool.submit(self._work, request, retry)

    def _submit_retries(self, pool: ThreadPoolExecutor, *, final: bool) -> None:
        """Pack ready items from the retry pool into requests: only full ones unless ``final``."""
        now = time.monotonic()
        with self._lock:
            if not final and len(self._retry_pool) < self._max_events:
                return
            ready = [item for not_before, item in self._retry_pool if not_before <= now]
            if not ready:
                return
            requests = self._pack(ready, final=final)
            if not requests:
                return
            taken = {id(item) for request in requests for item in request.items}
            self._retry_pool = [(t, item) for t, item in self._retry_pool if id(item) not in taken]
        for request in requests:
            self._submit(pool, request, retry=True)

    def _drain(self, pool: ThreadPoolExecutor) -> None:
        """After the input is exhausted: keep resending retry items until nothing is left in flight."""
        while not self._stopping():
            self._submit_retries(pool, final=True)
            with self._changed:
                if self._in_flight == 0 and not self._retry_pool:
                    return
                next_ready = min((t for t, _ in self._retry_pool), default=None)
                timeout = 0.2 if next_ready is None else max(0.0, min(0.2, next_ready - time.monotonic()))
                self._changed.wait(timeout)

    def _pack(self, items: list[Item], *, final: bool) -> list[Request]:
        """Retry items into requests by the same packing as fresh ones: events grouped by endpoint,
        each request within the event, entry and byte limits. Unless ``final``, only full requests:
        the rest waits for more retries or the end of the input. The requests hold the pool's own
        item objects (their attempts are counted by identity)."""
        limits = {"max_events": self._max_events, "max_bytes": self._max_bytes}
        events = [item for item in items if item.record_type == EVENT]
        heads = _RetryHeads()
        twins: list[Item] = []  # an endpoint item whose id another in the pool has: a request of its own
        for item in items:
            if item.record_type == EVENT:
                continue
            if item.endpoint_id in heads:
                twins.append(item)
            else:
                heads[item.endpoint_id] = item
        with_events: list[Request] = []
        if events:
            columns = item_columns(events)
            sizes = packing.event_wire_sizes(columns.column("event_id"), columns.column("body"))
            with_events = packing.pack_events(columns, sizes, heads, **limits)
        without = list(packing.pack_endpoints([item_columns(list(heads.values()))], **limits))
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

    # Worker threads -------------------------------------------------------------------------------

    def _work(self, request: Request, retry: bool) -> None:
        try:
            self._deliver(request, retry)
        except FatalServiceError as exc:
            with self._lock:
                if self._fatal is None:
                    self._fatal = exc
            self._stop.set()
        except Exception as exc:  # a bug or a failed write must not lose items silently: stop, re-raise in run()
            with self._lock:
                self._crash = self._crash or exc
            self._stop.set()
            try:
                self._give_up(request.items, f"internal error: {type(exc).__name__}", None)
            except Exception:  # recording failed too (e.g. the results cannot be written): run() raises the first error
                pass
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def _deliver(self, request: Request, retry: bool) -> None:
        # A fresh request's first attempt needs no state per item: the normal answer accepts it
        # whole and is recorded from its columns. Its items are counted one by one (``items``)
        # only when something else happens and they are dealt with one by one from then on.
        items = list(request.items) if retry else None
        last: RetryableError | None = None
        sent_at: datetime | None = None
        counts = self._attempts
        while items is None or items:
            if retry:
                exhausted = [item for item in items if counts.get(id(item), 0) >= self._max_attempts]
                if exhausted:
                    items = [item for item in items if counts.get(id(item), 0) < self._max_attempts]
                    self._decide_all(exhausted, FAILED, last, sent_at)
                    continue
            if self._stopping() or not self._limiter.acquire(self._stopping):
                self._give_up(request.items if items is None else items, self._stop_reason(), None)
                return
            if items is None:
                outgoing = request
            else:
                for key in map(id, items):
                    counts[key] = counts.get(key, 0) + 1
                outgoing = request if len(items) == len(request) else Request(items)
            with self._lock:
                self.stats.requests += 1
                self.stats.retries += retry
            sent_at = datetime.now(UTC)
            try:
                response = self._transport.send(self._application_id, outgoing)
            except (FatalServiceError, PayloadTooLarge, BadRequest, RetryableError) as exc:
                if items is None:
                    items = self._counted(request)
                if isinstance(exc, FatalServiceError):
                    self._give_up(items, str(exc), None)
                    raise
                if isinstance(exc, PayloadTooLarge):
                    self._split(items, exc, sent_at)
                    return
                if isinstance(exc, BadRequest):
                    self._decide_all(items, REJECTED, exc, sent_at)
                    return
                last = exc
                if exc.throttled:
                    self._limiter.throttled()
                retry = True
                attempts = max(self._attempts[id(item)] for item in items)
                if attempts < self._max_attempts and not self._sleep(self._backoff(attempts)):
                    self._give_up(items, self._stop_reason(), None)
                    return
                continue
            if items is None:
                code = response.common_success(request)
                if code is not None:  # the normal answer: every item accepted, with the same code
                    self._report(Outcomes.all_accepted(request, code, 1, response.request_id, sent_at))
                    return
                items = self._counted(request)
            self._settle(items, response, sent_at)
            return

    def _counted(self, request: Request) -> list[Item]:
        """A fresh request's items, one by one, each counted as sent once."""
        items = list(request.items)
        for item in items:
            self._attempts[id(item)] = 1
        return items

    def _split(self, items: list[Item], exc: PayloadTooLarge, sent_at: datetime) -> None:
        if len(items) == 1:
            self._decide_all(items, REJECTED, exc, sent_at)
            return
        halves = Request(items).split()
        for i, half in enumerate(halves):
            try:
                self._deliver(half, retry=True)
            except FatalServiceError as exc:  # the halves not sent yet were taken up too: record them failed
                for rest in halves[i + 1 :]:
                    self._give_up(rest.items, f"not sent: {exc}", None)
                raise

    def _settle(self, items: list[Item], response: Response, sent_at: datetime) -> None:
        code = response.common_success(Request(items))
        if code is not None:  # every item accepted, with the same code
            pop, request_id = self._attempts.pop, response.request_id
            self._record(
                [ItemResult(item, ACCEPTED, code, "", pop(id(item), 0), request_id, sent_at) for item in items]
            )
            return
        decided: list[ItemResult] = []
        again: list[Item] = []
        throttled = 0
        for item in items:
            code, message = response.item_status(item)
            if 200 <= code < 300:
                decided.append(self._result(item, ACCEPTED, code, "", response.request_id, sent_at))
            elif 400 <= code < 500 and code != 429:
                decided.append(self._result(item, REJECTED, code, message, response.request_id, sent_at))
            elif self._attempts[id(item)] >= self._max_attempts:
                decided.append(self._result(item, FAILED, code or None, message, response.request_id, sent_at))
            else:
                throttled += code == 429
                again.append(item)
        # A few throttled items in an accepted request are resent, but they say little about the
        # request rate; slowing the whole process for each of them pinned it at the limiter's floor
        # (a 5% per-item error rate touches nearly every 100-event request). Most of the request
        # throttled is the service saying "slower", like a request-level 429.
        if throttled * 2 > len(items):
            self._limiter.throttled()
        if again:
            not_before = time.monotonic() + self._backoff(max(self._attempts[id(item)] for item in again))
            with self._changed:
                self._retry_pool.extend((not_before, item) for item in again)
        self._record(decided)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the run stops meanwhile; False if it did."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(left, 0.1)) or self._stopping():
                return False
        return not self._stopping()

    def _backoff(self, attempts: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempts-1))]."""
        return self._random.uniform(0, min(self._backoff_cap_s, self._backoff_base_s * 2 ** (attempts - 1)))

    # Bookkeeping ----------------------------------------------------------------------------------

    def _result(
        self, item: Item, status: str, code: int | None, message: str, request_id: str | None, sent_at: datetime | None
    ) -> ItemResult:
        return ItemResult(item, status, code, message, self._attempts.pop(id(item), 0), request_id, sent_at)

    def _decide_all(self, items: list[Item], status: str, exc: Exception | None, sent_at: datetime | None) -> None:
        code = getattr(exc, "status", None)
        request_id = getattr(exc, "request_id", None)
        message = getattr(exc, "message", "") or (str(exc) if exc else "")
        if status == FAILED:
            message = f"gave up after {self._max_attempts} attempts: {message or 'no answer'}"
        self._record([self._result(item, status, code, message, request_id, sent_at) for item in items])

    def _give_up(self, items: list[Item], message: str, code: int | None) -> None:
        self._record([self._result(item, FAILED, code, message, None, None) for item in items])

    def _record(self, results: list[ItemResult]) -> None:
        if results:
            self._report(Outcomes.of_results(results))

    def _report(self, outcomes: Outcomes) -> None:
        """Count and report decided items."""
        with self._lock:
            self.stats.accepted += outcomes.accepted
            self.stats.rejected += outcomes.rejected
            self.stats.failed += outcomes.failed
            self.stats.events_accepted += outcomes.events_accepted
        self._record_callback(outcomes)


class _RetryHeads(dict[str, Item]):
    """Endpoint items in the retry pool by id, from which :func:`packing.pack_events` takes each
    endpoint's item for the request that carries its first events."""

    def take(self, endpoint_ids: pa.Array) -> tuple[np.ndarray, pa.RecordBatch]:
        """Which of these ids have an item here, and those items as columns; the items taken leave the pool."""
        taken = [self.pop(endpoint_id, None) for endpoint_id in endpoint_ids.to_pylist()]
        has = np.array([item is not None for item in taken], dtype=bool)
        return has, item_columns([item for item in taken if item is not None])


class _Feed:
    """Runs the request iterator in its own thread, up to ``size`` requests ahead of the senders.

    Reading and packing a batch of rows takes long enough that, done in the dispatching thread, the
    workers would sit idle meanwhile; the queued requests are not sent yet, so they widen neither
    the in-flight window nor the duplicate bound. Iteration ends early once ``stopping()`` is true.
    """

    _END = object()

    def __init__(self, requests: Iterable[Request], stopping: Callable[[], bool], size: int) -> None:
        self._stopping = stopping
        self._queue: queue.Queue = queue.Queue(max(1, size))
        self._closed = threading.Event()
        self._dropped: list[Item] = []  # items the iterator gave that were never handed on
        self._thread = threading.Thread(target=self._produce, args=(requests,), name="pinpoint-feed", daemon=True)
        self._thread.start()

    def _produce(self, requests: Iterable[Request]) -> None:
        try:
            for request in requests:
                if not self._put(request):
                    self._dropped.extend(request.items)
                    return
        except BaseException as exc:  # handed to the consuming thread, which raises it
            self._put(_Failure(exc))
            return
        self._put(self._END)

    def _put(self, value: object) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Request]:
        while not self._stopping():
            try:
                value = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if value is self._END:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield value

    def close(self) -> None:
        """Stop the feeder and wait for it: nothing it does (e.g. recording rejections) may outlive the run."""
        self._closed.set()
        self._thread.join()

    def unsent(self) -> list[Item]:
        """After :meth:`close`: the items read but not handed to a worker, to be recorded as not sent."""
        while True:
            try:
                value = self._queue.get_nowait()
            except queue.Empty:
                return self._dropped
            if isinstance(value, Request):
                self._dropped.extend(value.items)


def _keys(request: Request) -> list[tuple[str, str, int]]:
    """(record type, source, row) of each item: what tells an input row from every other."""
    columns = request.columns
    return list(
        zip(*(columns.column(name).to_pylist() for name in ("record_type", "source", "source_row")), strict=True)
    )


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException

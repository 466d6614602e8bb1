"""The sending engine: every item ends accepted, rejected or failed, and is recorded exactly once.

A feeder thread (:mod:`~airflow_provider_pinpoint.sending.feed`) pulls requests from the caller's
iterator into a bounded queue; each of ``max_in_flight`` worker threads takes the next request
from there (or from the retries) itself, so no thread hands requests over. The workers bound the
requests in flight (which is also the bound on duplicates a crash can cause), and one
:class:`~airflow_provider_pinpoint.sending.ratelimit.RateLimiter` paces them all. A worker owns
its request until every item in it is decided or handed back:

- request-level 429 / 408 / 5xx / timeout / broken connection: the same request again after a
  backoff (exponential, full jitter), until an item runs out of attempts; 429 also slows the rate;
- 413: split in two and send each half (a single item that is still too large is rejected);
- 400 (or another 4xx without a meaning of its own) for the whole request: not retried; its items
  are failed with the service's message (the answer is about the request, not about an item);
- 401 / 403 / 404 / 407 / 3xx: the run stops at once (nothing else is sent) and the error is
  raised to the caller;
- a 2xx answer: each item by its own status. 2xx accepted, 400 / 413 (the item itself is invalid)
  rejected with the service's message, anything else (429, 5xx, another 4xx, no readable status)
  goes back to the retry pool (:mod:`~airflow_provider_pinpoint.sending.retries`), which the
  workers pack into later requests once a full request's worth is ready or the input is
  exhausted.

Items a stop (``stop_event`` or a fatal error) catches before they were sent are recorded as
failed, so a rerun with the same results location sends them again.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.prepare.requests import Item, Request
from airflow_provider_pinpoint.results.rows import ACCEPTED, FAILED, REJECTED, ItemResult, Outcomes
from airflow_provider_pinpoint.sending.feed import Feed
from airflow_provider_pinpoint.sending.logs import SENDER_THREAD_PREFIX, install_log_filter
from airflow_provider_pinpoint.sending.ratelimit import RateLimiter
from airflow_provider_pinpoint.sending.retries import Retries
from airflow_provider_pinpoint.sending.transport import (
    ITEM_INVALID,
    Answer,
    BadRequest,
    PayloadTooLarge,
    RetryableError,
    Transport,
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
        transport: Transport,
        application_id: str,
        *,
        record: Callable[[Outcomes], None],
        limiter: RateLimiter,
        max_in_flight: int = quotas.DEFAULT_MAX_IN_FLIGHT,
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
        self._retries = Retries(
            max_attempts=max_attempts,
            max_events=max_events_per_request,
            max_bytes=max_request_bytes,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            seed=seed,
        )
        self._user_stop = stop_event or threading.Event()
        self._stop = threading.Event()  # set by the user's stop_event or a fatal error
        self._prefetch = prefetch
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._in_flight = 0
        self._fatal: FatalServiceError | None = None
        self._feed_error: BaseException | None = None  # what the input's iterator raised
        self._ready: deque[Request] = deque()  # retries packed into requests, not taken by a worker yet
        self._crash: Exception | None = None
        self.stats = SendStats()

    # Dispatching ----------------------------------------------------------------------------------

    def run(self, requests: Iterable[Request]) -> SendStats:
        """Send everything; raise FatalServiceError if the service refused the run."""
        install_log_filter()
        feed = Feed(requests, self._stopping, self._prefetch)
        workers: list[threading.Thread] = []
        try:
            for i in range(self._max_in_flight):
                worker = threading.Thread(target=self._worker, args=(feed,), name=f"{SENDER_THREAD_PREFIX}_{i}")
                worker.start()
                workers.append(worker)
            for worker in workers:
                worker.join()
        except BaseException:
            self._stop.set()
            raise
        finally:
            for worker in workers:
                worker.join()
            feed.close()
            self._decide([*self._ready_items(), *self._retries.take_all()], FAILED, self._stop_reason(again=True))
            self._decide(feed.unsent(), FAILED, self._stop_reason())
        if self._feed_error is not None:
            raise self._feed_error
        if self._fatal is not None:
            raise self._fatal
        if self._crash is not None:
            raise self._crash
        return self.stats

    def _stopping(self) -> bool:
        if self._user_stop.is_set():
            self._stop.set()
        return self._stop.is_set()

    def _stop_reason(self, *, again: bool = False) -> str:
        """Why items a stop caught were not sent (``again``: they had been sent before, without a final answer)."""
        what = "not sent again" if again else "not sent"
        if self._fatal is not None:
            return f"{what}: {self._fatal}"
        return f"{what}: the run was stopped"

    def _worker(self, feed: Feed) -> None:
        """A worker thread: takes the next request itself and delivers it, until there is none.

        Taking the next request in the worker that just finished one, rather than having the
        caller's thread hand each over, saves two thread wake-ups per request (the dispatcher's and
        an idle worker's); on the normal path the next request is already in the feed's queue.
        """
        while True:
            try:
                job = self._next_job(feed)
            except BaseException as exc:  # the input's iterator failed: stop, run() raises it
                with self._changed:
                    self._feed_error = self._feed_error or exc
                    self._changed.notify_all()
                self._stop.set()
                return
            if job is None:
                return
            self._work(*job)

    def _next_job(self, feed: Feed) -> tuple[Request, bool] | None:
        """The next request to send, and whether it is a resend; None when the worker is done.

        Ready retries go first, packed into full requests while the input lasts; after it, whatever
        is ready, until nothing is left to resend and nothing is in flight. A request taken counts
        as in flight from the moment it is asked of the feed, so no worker finishes while another
        may still be handed one.
        """
        while not self._stopping():
            with self._changed:
                if not self._ready:
                    self._ready.extend(self._retries.take_ready(final=feed.ended))
                if self._ready:
                    self._in_flight += 1
                    return self._ready.popleft(), True
                if feed.ended:
                    if self._in_flight == 0 and not len(self._retries):
                        self._changed.notify_all()  # the other workers are done too
                        return None
                    next_ready = self._retries.next_ready()
                    timeout = 0.2 if next_ready is None else max(0.0, min(0.2, next_ready - time.monotonic()))
                    self._changed.wait(timeout)
                    continue
                self._in_flight += 1
            request = None
            try:
                request = feed.next(timeout=0.1)
            finally:
                if request is None:
                    with self._changed:
                        self._in_flight -= 1
                        self._changed.notify_all()
            if request is not None:
                return request, False
        return None

    def _ready_items(self) -> list[Item]:
        """Empty the packed retries no worker took (the run is ending); their items."""
        with self._lock:
            ready, self._ready = list(self._ready), deque()
        return [item for request in ready for item in request.items]

    # Delivering (worker threads) ------------------------------------------------------------------

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
                self._decide(request.items, FAILED, f"internal error: {type(exc).__name__}")
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
        retries = self._retries
        while items is None or items:
            if items is not None:
                exhausted = [item for item in items if retries.exhausted(item)]
                if exhausted:
                    items = [item for item in items if not retries.exhausted(item)]
                    self._gave_up(exhausted, last, sent_at)
                    continue
            if self._stopping() or not self._limiter.acquire(self._stopping):
                self._decide(
                    request.items if items is None else items, FAILED, self._stop_reason(again=items is not None)
                )
                return
            if items is None:
                outgoing = request
            else:
                retries.sent(items)
                outgoing = request if len(items) == len(request) else Request(items)
            with self._lock:
                self.stats.requests += 1
                self.stats.retries += retry
            sent_at = datetime.now(UTC)
            try:
                answer = self._transport.send(self._application_id, outgoing)
            except (FatalServiceError, PayloadTooLarge, BadRequest, RetryableError) as exc:
                if items is None:
                    items = retries.sent_once(request)
                if isinstance(exc, FatalServiceError):
                    self._decide(items, FAILED, str(exc))
                    raise
                if isinstance(exc, PayloadTooLarge):
                    self._split(items, exc, sent_at)
                    return
                if isinstance(exc, BadRequest):
                    http = f" (HTTP {exc.status})" if exc.status else ""
                    message = f"the whole request was refused{http}, not retried: {exc.message}"
                    self._decide(items, FAILED, message, exc, sent_at)
                    return
                last = exc
                if exc.throttled:
                    self._limiter.throttled()
                retry = True
                attempts = retries.most(items)
                if attempts < retries.max_attempts and not self._sleep(retries.backoff(attempts)):
                    self._decide(items, FAILED, self._stop_reason(again=True))
                    return
                continue
            if items is None:
                code = answer.common_success(request)
                if code is not None:  # the normal answer: every item accepted, with the same code
                    self._report(Outcomes.all_accepted(request, code, 1, answer.request_id, sent_at))
                    return
                items = retries.sent_once(request)
            self._settle(items, answer, sent_at)
            return

    def _split(self, items: list[Item], exc: PayloadTooLarge, sent_at: datetime) -> None:
        if len(items) == 1:
            self._decide(items, REJECTED, exc.message, exc, sent_at)
            return
        halves = Request(items).split()
        for i, half in enumerate(halves):
            try:
                self._deliver(half, retry=True)
            except FatalServiceError as fatal:  # the halves not sent yet were taken up too: record them failed
                for rest in halves[i + 1 :]:
                    self._decide(rest.items, FAILED, f"not sent: {fatal}")
                raise

    def _settle(self, items: list[Item], answer: Answer, sent_at: datetime) -> None:
        """Each item by its own status in an answer that did not accept them all with one code."""
        retries, request_id = self._retries, answer.request_id
        sent = Request(items)
        code = answer.common_success(sent)
        if code is not None:  # every item accepted, with the same code
            self._decide(items, ACCEPTED, "", code, sent_at, request_id=request_id)
            return
        decided: list[ItemResult] = []
        again: list[Item] = []
        throttled = 0
        for item, (code, message) in zip(items, answer.item_statuses(sent), strict=True):
            if 200 <= code < 300:
                decided.append(ItemResult(item, ACCEPTED, code, "", retries.settled(item), request_id, sent_at))
            elif code in ITEM_INVALID:
                decided.append(ItemResult(item, REJECTED, code, message, retries.settled(item), request_id, sent_at))
            elif retries.exhausted(item):
                decided.append(
                    ItemResult(item, FAILED, code or None, message, retries.settled(item), request_id, sent_at)
                )
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
            retries.put_back(again)
        if decided:
            self._report(Outcomes.of_results(decided))

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the run stops meanwhile; False if it did."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(left, 0.1)) or self._stopping():
                return False
        return not self._stopping()

    # Recording ------------------------------------------------------------------------------------

    def _gave_up(self, items: list[Item], last: RetryableError | None, sent_at: datetime | None) -> None:
        """Items out of attempts: failed, with the last error."""
        message = (
            f"gave up after {_attempts(self._retries.max_attempts)}: {(last.message if last else '') or 'no answer'}"
        )
        self._decide(items, FAILED, message, last, sent_at)

    def _decide(
        self,
        items: list[Item],
        status: str,
        message: str,
        error: int | Exception | None = None,
        sent_at: datetime | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        """Record ``items`` with one status and message; the status code and request id come from
        ``error`` (a transport error, or the code itself), else none."""
        if not items:
            return
        code = error if isinstance(error, int) else getattr(error, "status", None)
        request_id = request_id or getattr(error, "request_id", None)
        settled = self._retries.settled
        self._report(
            Outcomes.of_results(
                [ItemResult(item, status, code, message, settled(item), request_id, sent_at) for item in items]
            )
        )

    def _report(self, outcomes: Outcomes) -> None:
        """Count and report decided items."""
        with self._lock:
            self.stats.accepted += outcomes.accepted
            self.stats.rejected += outcomes.rejected
            self.stats.failed += outcomes.failed
            self.stats.events_accepted += outcomes.events_accepted
        self._record_callback(outcomes)


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"

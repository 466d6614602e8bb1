"""One request rate for the whole process, that gives way when the service says it is too fast.

PutEvents has an account-wide quota (15 requests/s documented) and answers 429 without a
Retry-After header when it is exceeded, so the sender cannot learn the real limit except by
hitting it. The bucket starts at the configured rate, halves it on a throttle (at most once per
``cut_interval_s``, because one burst of 429s from several threads is one signal, not one per thread), and
climbs back by ``climb`` (a fraction of the reduced rate) per second, up to the configured rate:
additive increase, multiplicative decrease, the way TCP finds a link's capacity. The climb is slow
on purpose: every 429 costs an attempt of each row in the request, so a limiter that returned to
an unattainable rate within seconds would spend the rows' retry budget on throttling.

The bucket holds a few tens of milliseconds' worth of requests (``burst_s``), never less than one
and a half. With room for only one, a worker that wakes late loses the time it was late: at 200
requests/s (an interval of 5 ms, Python's GIL switch interval) next to busy threads the average
fell to two thirds of the rate, and at 15 requests/s on a busy machine every wake-up a few
milliseconds late added up to 10-15% over a run. With the reserve the late worker makes up for it
and the long-run average holds the rate, while no second can exceed it by more than the reserve.
Half a request of reserve adds nothing to the most requests any one-second window can hold at a
whole-number rate (the floor of reserve + rate: rate + 1, as with a reserve of one), and after an
idle spell only one request starts at once, the next half an interval later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# The bucket's reserve, in seconds' worth of requests at the current rate, and its floor in requests.
BURST_S = 0.025
MIN_RESERVE = 1.5


class RateLimiter:
    """A thread-safe token bucket measured in requests per second.

    The bucket holds ``burst_s`` seconds' worth of requests at the current rate, and at least
    :data:`MIN_RESERVE`: that many may start back to back after a late spell.
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        burst_s: float = BURST_S,
        min_rate: float = 0.5,
        climb: float = 0.1,
        cut_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {requests_per_second}")
        self.max_rate = float(requests_per_second)
        self._burst_s = burst_s
        self._min_rate = min(min_rate, self.max_rate)
        self._climb = climb
        self._cut_interval_s = cut_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self._burst_at(self.max_rate)
        self._last_refill = clock()
        self._cut_rate = self.max_rate  # the rate right after the last cut
        self._cut_at: float | None = None
        self.throttle_count = 0

    def rate(self) -> float:
        """The current allowed rate: the configured one, or on the way back to it after a throttle."""
        with self._lock:
            return self._rate_at(self._clock())

    def _rate_at(self, now: float) -> float:
        if self._cut_at is None:
            return self.max_rate
        climbed = self._cut_rate * self._climb * (now - self._cut_at)
        if self._cut_rate + climbed >= self.max_rate:
            self._cut_at = None
            return self.max_rate
        return self._cut_rate + climbed

    def _burst_at(self, rate: float) -> float:
        return max(MIN_RESERVE, self._burst_s * rate)

    def _refill(self, now: float) -> None:
        rate = self._rate_at(now)
        self._tokens = min(self._burst_at(rate), self._tokens + (now - self._last_refill) * rate)
        self._last_refill = now

    def try_acquire(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens if they are there (returns 0.0), else return the seconds until they will be.

        A limiter counting records or bytes rather than requests takes many tokens at once: a cost
        above the bucket's reserve waits for a full bucket and leaves it in debt, which the next
        caller waits out, so the long-run rate still holds."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            rate = self._rate_at(now)
            need = min(cost, self._burst_at(rate))
            if self._tokens >= need - 1e-9:  # float drift must not cost a whole wait
                self._tokens -= cost
                return 0.0
            return (need - self._tokens) / rate

    def acquire(self, stopped: Callable[[], bool] | None = None, cost: float = 1.0) -> bool:
        """Block until a request (of ``cost`` tokens) may start; False as soon as ``stopped()`` says the run is over."""
        while True:
            wait = self.try_acquire(cost)
            if wait == 0.0:
                return True
            if stopped is not None and stopped():
                return False
            time.sleep(min(wait, 0.1) if stopped is not None else wait)

    def lower_to(self, requests_per_second: float) -> None:
        """Never go faster than ``requests_per_second`` from now on (another user of this limiter asked)."""
        with self._lock:
            if requests_per_second < self.max_rate:
                self.max_rate = requests_per_second
                self._cut_rate = min(self._cut_rate, requests_per_second)
                self._min_rate = min(self._min_rate, requests_per_second)

    def throttled(self) -> None:
        """The service answered 429: halve the rate, unless it was cut moments ago."""
        with self._lock:
            now = self._clock()
            if self._cut_at is not None and now - self._cut_at < self._cut_interval_s:
                return
            self._refill(now)
            self._cut_rate = max(self._min_rate, self._rate_at(now) / 2)
            self._cut_at = now
            self.throttle_count += 1


_shared: dict[str, tuple[RateLimiter, int]] = {}  # target -> (limiter, loads using it)
_shared_lock = threading.Lock()


@contextmanager
def shared_limiter(target: str, requests_per_second: float) -> Iterator[RateLimiter]:
    """The process's limiter for ``target`` (the service's endpoint URL), for the ``with`` block.

    The PutEvents quota is per account and region, not per call: loads running at the same time in
    one process (threads of a notebook, say) draw from one bucket, at the lowest rate any of them
    asked for. When the last of them ends the bucket is dropped, so the next load starts afresh.
    """
    with _shared_lock:
        limiter, users = _shared.get(target, (None, 0))
        if limiter is None:
            limiter = RateLimiter(requests_per_second)
        else:
            limiter.lower_to(requests_per_second)
        _shared[target] = (limiter, users + 1)
    try:
        yield limiter
    finally:
        with _shared_lock:
            limiter, users = _shared[target]
            if users == 1:
                del _shared[target]
            else:
                _shared[target] = (limiter, users - 1)

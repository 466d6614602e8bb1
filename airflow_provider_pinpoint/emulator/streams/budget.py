"""Write budgets: a number of records and of bytes per second, each a token bucket.

A shard (or a delivery stream) holds one second's worth of each and refills continuously. A record
goes through only if both buckets hold enough for it; one that does not is refused and takes
nothing, so the records behind it in the same request may still fit. The clock is read once per
request: records of one request are judged at the same instant, which makes a request's outcome
depend on the budget left, not on how fast the emulator loops.
"""

from __future__ import annotations


class Budget:
    """``records_per_second`` and ``bytes_per_second`` with a burst of one second's worth of each
    (at least one record, so that a budget below one a second still lets a record through now and then)."""

    __slots__ = ("_last", "bytes", "bytes_per_second", "record_burst", "records", "records_per_second")

    def __init__(self, records_per_second: float | None, bytes_per_second: float | None, now: float) -> None:
        self.records_per_second = records_per_second
        self.bytes_per_second = bytes_per_second
        self.record_burst = max(1.0, records_per_second) if records_per_second is not None else 0.0
        self.records = self.record_burst
        self.bytes = bytes_per_second if bytes_per_second is not None else 0.0
        self._last = now

    def limits(self) -> tuple[float | None, float | None]:
        return self.records_per_second, self.bytes_per_second

    def refill(self, now: float) -> None:
        """Add what accrued since the last refill, up to one second's worth."""
        elapsed = max(0.0, now - self._last)
        self._last = now
        if self.records_per_second is not None:
            self.records = min(self.record_burst, self.records + elapsed * self.records_per_second)
        if self.bytes_per_second is not None:
            self.bytes = min(self.bytes_per_second, self.bytes + elapsed * self.bytes_per_second)

    def take(self, size: int) -> bool:
        """Spend one record and ``size`` bytes if both are there; False (spending nothing) if not."""
        if self.records_per_second is not None and self.records < 1.0:
            return False
        if self.bytes_per_second is not None and self.bytes < size:
            return False
        if self.records_per_second is not None:
            self.records -= 1.0
        if self.bytes_per_second is not None:
            self.bytes -= size
        return True


def current(budget: Budget | None, limits: tuple[float | None, float | None], now: float) -> Budget:
    """``budget`` refilled to ``now``; a new full one if there was none or the settings changed."""
    if budget is None or budget.limits() != limits:
        return Budget(*limits, now=now)
    budget.refill(now)
    return budget

"""Fault injection: every decision drawn from one seeded generator, so a run can be replayed.

Faults are settings of a running emulator, not of its start: tests share one server and turn
faults on and off through ``configure``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

# Fault kinds as counted in the statistics.
RATE_LIMIT = "rate_limit"
ERROR = "error"
LATENCY = "latency"
DROP = "drop"
LOST_RESPONSE = "lost_response"
ITEM_ERROR = "item_error"
# Kinds met only by the Kinesis and Firehose writes.
THROTTLE = "throttle"
UNAVAILABLE = "unavailable"
RECORD_ERROR = "record_error"
OVER_BUDGET = "over_budget"


@dataclass(slots=True)
class Settings:
    """What a running emulator does; all faults off by default.

    ``latency_ms``, ``error_rate``, ``drop_rate``, ``lost_response_rate`` and
    ``lost_response_delay_ms`` apply to PutEvents and to the Kinesis and Firehose writes alike;
    ``rate_limit`` and ``item_error_rate`` to PutEvents only; the rest to the stream writes only
    (see ``emulator.streams``).
    """

    validate: bool = True
    rate_limit: float | None = None  # requests per second, token bucket; None: unlimited
    error_rate: float = 0.0  # fraction of requests answered 500
    latency_ms: float = 0.0  # mean added latency; each answer waits 0.5x to 1.5x of it
    drop_rate: float = 0.0  # fraction of connections closed before the request is processed
    lost_response_rate: float = 0.0  # fraction processed and recorded, then closed without an answer
    item_error_rate: float = 0.0  # fraction of events answered 429 or 500 inside a 202
    # A lost response is withheld this long before the connection closes; past the client's read
    # timeout it is a timeout rather than a reset. 0: closed at once.
    lost_response_delay_ms: float = 0.0
    # Kinesis: the write budget of every shard (the service's own: 1,000 records and 1 MiB a second).
    shard_records_per_second: float = 1000.0
    shard_bytes_per_second: float = 1024.0 * 1024.0
    # Firehose: the write budget of every delivery stream; None: unlimited.
    firehose_records_per_second: float | None = None
    firehose_bytes_per_second: float | None = None
    record_error_rate: float = 0.0  # fraction of stream records failed with InternalFailure inside a 200
    throttle_rate: float = 0.0  # fraction of stream writes refused whole as throttled
    unavailable_rate: float = 0.0  # fraction of stream writes answered 503
    seed: int = 0

    def updated(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied, each checked, so a typo or a bad value fails loudly."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown emulator setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        values = asdict(self) | changes
        for name in _RATES:
            values[name] = float(values[name])
            if not 0.0 <= values[name] <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {values[name]}")
        if values["rate_limit"] is not None:
            values["rate_limit"] = float(values["rate_limit"])
            if values["rate_limit"] <= 0:
                raise ValueError(f"rate_limit must be positive, not {values['rate_limit']}")
        for name in ("latency_ms", "lost_response_delay_ms"):
            values[name] = float(values[name])
            if not values[name] >= 0:
                raise ValueError(f"{name} must not be negative, not {values[name]}")
        for name in _BUDGETS:
            if values[name] is not None or name in _REQUIRED_BUDGETS:
                values[name] = _positive(name, values[name])
        values["seed"] = int(values["seed"])
        values["validate"] = bool(values["validate"])
        return Settings(**values)

    def as_dict(self) -> dict:
        return asdict(self)


_RATES = (
    "error_rate",
    "drop_rate",
    "lost_response_rate",
    "item_error_rate",
    "record_error_rate",
    "throttle_rate",
    "unavailable_rate",
)
_BUDGETS = (
    "shard_records_per_second",
    "shard_bytes_per_second",
    "firehose_records_per_second",
    "firehose_bytes_per_second",
)
_REQUIRED_BUDGETS = frozenset({"shard_records_per_second", "shard_bytes_per_second"})


def _positive(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    number = float(value)
    if not 0 < number < float("inf"):
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return number


class TokenBucket:
    """``rate`` requests per second with a burst of one second's worth (at least one)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Faults:
    """The fault decisions for one emulator, from its current :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self._bucket = TokenBucket(settings.rate_limit) if settings.rate_limit else None

    def _chance(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def drop(self) -> bool:
        return self._chance(self.settings.drop_rate)

    def throttle(self) -> bool:
        return self._bucket is not None and not self._bucket.take()

    def error(self) -> bool:
        return self._chance(self.settings.error_rate)

    def lose_response(self) -> bool:
        return self._chance(self.settings.lost_response_rate)

    def item_error(self) -> int | None:
        """429 or 500 for an event to fail with, or None to let it through."""
        if self._chance(self.settings.item_error_rate):
            return 429 if self._rng.random() < 0.5 else 500
        return None

    def record_error(self) -> bool:
        return self._chance(self.settings.record_error_rate)

    def throttle_stream(self) -> bool:
        return self._chance(self.settings.throttle_rate)

    def unavailable(self) -> bool:
        return self._chance(self.settings.unavailable_rate)

    def latency_s(self) -> float:
        mean = self.settings.latency_ms
        return 0.0 if mean <= 0 else mean * (0.5 + self._rng.random()) / 1000.0

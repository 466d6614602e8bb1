"""The shared token bucket, on a hand-driven clock (no sleeping, no timing assertions)."""

from __future__ import annotations

import pytest

from airflow_provider_pinpoint.sending.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drain(limiter: RateLimiter) -> None:
    while limiter.try_acquire() == 0.0:
        pass


def test_paces_requests_at_the_configured_rate():
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    drain(limiter)
    clock.now += limiter.try_acquire()  # what is left of the reserve: less than a request
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(0.1)
    clock.now += 0.1
    assert limiter.try_acquire() == 0.0


def test_at_the_documented_quota_every_request_is_paced():
    clock = Clock()
    limiter = RateLimiter(15, clock=clock)
    assert limiter.try_acquire() == 0.0
    clock.now += 1.0  # idle for a second: still only one request may start at once
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(0.5 / 15)  # the next one half an interval later


def test_at_the_documented_quota_a_worker_that_always_wakes_late_keeps_the_pace():
    clock = Clock()
    limiter = RateLimiter(15, clock=clock)
    started = 0
    while started < 150:
        wait = limiter.try_acquire()
        if wait == 0.0:
            started += 1
        else:
            clock.now += wait + 0.02  # every wake-up 20 ms after the slot, as on a busy machine
    # 149 intervals of 1/15 s after the first, plus at most one late wake-up: not 150 of them.
    assert clock.now - 100.0 <= 149 / 15 + 0.02 + 1e-9


def test_no_second_holds_more_than_one_request_over_the_documented_quota():
    clock = Clock()
    limiter = RateLimiter(15, clock=clock)
    clock.now += 5.0  # idle: the reserve is full
    started = []
    for step in range(20_000):  # 10 simulated seconds in 0.5 ms steps, a worker always asking
        clock.now = 105.0 + step * 0.0005
        while limiter.try_acquire() == 0.0:
            started.append(clock.now)
    assert max(sum(1 for t in started if s <= t < s + 1.0) for s in started) == 16


def test_a_late_worker_makes_up_the_time_it_was_late():
    clock = Clock()
    limiter = RateLimiter(200, clock=clock)  # 25 ms of reserve: 5 requests
    drain(limiter)
    clock.now += 0.015  # the worker woke 10 ms after its slot
    assert [limiter.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire() > 0.0


def test_the_reserve_never_lets_a_run_exceed_the_rate():
    clock = Clock()
    limiter = RateLimiter(200, clock=clock)
    started = 0
    for step in range(2000):  # one simulated second in 0.5 ms steps, a worker always asking
        clock.now = 100.0 + step * 0.0005
        while limiter.try_acquire() == 0.0:
            started += 1
    assert 200 <= started <= 200 + 5


def test_the_reserve_shrinks_with_the_rate_after_a_throttle():
    clock = Clock()
    limiter = RateLimiter(200, clock=clock)
    limiter.throttled()  # 100 req/s: 2.5 requests of reserve
    drain(limiter)
    clock.now += 1.0
    started = 0
    while limiter.try_acquire() == 0.0:
        started += 1
    assert started == 2


def test_a_throttle_halves_the_rate_once_per_burst():
    clock = Clock()
    limiter = RateLimiter(16, clock=clock)
    limiter.throttled()
    limiter.throttled()  # the same burst of 429s from another thread
    assert limiter.rate() == pytest.approx(8)
    clock.now += 1.5
    limiter.throttled()
    assert limiter.rate() < 8
    assert limiter.throttle_count == 2


def test_the_rate_recovers_gradually_to_the_configured_one():
    clock = Clock()
    limiter = RateLimiter(20, climb=0.1, clock=clock)
    limiter.throttled()
    assert limiter.rate() == pytest.approx(10)
    clock.now += 5.0
    assert limiter.rate() == pytest.approx(15)
    clock.now += 10.0
    assert limiter.rate() == 20


def test_the_rate_never_falls_below_the_floor():
    clock = Clock()
    limiter = RateLimiter(4, min_rate=1.0, clock=clock)
    for _ in range(10):
        limiter.throttled()
        clock.now += 1.0
    assert limiter.rate() >= 1.0


def test_acquire_gives_up_when_the_run_stops():
    limiter = RateLimiter(0.001)
    drain(limiter)
    assert limiter.acquire(lambda: True) is False


def test_loads_running_together_share_one_bucket_at_the_lowest_rate():
    from airflow_provider_pinpoint.sending.ratelimit import shared_limiter

    eu, us = "https://pinpoint.eu-west-1.amazonaws.com", "https://pinpoint.us-east-1.amazonaws.com"
    with shared_limiter(eu, 15) as first, shared_limiter(eu, 10) as second, shared_limiter(us, 15) as other:
        assert first is second and first.max_rate == 10
        assert other is not first and other.max_rate == 15
    with shared_limiter(eu, 15) as later:
        assert later is not first and later.max_rate == 15

"""The feeder's queue: requests read ahead in one thread, taken by several."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.sending.feed import Feed
from tests.helpers.items import make_items, make_requests


def _take_all(feed: Feed, threads: int) -> list[Request]:
    taken: list[Request] = []
    lock = threading.Lock()

    def worker() -> None:
        while not feed.ended:
            request = feed.next(timeout=0.05)
            if request is not None:
                with lock:
                    taken.append(request)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(10)
    return taken


@pytest.mark.parametrize("size", [1, 2, 5])
def test_several_threads_take_every_request_exactly_once(size):
    requests = make_requests(make_items(40, 3), 4)
    feed = Feed(iter(requests), lambda: False, size)
    taken = _take_all(feed, threads=4)
    feed.close()
    assert sorted(map(id, taken)) == sorted(map(id, requests))
    assert feed.unsent() == []


def test_the_feeder_reads_at_most_size_requests_ahead():
    requests = make_requests(make_items(20, 3), 3)
    read = 0

    def counted():
        nonlocal read
        for request in requests:
            read += 1
            yield request

    feed = Feed(counted(), lambda: False, 4)
    time.sleep(0.2)
    # Four queued, one more read and waiting for room.
    assert read <= 5
    first = feed.next(timeout=1)
    assert first is requests[0]
    feed.close()
    # What was read and not taken is handed back, to be recorded as not sent.
    unsent = feed.unsent()
    assert {id(item) for item in unsent} == {id(item) for request in requests[1:read] for item in request.items}


def test_the_iterators_error_reaches_the_thread_that_takes_it():
    items = make_items(4, 2)

    def failing():
        yield Request(items)
        raise InputError("cannot be read")

    feed = Feed(failing(), lambda: False, 8)
    assert feed.next(timeout=1) is not None
    with pytest.raises(InputError, match="cannot be read"):
        while feed.next(timeout=1) is None:
            pass
    assert feed.ended
    feed.close()

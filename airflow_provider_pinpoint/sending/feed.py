"""The feeder: reads, validates and packs the next requests in its own thread while others are sent."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

from airflow_provider_pinpoint.prepare.requests import Item, Request


class Feed:
    """Runs the request iterator in its own thread, up to ``size`` requests ahead of the senders.

    Reading and packing a batch of rows takes long enough that, done in the dispatching thread, the
    workers would sit idle meanwhile; the queued requests are not sent yet, so they widen neither
    the in-flight window nor the duplicate bound. Iteration ends early once ``stopping()`` is true;
    several threads may take requests with :meth:`next` instead.
    """

    _END = object()

    def __init__(self, requests: Iterable[Request], stopping: Callable[[], bool], size: int) -> None:
        self._stopping = stopping
        self._size = max(1, size)
        self._queued: deque[object] = deque()
        # Consumers wait on it while the queue is empty; the feeder while it is full, and is woken
        # only once the consumers have taken half (a wake-up per request cost more than the taking).
        self._changed = threading.Condition()
        self._closed = threading.Event()
        self._dropped: list[Item] = []  # items the iterator gave that were never handed on
        self.ended = False  # the iterator's end (or failure) was taken by :meth:`next`
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
        with self._changed:
            while len(self._queued) >= self._size:
                if self._closed.is_set():
                    return False
                self._changed.wait(0.1)
            if self._closed.is_set():
                return False
            self._queued.append(value)
            self._changed.notify()
        return True

    def _get(self, timeout: float) -> object:
        """The next value queued, or ``_EMPTY`` if none came within ``timeout``."""
        with self._changed:
            queued = self._queued
            if not queued:
                self._changed.wait(timeout)
                if not queued:
                    return _EMPTY
            value = queued.popleft()
            if len(queued) == self._size // 2:
                self._changed.notify_all()  # the feeder, if it waits for room
        return value

    def __iter__(self) -> Iterator[Request]:
        while not self._stopping():
            value = self._get(0.1)
            if value is _EMPTY:
                continue
            if value is self._END:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield cast(Request, value)

    def next(self, timeout: float) -> Request | None:
        """The next request, for any of several threads; None if none came within ``timeout`` or the
        input is exhausted (then :attr:`ended` is true). Raises what the iterator raised."""
        if self.ended:
            return None
        value = self._get(timeout)
        if value is _EMPTY:
            return None
        if value is self._END:
            self.ended = True
            return None
        if isinstance(value, _Failure):
            self.ended = True
            raise value.error
        return cast(Request, value)

    def close(self) -> None:
        """Stop the feeder and wait for it: nothing it does (e.g. recording rejections) may outlive the run."""
        self._closed.set()
        self._thread.join()

    def unsent(self) -> list[Item]:
        """After :meth:`close`: the items read but not handed to a worker, to be recorded as not sent."""
        with self._changed:
            left, self._queued = list(self._queued), deque()
        for value in left:
            if isinstance(value, Request):
                self._dropped.extend(value.items)
        return self._dropped


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


_EMPTY = object()  # what _get returns when nothing came in time

"""HTTP/1.1 on an asyncio event loop with httptools' parser.

A bare protocol rather than a web framework because two faults need the raw connection: a
dropped connection (closed before processing) and a lost response (processed and recorded, then
closed without a word), which botocore must see as connection errors. It also keeps the emulator
well clear of being the bottleneck of a load test.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import struct
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import NamedTuple

import httptools

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.emulator import wire
from airflow_provider_pinpoint.emulator.service import Emulator
from airflow_provider_pinpoint.emulator.streams.protocol import STREAM_MAX_BODY

# Headers the emulator looks at; everything else is parsed and ignored.
_WANTED_HEADERS = frozenset({b"authorization", b"content-type", b"expect", b"host", b"x-amz-target"})
# Bodies larger than this are not kept in memory; the request is answered 413.
_MAX_BODY = quotas.MAX_REQUEST_BYTES
# The same for Kinesis and Firehose calls (named by X-Amz-Target), whose 5 MiB of records travel
# base64-encoded inside JSON.
_MAX_STREAM_BODY = STREAM_MAX_BODY
# After a refusal the connection keeps reading (and dropping) for this long, so the client, which
# may still be sending, reads the answer instead of a reset.
_LINGER_S = 2.0
# File descriptors kept free of connections: the listening socket, the store, standard streams.
_RESERVED_FDS = 32


@dataclass(frozen=True, slots=True)
class Limits:
    """What clients may hold of the server: time and bytes per request, connections in all."""

    request_timeout_s: float = 30.0  # a request begun must be complete within this, else 408
    idle_timeout_s: float = 60.0  # a connection with no request under way is closed after this
    max_connections: int = 1000  # one more closes the connection idle longest
    max_url_bytes: int = 8 * 1024  # else 414
    max_header_bytes: int = 64 * 1024  # request line and headers together, else 431

    def __post_init__(self) -> None:
        for name in ("request_timeout_s", "idle_timeout_s", "max_connections", "max_url_bytes", "max_header_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")


class _Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    too_large: bool
    keep_alive: bool


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the answer is in ``HttpProtocol._refusal``."""


class Connections:
    """The open connections, least recently active first, so the one idle longest can make room."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: OrderedDict[HttpProtocol, None] = OrderedDict()

    def add(self, connection: HttpProtocol) -> bool:
        """Track ``connection``, closing the idlest other one when full; False if every one is busy."""
        if len(self._open) >= self.limit:
            idlest = next((c for c in self._open if not c.busy), None)
            if idlest is None:
                return False
            idlest.close_quietly()
        self._open[connection] = None
        return True

    def touch(self, connection: HttpProtocol) -> None:
        if connection in self._open:
            self._open.move_to_end(connection)

    def remove(self, connection: HttpProtocol) -> None:
        self._open.pop(connection, None)


class HttpProtocol(asyncio.Protocol):
    """One client connection; requests on it are answered in order."""

    def __init__(self, emulator: Emulator, limits: Limits, connections: Connections) -> None:
        self.emulator = emulator
        self.limits = limits
        self.connections = connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        # Complete requests not answered yet (pipelined behind a delayed answer), oldest first, and
        # a refusal that ends the connection once they are answered.
        self._waiting: deque[_Request | wire.Answer] = deque()
        self._delayed = False
        self._timer: asyncio.TimerHandle | None = None
        # Until a request's headers are complete, what arrives counts towards its head.
        self._in_request = False
        self._headers_done = False
        self._head_bytes = 0
        self._begun = 0  # requests begun on this connection
        # Why parsing stopped, set by a callback before it raises _Refused.
        self._refusal: wire.Answer | None = None
        # Refused: what still arrives is dropped until the connection closes.
        self._discarding = False
        self._reset_request()

    def _reset_request(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body_parts: list[bytes] = []
        self.body_size = 0
        self.max_body = _MAX_BODY

    @property
    def busy(self) -> bool:
        """An answer is being delayed: the client is waiting on the server, not the other way round."""
        return self._delayed

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.connections.add(self):
            self.close_quietly()
            return
        self._arm_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._cancel_timer()
        self.connections.remove(self)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        self.connections.touch(self)
        while data:
            if self._headers_done:
                self._feed(data)
                return
            # httptools keeps a header in memory until its end: feed no more of a head than the
            # limit allows. The bytes of the read a head begins in are not counted (the count is
            # reset when it begins), so a head can exceed the limit by that much before it is refused.
            room = self.limits.max_header_bytes - self._head_bytes
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            begun = self._begun
            self._feed(piece)
            if self._discarding or self.transport is None:
                return
            if data and not self._headers_done and self._begun == begun:
                self._refuse(431, f"Request line and headers exceed {self.limits.max_header_bytes} bytes")
                return

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse_with(self._refusal)
            else:
                self._refuse(400, "Malformed HTTP request")

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset_request()
        self._begun += 1
        self._head_bytes = 0
        self._in_request = True
        self._arm_timer()

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.max_url_bytes:
            self._refusal = _refusal(414, f"Request target exceeds {self.limits.max_url_bytes} bytes")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _WANTED_HEADERS:
            self.headers[name.decode()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if "x-amz-target" in self.headers:
            self.max_body = _MAX_STREAM_BODY
        if self.headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size <= self.max_body:
            self.body_parts.append(body)

    def on_message_complete(self) -> None:
        self._in_request = False
        self._headers_done = False
        self._cancel_timer()
        too_large = self.body_size > self.max_body
        self._waiting.append(
            _Request(
                self.parser.get_method().decode(),
                httptools.parse_url(self.url).path.decode("latin-1"),
                self.headers,
                b"".join(self.body_parts) if not too_large else b"",
                too_large,
                self.parser.should_keep_alive() and not too_large,
            )
        )
        self._handle_waiting()

    # -- timeouts -------------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        """Wait for the client as long as its state allows: a request under way, or none."""
        self._cancel_timer()
        if self.transport is None or self._delayed:
            return
        loop = asyncio.get_running_loop()
        if self._in_request:
            self._timer = loop.call_later(self.limits.request_timeout_s, self._request_timed_out)
        else:
            self._timer = loop.call_later(self.limits.idle_timeout_s, self.close_quietly)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _request_timed_out(self) -> None:
        self._timer = None
        self._refuse(408, f"The request was not complete within {self.limits.request_timeout_s:g} s")

    # -- answering ------------------------------------------------------------------------------

    def _handle_waiting(self) -> None:
        """Answer complete requests in order; a delayed answer holds back the ones behind it."""
        while self._waiting and not self._delayed and self.transport is not None:
            request = self._waiting.popleft()
            if isinstance(request, wire.Answer):
                self._send_refusal(request)
                return
            try:
                answer = self.emulator.handle(
                    request.method, request.path, request.headers, request.body, request.too_large
                )
            except Exception as exc:  # a bug in the emulator must still give the client an answer
                answer = wire.error_answer(wire.INTERNAL_SERVER_ERROR, f"Emulator error: {type(exc).__name__}")
            if answer.delay_s > 0:
                self._delayed = True
                self._cancel_timer()
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(answer.delay_s, self._finish_delayed, answer, request.keep_alive)
            else:
                self._finish(answer, request.keep_alive)
        if not self._delayed and not self._discarding and self._timer is None:
            self._arm_timer()

    def _finish_delayed(self, answer: wire.Answer, keep_alive: bool) -> None:
        self._delayed = False
        self._finish(answer, keep_alive)
        if self.transport is not None:
            self.transport.resume_reading()
            self._handle_waiting()

    def _finish(self, answer: wire.Answer, keep_alive: bool) -> None:
        if self.transport is None:
            return
        if answer.status is None:
            self._close()
            return
        self._send(answer, keep_alive and not answer.close)
        self.connections.touch(self)

    def _send(self, answer: wire.Answer, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        transport.write(wire.serialise_head(answer, keep_alive) + answer.body)
        if not keep_alive:
            transport.close()
            self.transport = None

    def _refuse(self, status: int, message: str) -> None:
        self._refuse_with(_refusal(status, message))

    def _refuse_with(self, answer: wire.Answer) -> None:
        """Stop reading requests; answer ``answer`` after those already complete, then close."""
        self._discarding = True
        self._cancel_timer()
        self._waiting.append(answer)
        self._handle_waiting()

    def _send_refusal(self, answer: wire.Answer) -> None:
        """Send a refusal and close, dropping what the client still sends for a moment (see _LINGER_S)."""
        transport = self.transport
        if transport is None:
            return
        transport.write(wire.serialise_head(answer, keep_alive=False) + answer.body)
        if transport.can_write_eof():
            transport.write_eof()
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(_LINGER_S, self._close)

    def close_quietly(self) -> None:
        """Close without a word (an idle connection, or one making room): the client sees an end of stream."""
        transport = self.transport
        self.transport = None
        self._cancel_timer()
        self.connections.remove(self)
        if transport is not None:
            transport.close()

    def _close(self) -> None:
        """Close without answering: a reset, so the client sees a connection error at once."""
        transport = self.transport
        self.transport = None
        self._cancel_timer()
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


def _refusal(status: int, message: str) -> wire.Answer:
    return wire.json_answer(status, {"Message": message})


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when available (it is in the lock), else the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def connection_limit(limits: Limits) -> int:
    """``limits.max_connections``, lowered to what the open-file limit leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    return max(1, min(limits.max_connections, soft - _RESERVED_FDS))


async def start_server(emulator: Emulator, host: str, port: int, limits: Limits | None = None) -> asyncio.Server:
    limits = limits or Limits()
    connections = Connections(connection_limit(limits))
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(emulator, limits, connections), host, port, reuse_address=True, backlog=1024
    )

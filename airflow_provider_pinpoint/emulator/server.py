"""HTTP/1.1 on an asyncio event loop with httptools' parser.

A bare protocol rather than a web framework because two faults need the raw connection: a
dropped connection (closed before processing) and a lost response (processed and recorded, then
closed without a word), which botocore must see as connection errors. It also keeps the emulator
well clear of being the bottleneck of a load test.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque

import httptools

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.emulator import wire
from airflow_provider_pinpoint.emulator.service import Emulator

# Headers the emulator looks at; everything else is parsed and ignored.
_WANTED_HEADERS = frozenset({b"authorization", b"content-type", b"expect", b"host"})
# Bodies larger than this are not kept in memory; the request is answered 413.
_MAX_BODY = quotas.MAX_REQUEST_BYTES


class HttpProtocol(asyncio.Protocol):
    """One client connection; requests on it are answered in order."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        # Complete requests not answered yet (pipelined behind a delayed answer), oldest first.
        self._waiting: deque[tuple] = deque()
        self._delayed = False
        self._reset_request()

    def _reset_request(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body_parts: list[bytes] = []
        self.body_size = 0

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._close()
        except httptools.HttpParserError:
            if self.transport is not None:
                self._send(wire.json_answer(400, {"Message": "Malformed HTTP request"}), keep_alive=False)

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset_request()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _WANTED_HEADERS:
            self.headers[name.decode()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size <= _MAX_BODY:
            self.body_parts.append(body)

    def on_message_complete(self) -> None:
        too_large = self.body_size > _MAX_BODY
        self._waiting.append(
            (
                self.parser.get_method().decode(),
                httptools.parse_url(self.url).path.decode("latin-1"),
                self.headers,
                b"".join(self.body_parts) if not too_large else b"",
                too_large,
                self.parser.should_keep_alive() and not too_large,
            )
        )
        self._handle_waiting()

    # -- answering ------------------------------------------------------------------------------

    def _handle_waiting(self) -> None:
        """Answer complete requests in order; a delayed answer holds back the ones behind it."""
        while self._waiting and not self._delayed and self.transport is not None:
            method, path, headers, body, too_large, keep_alive = self._waiting.popleft()
            try:
                answer = self.emulator.handle(method, path, headers, body, too_large)
            except Exception as exc:  # a bug in the emulator must still give the client an answer
                answer = wire.error_answer(wire.INTERNAL_SERVER_ERROR, f"Emulator error: {type(exc).__name__}")
            if answer.delay_s > 0:
                self._delayed = True
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(answer.delay_s, self._finish_delayed, answer, keep_alive)
            else:
                self._finish(answer, keep_alive)

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

    def _send(self, answer: wire.Answer, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        transport.write(wire.serialise_head(answer, keep_alive) + answer.body)
        if not keep_alive:
            transport.close()
            self.transport = None

    def _close(self) -> None:
        """Close without answering: a reset, so the client sees a connection error at once."""
        transport = self.transport
        self.transport = None
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when available (it is in the lock), else the standard loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def start_server(emulator: Emulator, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HttpProtocol(emulator), host, port, reuse_address=True, backlog=1024)

"""What one client may hold of the emulator: connections are closed when idle or slow, heads are
bounded, and a crowd of half-open connections does not lock out a working client."""

from __future__ import annotations

import json

from airflow_provider_pinpoint.emulator import Limits, run_emulator
from tests.helpers.wire import APP, connect, event, exchange, pinpoint_client, read_until_closed

_HALF_OPEN = 50


def test_half_open_connections_are_answered_408_and_closed_while_others_are_served():
    with run_emulator(limits=Limits(request_timeout_s=1, idle_timeout_s=5)) as emu:
        client = pinpoint_client(emu.url)
        slow = [connect(emu.url, timeout=5) for _ in range(_HALF_OPEN)]
        try:
            for sock in slow:
                sock.sendall(b"POST /v1/apps/app-1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            client.put_events(
                ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
            )
            answers = [read_until_closed(sock) for sock in slow]
        finally:
            for sock in slow:
                sock.close()
        assert emu.stats()["events_accepted"] == 1
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)


def test_connection_that_sends_nothing_is_closed_after_the_idle_timeout():
    with run_emulator(limits=Limits(idle_timeout_s=0.3)) as emu, connect(emu.url, timeout=5) as sock:
        assert read_until_closed(sock) == b""


def test_keep_alive_connection_is_closed_after_the_idle_timeout():
    with run_emulator(limits=Limits(idle_timeout_s=0.3)) as emu, connect(emu.url, timeout=5) as sock:
        sock.sendall(b"GET /_emulator/config HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: keep-alive" in received


def test_a_connection_beyond_the_limit_closes_the_one_idle_longest():
    with run_emulator(limits=Limits(max_connections=5)) as emu:
        idle = [connect(emu.url, timeout=5) for _ in range(5)]
        try:
            assert exchange(emu.url, "GET", "/_emulator/stats")[0] == 200
            assert read_until_closed(idle[0]) == b""
        finally:
            for sock in idle:
                sock.close()


def test_oversized_header_is_431_and_the_connection_closed(emulator):
    with connect(emulator.url) as sock:
        sock.sendall(
            b"GET /_emulator/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"x" * (1024 * 1024) + b"\r\n\r\n"
        )
        received = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 431 ")
    assert b"Connection: close" in received
    assert "65536 bytes" in json.loads(received.partition(b"\r\n\r\n")[2])["Message"]


def test_oversized_url_is_414_and_the_connection_closed(emulator):
    with connect(emulator.url) as sock:
        sock.sendall(b"GET /_emulator/stats?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 414 ")
    assert b"Connection: close" in received


def test_limits_reach_an_emulator_in_a_subprocess():
    with run_emulator(subprocess=True, limits=Limits(max_url_bytes=100)) as emu:
        status, _ = exchange(emu.url, "GET", "/_emulator/stats?" + "q" * 200)
    assert status == 414


def test_many_pipelined_requests_in_one_write_are_not_taken_for_one_long_head():
    with run_emulator(limits=Limits(max_header_bytes=1024)) as emu, connect(emu.url) as sock:
        request = b"GET /_emulator/config HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sock.sendall(request * 100 + b"GET /_emulator/config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = read_until_closed(sock)
    assert received.count(b"HTTP/1.1 200 ") == 101

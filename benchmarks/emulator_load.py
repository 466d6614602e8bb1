"""How many PutEvents requests per second the emulator sustains.

A bounded load: ``--requests`` PutEvents of ``--events`` events each (50 endpoints per request,
every event id unique), sent over keep-alive connections by ``--clients`` client processes with
raw HTTP and a SigV4-shaped Authorization header, so the client side costs little next to the
server. The emulator runs in its own process (``run_emulator(subprocess=True)``) unless ``--url``
points at one already running. Prints requests/s and events/s, and checks the emulator's own
counters agree with what was sent.

    .venv/bin/python benchmarks/emulator_load.py --requests 20000 --clients 2 --no-validate
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import socket
import time
from contextlib import nullcontext
from urllib.parse import urlsplit

import psutil

from airflow_provider_pinpoint.emulator import EmulatorClient, run_emulator

APP = "load-app"
_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/mobiletargeting/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)


def body_template(events: int, endpoints: int = 50) -> bytes:
    """One request body with ``@@`` where the request number goes, so every event id is unique."""
    batch: dict = {}
    for n in range(events):
        entry = batch.setdefault(f"ep-@@-{n % endpoints:03d}", {"Endpoint": {}, "Events": {}})
        entry["Events"][f"ev-@@-{n:03d}"] = {
            "EventType": "purchase",
            "Timestamp": "2026-01-02T03:04:05.678Z",
            "Attributes": {"sku": f"sku-{n}", "channel": "web", "campaign": "spring"},
            "Metrics": {"price": 9.99, "quantity": 2.0},
            "Session": {"Id": "session-@@", "StartTimestamp": "2026-01-02T03:00:00.000Z"},
        }
    return json.dumps({"BatchItem": batch}, separators=(",", ":")).encode()


def client_process(url: str, numbers: range, events: int, out: multiprocessing.Queue) -> None:
    """Send one request per number over one keep-alive connection; report (sent, non-202, CPU seconds).

    A minimal HTTP/1.1 client on a plain socket: http.client's header parsing would cost more CPU
    than the emulator's whole request on this small machine, and the point is to measure the server.
    """
    cpu_start = time.process_time()
    template = body_template(events)
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = (
        f"POST /v1/apps/{APP}/events HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: {AUTHORIZATION}\r\n"
    ).encode()
    failures = 0
    for number in numbers:
        body = template.replace(b"@@", str(number).encode())
        sock.sendall(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body))
        failures += _read_response(sock) != 202
    sock.close()
    out.put((len(numbers), failures, time.process_time() - cpu_start))


def _read_response(sock: socket.socket) -> int:
    """Read one whole answer; return its status code."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the emulator closed the connection")
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    length = int(_CONTENT_LENGTH.search(head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head[9:12])


def run_load(url: str, requests: int, events: int, clients: int) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    shares = [range(i, requests, clients) for i in range(clients)]
    processes = [multiprocessing.Process(target=client_process, args=(url, share, events, queue)) for share in shares]
    start = time.perf_counter()
    for process in processes:
        process.start()
    results = [queue.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - start
    for process in processes:
        process.join()
    sent = sum(n for n, _, _ in results)
    return {
        "requests": sent,
        "events_per_request": events,
        "clients": clients,
        "non_202": sum(f for _, f, _ in results),
        "client_cpu_us_per_request": round(sum(cpu for _, _, cpu in results) / sent * 1e6, 1),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(sent / elapsed, 1),
        "events_per_s": round(sent * events / elapsed, 1),
    }


def _emulator_process() -> psutil.Process:
    """The emulator subprocess run_emulator started (our only child running the emulator module)."""
    for child in psutil.Process().children():
        if "airflow_provider_pinpoint.emulator" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("emulator subprocess not found")


def _cpu_seconds(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="total requests (at most 200,000)")
    parser.add_argument("--events", type=int, default=100, help="events per request")
    parser.add_argument("--clients", type=int, default=2, help="client processes, one connection each")
    parser.add_argument("--no-validate", action="store_true", help="start the emulator with validation off")
    parser.add_argument("--store", help="SQLite store for the emulator it starts (default: in memory)")
    parser.add_argument("--url", help="load an emulator already running here instead of starting one")
    args = parser.parse_args()
    requests = min(args.requests, 200_000)
    started = (
        nullcontext(EmulatorClient(args.url))
        if args.url
        else run_emulator(validate=not args.no_validate, store=args.store, subprocess=True)
    )
    with started as emu:
        emu.reset()
        emu.configure(validate=not args.no_validate)
        # A short warm-up so connection set-up and first-call costs are not timed.
        run_load(emu.url, min(200, requests), args.events, args.clients)
        emu.reset()
        emu.configure(validate=not args.no_validate)
        server = None if args.url else _emulator_process()
        cpu_before = _cpu_seconds(server)
        result = run_load(emu.url, requests, args.events, args.clients)
        if server is not None:
            # Server CPU per request: what the emulator costs, whatever else the machine is doing.
            result["server_cpu_us_per_request"] = round((_cpu_seconds(server) - cpu_before) / requests * 1e6, 1)
        stats = emu.stats()
    result["validate"] = not args.no_validate
    result["store"] = "sqlite" if args.store else "memory"
    result["recorded_events"] = stats["events_accepted"]
    result["recorded_all"] = stats["events_accepted"] == requests * args.events
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Client CPU of one direct PutEvents request: the HTTP session's ``send`` against the lean exchange.

Run as ``python -m benchmarks.direct_exchange``. Both send the same 100-event bodies through
:class:`RawPutEvents` on its direct path to an emulator in its own process (validation off, no
latency, so the server's CPU is not ours). ``session_send``
sends each signed request with ``client._endpoint.http_session.send`` (botocore's urllib3 path, as
before ``sinks/http_exchange.py``); ``exchange`` sends it over the same kind of client's connection
pool with the lean exchange, as the loader does. The two take turns, ``--rounds`` times each, so a
busy machine weighs on both alike; the figures are microseconds of process CPU per request.
"""

from __future__ import annotations

import argparse
import json
import time
from unittest import mock

from airflow_provider_pinpoint.emulator import run_emulator
from airflow_provider_pinpoint.sinks import direct_send
from airflow_provider_pinpoint.sinks.raw_body import RawPutEvents
from benchmarks.put_events_cost import APP, _client, batch_items


def measure(url: str, requests: int, rounds: int) -> dict[str, list[float]]:
    """CPU microseconds per request of each path, one figure per round."""
    bodies = [json.dumps({"BatchItem": batch}, separators=(",", ":")).encode() for batch in batch_items(50)]
    exchange = RawPutEvents(_client(url))
    session_send = RawPutEvents(_client(url))
    with mock.patch.object(direct_send, "pool_exchange", lambda *args: None):
        session_send.send(APP, bodies[0])  # its target's exchange is settled as "none": the session's send
    exchange.send(APP, bodies[0])
    if not (exchange.direct and session_send.direct):
        raise SystemExit("the direct path was refused for a plain client: see sinks/direct_send.py")
    figures: dict[str, list[float]] = {"session_send": [], "exchange": []}
    for _ in range(rounds):
        for name, raw in (("session_send", session_send), ("exchange", exchange)):
            cpu = time.process_time()
            for i in range(requests):
                raw.send(APP, bodies[i % len(bodies)])
            figures[name].append((time.process_time() - cpu) * 1e6 / requests)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="100-event requests per path and round (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="turns each path takes (default 3)")
    args = parser.parse_args(argv)
    with run_emulator(validate=False, subprocess=True) as emu:
        figures = measure(emu.url, args.requests, args.rounds)
    means = {name: sum(values) / len(values) for name, values in figures.items()}
    for name, values in figures.items():
        rounds = " ".join(f"{value:.0f}" for value in values)
        print(f"{name:14} {means[name]:7.0f} us CPU/request (rounds: {rounds})")
    saved = means["session_send"] - means["exchange"]
    print(f"{'saved':14} {saved:7.0f} us CPU/request, {saved / 100:.1f} us/event")


if __name__ == "__main__":
    main()

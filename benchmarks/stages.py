"""Client CPU per event, stage by stage, on the harness's generated data: where the loader's time goes.

Each stage runs alone on the same input, against an emulator in its own process (validation off,
no latency unless ``--latency-ms``), and is timed with the process's CPU clock; 1 to 3 run in one
thread, 4 with the loader's default number of requests in flight (16):

1. ``prepare``: read Parquet, validate, reshape, pack, build the request bodies (``pipeline.prepare``);
2. ``raw send``: sign and send the bodies and decode the answers (``RawPutEvents.send``);
3. ``transport``: 2 + checking that the answer accepted every item (``PutEventsTransport.send``,
   ``Response.common_success``);
4. ``load_events``: the whole public call (threads, rate limiter, bookkeeping, results file).

What 4 costs beyond 1 + 3 is the sending engine and the results table. cProfile's own overhead
distorts per-function shares of a Python-heavy loop; these figures are without a profiler. On a
shared machine CPU time per event varies with the neighbours' load, hence ``--repeat``.

With latency, 2 and 3 wait idle between requests, and on this kind of virtual machine a thread
that has waited runs the same code about twice as slowly (most likely its caches went cold while
the virtual CPU idled): ``raw send`` doubles, and the subtraction above no longer isolates the
engine. That is what ``--latency-ms`` is for: showing how much of the harness's throughput figure
(20 ms latency) is that effect.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import boto3
import datagen

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.emulator import run_emulator
from airflow_provider_pinpoint.prepare.flow import prepare
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.sending.client import client_config
from airflow_provider_pinpoint.sinks.putevents import PutEventsTransport
from airflow_provider_pinpoint.sinks.raw_body import RawPutEvents

APP = "bench-stages"


def _timed(work):
    started = time.process_time()
    result = work()
    return result, time.process_time() - started


def measure(directory: Path, events: int, endpoints: int, seed: int = 0, latency_ms: float = 0) -> dict[str, float]:
    """CPU seconds per stage (see the module docstring) on ``events`` / ``endpoints`` generated rows,
    with the emulator answering after ``latency_ms`` on average."""
    dataset = datagen.generate(directory, events=events, endpoints=endpoints, seed=seed)
    requests, cpu_prepare = _timed(
        lambda: [out for out in prepare(str(dataset.events), str(dataset.endpoints)) if isinstance(out, Request)]
    )
    bodies = [request.body() for request in requests]  # built while packing
    figures = {"prepare": cpu_prepare}
    with run_emulator(validate=False, latency_ms=latency_ms, subprocess=True) as emu:
        client = boto3.client(
            "pinpoint",
            endpoint_url=emu.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=client_config(8),
        )
        raw = RawPutEvents(client)
        transport = PutEventsTransport(client)

        def fresh() -> None:
            emu.reset()
            emu.configure(validate=False, latency_ms=latency_ms)

        # Each answer is dropped as soon as it is used, as the loader does: keeping 2,000 decoded
        # answers alive made every garbage collection walk them, about 3 µs/event more.
        def send_raw() -> None:
            for body in bodies:
                raw.send(APP, body)

        def send_transport() -> None:
            for request in requests:
                transport.send(APP, request).common_success(request)

        _, figures["raw send"] = _timed(send_raw)
        fresh()
        _, figures["transport"] = _timed(send_transport)
        fresh()
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        _, figures["load_events"] = _timed(
            lambda: load_events(
                str(dataset.events),
                str(dataset.endpoints),
                application_id=APP,
                results=str(directory / "results.parquet"),
                endpoint_url=emu.url,
                region_name="us-east-1",
                requests_per_second=1_000_000,
                progress=False,
            )
        )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--endpoints", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=0, help="the emulator's mean latency (default 0)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs; the least disturbed (lowest) figure of each stage is kept"
    )
    parser.add_argument("--json", help="also write the figures to this file, as JSON (read by charts.py)")
    args = parser.parse_args(argv)
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="pinpoint-stages-") as tmp:
            runs.append(measure(Path(tmp), args.events, args.endpoints, latency_ms=args.latency_ms))
    figures = {name: min(run[name] for run in runs) for name in runs[0]}
    per_event = {name: seconds * 1e6 / args.events for name, seconds in figures.items()}
    per_event["classify"] = per_event["transport"] - per_event["raw send"]
    per_event["engine + results"] = per_event["load_events"] - per_event["prepare"] - per_event["transport"]
    print(
        f"client CPU µs per event, {args.events:,} events / {args.endpoints:,} endpoints, {args.latency_ms:g} ms latency"
    )
    order = ("prepare", "raw send", "classify", "engine + results", "load_events")
    for name in order:
        print(f"  {name:18} {per_event[name]:6.1f}")
    if args.json:
        figures_json = {
            "events": args.events,
            "endpoints": args.endpoints,
            "latency_ms": args.latency_ms,
            "repeat": args.repeat,
            "per_event_us": {name: per_event[name] for name in order},
            "cpu_s_per_run": runs,
        }
        Path(args.json).write_text(json.dumps(figures_json, indent=1) + "\n")


if __name__ == "__main__":
    main()

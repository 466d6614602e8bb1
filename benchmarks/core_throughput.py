"""Throughput of the columnar core: read (Parquet) + validate + reshape + pack, no sending.

    .venv/bin/python benchmarks/core_throughput.py                 # 1,000,000 events / 100,000 endpoints
    .venv/bin/python benchmarks/core_throughput.py --events 100000 --endpoints 10000   # a quick run

Prints events/s of :func:`airflow_provider_pinpoint.prepare.flow.prepare` next to the pandas ``iterrows``
reshaping of the reference script (``baseline.py``: merge events with their endpoints, one dict per
row, ``json.dumps``, 100 events per request), measured in the same run on the same seeded data. The
``iterrows`` version is timed on the first ``--baseline-rows`` events (default 50,000) and its rate
extrapolated: at a few thousand rows a second, the full table would take minutes.

By default the input's ``EventId`` column is dropped, so the loader also derives every event id (its
slowest path); ``--given-event-ids`` keeps them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import datagen
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from baseline import _endpoint_map, _event_map

from airflow_provider_pinpoint.prepare.flow import prepare
from airflow_provider_pinpoint.prepare.requests import Request


def run_core(dataset: datagen.Dataset, given_event_ids: bool) -> tuple[float, float, int, int, int]:
    """Wall seconds, CPU seconds, requests, events packed and rows rejected for the whole table."""
    mapping = None if given_event_ids else {"events": {"EventId": None}}
    requests = events = rejected = 0
    cpu = time.process_time()
    started = time.perf_counter()
    for out in prepare(str(dataset.events), str(dataset.endpoints), column_mapping=mapping):
        if isinstance(out, Request):
            requests += 1
            events += out.event_count
        else:
            rejected += len(out)
    return time.perf_counter() - started, time.process_time() - cpu, requests, events, rejected


def run_iterrows(dataset: datagen.Dataset, rows: int) -> tuple[float, int]:
    """Seconds and requests for the reference reshaping of the first ``rows`` events."""
    started = time.perf_counter()
    events = pq.read_table(dataset.events).slice(0, rows).to_pandas()
    endpoints = pq.read_table(dataset.endpoints).to_pandas().add_prefix("endpoint.")
    merged = events.merge(endpoints, left_on="EndpointId", right_on="endpoint.Id", how="left")
    event_columns = list(events.columns)
    endpoint_columns = list(endpoints.columns)
    grouped: dict[str, dict] = defaultdict(lambda: {"Endpoint": {}, "Events": {}})
    for _, row in merged.iterrows():
        entry = grouped[row["EndpointId"]]
        if not entry["Endpoint"]:
            entry["Endpoint"] = _endpoint_map(row, endpoint_columns)
        entry["Events"][row["EventId"]] = _event_map(row, event_columns)
    requests = 0
    batch: dict[str, dict] = {}
    count = 0
    for endpoint_id, entry in grouped.items():
        for event_id, event in entry["Events"].items():
            if count == 100:
                json.dumps({"BatchItem": batch})
                requests, batch, count = requests + 1, {}, 0
            batch.setdefault(endpoint_id, {"Endpoint": entry["Endpoint"], "Events": {}})["Events"][event_id] = event
            count += 1
    if batch:
        json.dumps({"BatchItem": batch})
        requests += 1
    return time.perf_counter() - started, requests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--endpoints", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--given-event-ids", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        dataset = datagen.generate(Path(work), events=args.events, endpoints=args.endpoints, seed=args.seed)
        gc.collect()
        load = os.getloadavg()[0]
        seconds, cpu_seconds, requests, events, rejected = run_core(dataset, args.given_event_ids)
        baseline_rows = min(args.baseline_rows, args.events)
        gc.collect()
        baseline_seconds, _ = run_iterrows(dataset, baseline_rows)
    core_rate = args.events / seconds
    baseline_rate = baseline_rows / baseline_seconds
    print(
        f"machine: {platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}, pandas {pd.__version__}, "
        f"pyarrow {pa.__version__}; load average {load:.1f} when the core run started"
    )
    print(
        f"input: {args.events:,} events / {args.endpoints:,} endpoints (seed {args.seed}), "
        f"event ids {'given' if args.given_event_ids else 'derived'}"
    )
    print(
        f"core (read+validate+reshape+pack): {seconds:.2f} s wall, {core_rate:,.0f} events/s "
        f"({cpu_seconds:.2f} s CPU, {args.events / cpu_seconds:,.0f} events per CPU-second), "
        f"{requests:,} requests, {events:,} events packed, {rejected:,} rejected"
    )
    print(
        f"pandas iterrows reshaping: {baseline_rows:,} events in {baseline_seconds:.2f} s, "
        f"{baseline_rate:,.0f} events/s (extrapolated rate)"
    )
    print(f"speed-up: {core_rate / baseline_rate:.1f}x")


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()

"""Peak RSS of ``flow.prepare`` alone (read, validate, reshape, pack; no sending), and where it is reached.

The harness's ``memory`` scenario gives the whole loader's peak; this isolates the part that grows
with the input. A thread samples the process's RSS every 10 ms and remembers what the main loop was
doing at the highest sample: ``start`` (the endpoints table and the first event batches, before
the first request) or the number of the request just yielded.

    .venv/bin/python benchmarks/prepare_memory.py --events 5000000 --endpoints 500000
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import datagen

from airflow_provider_pinpoint.prepare import flow
from airflow_provider_pinpoint.prepare.requests import Request


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--endpoints", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        # Generated in a child process, so that this process's peak is prepare's own.
        sizes = {"events": args.events, "endpoints": args.endpoints, "seed": args.seed}
        child = multiprocessing.get_context("spawn").Process(target=datagen.generate, args=(Path(work),), kwargs=sizes)
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit(f"generating the data failed (exit code {child.exitcode})")
        events, endpoints = Path(work) / "events.parquet", Path(work) / "endpoints.parquet"
        stage, highest, done = ["start"], [0.0, "start"], threading.Event()

        def watch() -> None:
            while not done.is_set():
                rss = _rss_mb()
                if rss > highest[0]:
                    highest[:] = [rss, stage[0]]
                time.sleep(0.01)

        before = _rss_mb()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        requests = 0
        for out in flow.prepare(str(events), str(endpoints)):
            if isinstance(out, Request):
                requests += 1
                stage[0] = f"request {requests:,}"
        done.set()
        watcher.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.events:,} events / {args.endpoints:,} endpoints: {requests:,} requests; RSS {before:.0f} MB "
        f"before prepare, peak {peak:.0f} MB (highest sample {highest[0]:.0f} MB at {highest[1]})"
    )


if __name__ == "__main__":
    main()

"""Client CPU per record on the Kinesis and Firehose sinks against client CPU per event on PutEvents.

    .venv/bin/python benchmarks/stream_cpu.py                       # 100,000 events / 10,000 endpoints
    .venv/bin/python benchmarks/stream_cpu.py --events 20000 --endpoints 2000   # a quick run

The same seeded tables (``datagen.py``) go through ``load_events`` three times in this process, each
load timed by the process's CPU clock (all threads: reading, validation, JSON, packing, boto3, the
results table): into the PutEvents emulator (``pinpoint-emulator --no-validate`` in its own
process), and into a Kinesis stream and a Firehose delivery stream on moto's server (its own
process, serving one request at a time). The servers' CPU is not the client's and is not counted.
moto is slow and enforces no quota, so its wall-clock rates say nothing about Kinesis: only CPU is
reported, per input row (each row is one event in a request, or one record), with the ratio of
each stream sink to PutEvents measured in the same run. Each load runs twice and the second round
counts: the first pays for imports and first-use set-up.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import datagen
import requests

from airflow_provider_pinpoint import load_events

ROOT = Path(__file__).resolve().parents[1]
_MOTO = """
import sys
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)
"""
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url}")


def _timed(**options: object) -> tuple[float, int]:
    """CPU seconds of one load and the rows it accepted."""
    started = time.process_time()
    report = load_events(progress=False, **options)  # type: ignore[arg-type]
    cpu = time.process_time() - started
    assert report.summary.failed == 0, report.summary
    return cpu, report.summary.accepted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--endpoints", type=int, default=10_000)
    args = parser.parse_args(argv)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    work = Path(tempfile.mkdtemp(prefix="stream-cpu-"))
    data = datagen.generate(work / "data", events=args.events, endpoints=args.endpoints)
    tables = {"events": str(data.events), "endpoints": str(data.endpoints), "application_id": "bench"}
    emulator_port, moto_port = _port(), _port()
    emulator = subprocess.Popen(
        [str(ROOT / ".venv/bin/pinpoint-emulator"), "--port", str(emulator_port), "--no-validate"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    moto = subprocess.Popen(
        [sys.executable, "-c", _MOTO, str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        emulator_url, moto_url = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{moto_port}"
        _wait(emulator_url, emulator)
        _wait(f"{moto_url}/moto-api/", moto)
        unlimited = {"records_per_second": 1e9, "bytes_per_second": 1e12, "requests_per_second": 1e6}

        def runs(round_: int) -> dict[str, dict[str, object]]:
            """Fresh streams each round: moto's Kinesis slows down as a shard fills up."""
            name = f"bench-{round_}"
            kinesis = boto3.client("kinesis", endpoint_url=moto_url, region_name="us-east-1", **KEYS)
            kinesis.create_stream(StreamName=name, ShardCount=16)
            kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
            s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", **KEYS)
            s3.create_bucket(Bucket=name)
            boto3.client("firehose", endpoint_url=moto_url, region_name="us-east-1", **KEYS).create_delivery_stream(
                DeliveryStreamName=name,
                ExtendedS3DestinationConfiguration={
                    "RoleARN": "arn:aws:iam::123456789012:role/bench",
                    "BucketARN": f"arn:aws:s3:::{name}",
                },
            )
            return {
                "putevents": {"endpoint_url": emulator_url, "requests_per_second": 1e6},
                "kinesis": {"endpoint_url": moto_url, "sink": "kinesis", "stream_name": name, **unlimited},
                "firehose": {"endpoint_url": moto_url, "sink": "firehose", "delivery_stream_name": name, **unlimited},
            }

        figures: dict[str, float] = {}
        # Two rounds: the first also pays for imports and first-use set-up, whichever sink goes first.
        for round_ in (1, 2):
            for name, options in runs(round_).items():
                results = str(work / f"{name}-{round_}.parquet")
                cpu, rows = _timed(**tables, **options, region_name="us-east-1", results=results)
                figures[name] = cpu / rows * 1e6
                print(
                    f"round {round_} {name:<10} {rows:>9,} rows accepted  {cpu:6.2f} s CPU  "
                    f"{figures[name]:6.2f} us CPU per row",
                    flush=True,
                )
        for name in ("kinesis", "firehose"):
            print(f"{name} / putevents CPU per row: {figures[name] / figures['putevents']:.2f}")
    finally:
        for process in (emulator, moto):
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()

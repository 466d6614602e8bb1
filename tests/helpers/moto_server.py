"""moto's server on loopback, for the Kinesis and Firehose sinks: the fixture, and helpers that create
a stream or a delivery stream and read back every record that reached it.

moto is a development dependency only (the lean install has no moto): nothing here imports it at
module level, so ``tests/conftest.py`` can export the fixture everywhere. The server runs as a
subprocess, not a thread of the test process, so it does not compete with the loader for the test
process's GIL and is stopped, whatever happens, at the end of the session.

It is moto's own application (what ``moto_server`` runs) served one request at a time: moto's
Kinesis numbers a shard's records without a lock, so two PutRecords answered at once on one shard
can get the same sequence number, and one record silently replaces the other. Served in turn,
the loader still sends with all its threads, and every record it was told was stored is there.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

REGION = "us-east-1"
# moto accepts any credentials; fixed ones keep the tests independent of the machine's AWS settings.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_START_TIMEOUT_S = 30.0


# moto.server.main without its threads (see the module's docstring).
_SERVE = """
import sys
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server (Kinesis, Firehose, S3 and the rest) on a free loopback port for the session;
    yields its base URL (``http://127.0.0.1:PORT``). Skips where moto is not installed (the lean venv)."""
    # Only looked up, not imported: importing moto adds its mock handler to every botocore session made
    # afterwards in this process, which would send the loader's clients down their fallback path.
    if importlib.util.find_spec("moto") is None:
        pytest.skip("moto[server] is a development dependency")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited at start-up with code {process.returncode}")
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"moto's server did not answer at {url} within {_START_TIMEOUT_S:.0f} s")


def moto_client(url: str, service: str) -> Any:
    """A boto3 client for ``service`` on moto's server."""
    return boto3.client(service, endpoint_url=url, region_name=REGION, **CREDENTIALS)


def unique_name(prefix: str) -> str:
    """A stream, delivery stream or bucket name no other test uses (moto's state lives for the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_stream(url: str, name: str | None = None, *, shards: int = 2) -> str:
    """A Kinesis data stream with ``shards`` shards, once it is ACTIVE; its name."""
    name = name or unique_name("stream")
    kinesis = moto_client(url, "kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    return name


def create_delivery_stream(url: str, name: str | None = None) -> tuple[str, str]:
    """A Firehose delivery stream (DirectPut) delivering to a new S3 bucket; (stream name, bucket name)."""
    name = name or unique_name("firehose")
    bucket = unique_name("deliveries")
    moto_client(url, "s3").create_bucket(Bucket=bucket)
    moto_client(url, "firehose").create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-test",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        },
    )
    return name, bucket


def stream_records(url: str, name: str) -> list[dict[str, Any]]:
    """Every record in a Kinesis stream: each shard (ListShards) read from TRIM_HORIZON with
    GetRecords until it has nothing more; each as ``{"partition_key", "shard_id", "sequence_number", "data"}``."""
    kinesis = moto_client(url, "kinesis")
    shards: list[dict[str, Any]] = []
    page = kinesis.list_shards(StreamName=name)
    shards += page["Shards"]
    while page.get("NextToken"):
        page = kinesis.list_shards(NextToken=page["NextToken"])
        shards += page["Shards"]
    records: list[dict[str, Any]] = []
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += [
                {
                    "partition_key": record["PartitionKey"],
                    "shard_id": shard["ShardId"],
                    "sequence_number": record["SequenceNumber"],
                    "data": record["Data"],
                }
                for record in answer["Records"]
            ]
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
    return records


def bucket_objects(url: str, bucket: str) -> list[bytes]:
    """The bodies of every object in ``bucket``, in key order."""
    s3 = moto_client(url, "s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [entry["Key"] for entry in page.get("Contents", [])]
    return [s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in sorted(keys)]


def delivered_lines(url: str, bucket: str) -> list[dict[str, Any]]:
    """Every JSON Lines record Firehose delivered to ``bucket``, decoded, in delivery order."""
    return [json.loads(line) for body in bucket_objects(url, bucket) for line in body.splitlines() if line.strip()]


def decoded(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON of each Kinesis record's data."""
    return [json.loads(record["data"]) for record in records]

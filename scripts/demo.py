"""`make demo`: the daily example DAG, run by real Airflow against a local Pinpoint emulator; then the
same tables into a Kinesis stream on moto's server.

Starts the emulator on a free loopback port, prepares a SQLite Airflow home in ./airflow_home
(git-ignored), runs ``airflow dags test pinpoint_daily_load 2026-11-24`` with the ``aws`` connection
given as an AIRFLOW_CONN_* variable pointing at the emulator, then prints the load summary, where
the results table is and what the emulator received. Then it starts moto's server on a free
loopback port, creates a Kinesis stream, loads the same day's tables into it with ``load_events``
(a second Airflow start-up would double the demo's time; the ``pinpoint_to_kinesis`` DAG and its
test show the operator), and prints the summary, where the results are and a few records read back.
Both servers are always stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from airflow_provider_pinpoint.emulator import run_emulator

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = REPO / "airflow_home"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAILY = REPO / "sample_data" / "daily"
DAG_ID = "pinpoint_daily_load"
LOGICAL_DATE = "2026-11-24"
APPLICATION_ID = "demo-app"
STREAM = "pinpoint-events"
SHARDS = 2
EVENTS_SHOWN = 2
ENDPOINT_RECORD = "_endpoint.update"  # the event type of the record an endpoint row becomes
SUMMARY_MARK = "Summary: "
# Demo credentials: the local servers accept any.
CREDENTIALS = {"login": "demo-access-key", "password": "demo-secret-key"}
REGION = "us-east-1"


def main() -> int:
    started = time.monotonic()
    results_dir = AIRFLOW_HOME / "results"
    kinesis_results = AIRFLOW_HOME / "kinesis-results" / f"date={LOGICAL_DATE}" / "results.parquet"
    for directory in (results_dir, kinesis_results.parent.parent):  # a fresh demo sends everything again
        shutil.rmtree(directory, ignore_errors=True)
    AIRFLOW_HOME.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    step(f"Airflow home {AIRFLOW_HOME.relative_to(REPO)}/: airflow db migrate (SQLite)")
    if not run([AIRFLOW, "db", "migrate"], env, AIRFLOW_HOME / "db-migrate.log"):
        return 1
    with run_emulator(subprocess=True) as emulator:
        step(f"Pinpoint emulator serving on {emulator.url}")
        env["AIRFLOW_CONN_PINPOINT_DEFAULT"] = json.dumps(aws_connection(emulator.url))
        conf = {"application_id": APPLICATION_ID, "results_dir": str(results_dir)}
        step(f"airflow dags test {DAG_ID} {LOGICAL_DATE}")
        log = AIRFLOW_HOME / "dags-test.log"
        if not run([AIRFLOW, "dags", "test", DAG_ID, LOGICAL_DATE, "--conf", json.dumps(conf)], env, log):
            return 1
        summary = summary_from(log.read_text())
        stats = emulator.stats()
        received = len(emulator.events(APPLICATION_ID)), len(emulator.endpoints(APPLICATION_ID))
    results = results_dir / f"date={LOGICAL_DATE}" / "results.parquet"
    step("Summary (the task's XCom)")
    show_summary(summary)
    show_results(results)
    step(f"Emulator received for {APPLICATION_ID}: {received[0]} events, {received[1]} endpoints")
    print("  " + json.dumps(stats))
    kinesis_part(kinesis_results)
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s. Task log: {log.relative_to(REPO)}")
    return 0


def kinesis_part(results: Path) -> None:
    """The same day's tables into a Kinesis stream on moto's server, as ``load_events`` in a notebook
    (the example DAG ``pinpoint_to_kinesis`` does the same with the Kinesis operator), then a few
    records read back from the stream."""
    from airflow_provider_pinpoint import load_events

    with moto_server() as moto_url:
        kinesis = kinesis_client(moto_url)
        kinesis.create_stream(StreamName=STREAM, ShardCount=SHARDS)
        kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
        step(f"Kinesis: stream {STREAM} ({SHARDS} shards) on moto's server, on a free loopback port")
        print(f"  load_events(..., sink='kinesis', stream_name='{STREAM}'): the tables of {LOGICAL_DATE}")
        began = time.monotonic()
        report = load_events(
            DAILY / "events" / f"date={LOGICAL_DATE}",
            DAILY / "endpoints" / f"date={LOGICAL_DATE}",
            application_id=APPLICATION_ID,
            results=results,
            sink="kinesis",
            stream_name=STREAM,
            endpoint_url=moto_url,
            session=kinesis_session(),
            run_id="demo-kinesis",
        )
        print(f"  done in {time.monotonic() - began:.0f} s")
        records = first_records(kinesis, STREAM)
    step(f"Kinesis: summary, stream {STREAM}")
    show_summary(report.summary.to_dict())
    show_results(results)
    step(f"{len(records)} records of the stream's first shard, read back with GetRecords (no addresses)")
    for partition_key, record in records:
        print(f"  partition key {partition_key}:")
        print("    " + json.dumps(without_addresses(record), sort_keys=True))


def aws_connection(url: str) -> dict[str, Any]:
    """An ``aws`` connection to a local server, as an AIRFLOW_CONN_* variable holds it."""
    return {"conn_type": "aws", **CREDENTIALS, "extra": {"endpoint_url": url, "region_name": REGION}}


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server (``python -m moto.server``) on a free loopback port; yields its URL, stops it after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print("moto's server stopped")


def kinesis_session() -> Any:
    """A boto3 session with the demo's credentials and region (moto accepts any)."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=CREDENTIALS["login"], aws_secret_access_key=CREDENTIALS["password"], region_name=REGION
    )


def kinesis_client(url: str) -> Any:
    return kinesis_session().client("kinesis", endpoint_url=url)


def first_records(kinesis: Any, stream: str) -> list[tuple[str, dict[str, Any]]]:
    """(partition key, decoded JSON) of a few records of the stream's first shard: the first
    ``EVENTS_SHOWN`` events and the first endpoint record (``_endpoint.update``)."""
    [shard, *_] = kinesis.list_shards(StreamName=stream)["Shards"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    answer = kinesis.get_records(ShardIterator=iterator, Limit=1000)
    records = [(record["PartitionKey"], json.loads(record["Data"])) for record in answer["Records"]]
    events = [record for record in records if record[1].get("event_type") != ENDPOINT_RECORD]
    endpoints = [record for record in records if record[1].get("event_type") == ENDPOINT_RECORD]
    return events[:EVENTS_SHOWN] + endpoints[:1]


def without_addresses(value: Any) -> Any:
    """The record with any endpoint address (email, phone number, device token) left out, for printing."""
    if isinstance(value, dict):
        return {key: without_addresses(item) for key, item in value.items() if key.lower() != "address"}
    if isinstance(value, list):
        return [without_addresses(item) for item in value]
    return value


def show_summary(summary: dict[str, Any]) -> None:
    for key, value in summary.items():
        print(f"  {key:>12}: {value}")


def show_results(results: Path) -> None:
    table = pd.read_parquet(results)
    step(f"Results table: {results.relative_to(REPO)} ({len(table)} rows, one per input row)")
    print(table.groupby(["record_type", "status"]).size().to_string())


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(command: list[str], env: dict[str, str], log: Path) -> bool:
    """Run an Airflow command with its output in ``log``; on failure show the end of it."""
    began = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    print(f"  done in {time.monotonic() - began:.0f} s (log: {log.relative_to(REPO)})")
    if code != 0:
        print(f"  FAILED with exit code {code}; last lines of the log:\n")
        print("\n".join(log.read_text().splitlines()[-40:]))
    return code == 0


def summary_from(log: str) -> dict:
    """The summary the operator logged (the same dict it returns to XCom)."""
    start = log.rindex(SUMMARY_MARK) + len(SUMMARY_MARK)
    summary, _ = json.JSONDecoder().raw_decode(log, start)
    return summary


if __name__ == "__main__":
    sys.exit(main())

"""Fault scenarios for the Kinesis and Firehose sinks: the loader against the emulator's stream side.

Each scenario loads the chaos dataset (generated events and endpoints plus rows validation must
refuse) into a Kinesis stream or a Firehose delivery stream that throttles, fails records, fails or
drops whole writes or loses answers, and then reconciles the input, the results table and the
records the stream holds:

- nothing lost: every valid input event id is in the stream at least once, with its event type,
  and its results row says ``accepted``;
- every input row has exactly one results row, with a final status (never ``failed``); the rows
  every sink's validation refuses (no event type, a timestamp that is no date) are ``rejected``;
- duplicates within a stated bound. Under faults the bound is the emulator's
  ``records_unanswered``: the records written by writes whose answer was lost, the only ones a
  client that resends just what it was not told succeeded can send twice. After ``kill -9`` and
  ``--resume`` it is the writes that can be in flight at the kill, ``max in flight x 500`` records
  (500 is the most a PutRecords or PutRecordBatch carries).

The full scenarios (20,000 events) run with ``make chaos``; a short one per sink runs in the
default suite. If the loader has no Kinesis or Firehose sink yet, these are skipped and say so.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint.emulator import EmulatorClient
from airflow_provider_pinpoint.load import load_events
from tests.chaos import runs
from tests.chaos.data import TABLE, Dataset, results_rows

APP = "chaos-streams"
STREAM = "chaos-stream"
FULL = 20_000
SHORT = 2_000
RECORDS_PER_REQUEST = 500  # the most a PutRecords or PutRecordBatch carries
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
SHARDS = 2
CRASH_IN_FLIGHT = 2
CRASH_RECORDS_PER_SECOND = 1000.0
KILL_POINT = 0.4  # of the valid events in the stream when the CLI gets SIGKILL
FINAL = {"accepted", "rejected", "unchanged", "already_sent"}


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: dict = field(default_factory=dict)
    max_attempts: int = 8


# The request-level rates are high because a load of 20,000 events is only some 40 to 100 writes.
COMMON = (
    Scenario("20% writes throttled whole", {"throttle_rate": 0.2}),
    Scenario("5% records InternalFailure", {"record_error_rate": 0.05}),
    Scenario("10% writes 500, 10% 503", {"error_rate": 0.1, "unavailable_rate": 0.1}),
    Scenario("10% connections dropped", {"drop_rate": 0.1}),
    Scenario("20% answers lost", {"lost_response_rate": 0.2, "lost_response_delay_ms": 200.0}),
)
ALL_AT_ONCE = {
    "throttle_rate": 0.1,
    "record_error_rate": 0.05,
    "error_rate": 0.05,
    "unavailable_rate": 0.05,
    "drop_rate": 0.05,
    "lost_response_rate": 0.1,
    "latency_ms": 50.0,
}
SCENARIOS = {
    "kinesis": (
        # Half of what the loader derives from the shard count: records fail on the shard budget.
        Scenario("shard budget 500 records/s", {"shard_records_per_second": 500.0}),
        *COMMON,
        Scenario("all at once", {**ALL_AT_ONCE, "shard_records_per_second": 500.0}, max_attempts=14),
    ),
    "firehose": (
        Scenario("delivery budget 1,000 records/s", {"firehose_records_per_second": 1000.0}),
        *COMMON,
        Scenario("all at once", {**ALL_AT_ONCE, "firehose_records_per_second": 1000.0}, max_attempts=14),
    ),
}
SINKS = tuple(SCENARIOS)


# -- the stream under test ---------------------------------------------------------------------


def _client(service: str, emu: EmulatorClient):
    return boto3.client(
        service,
        endpoint_url=emu.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_stream(sink: str, emu: EmulatorClient, name: str = STREAM, shards: int = SHARDS) -> None:
    if sink == "kinesis":
        _client("kinesis", emu).create_stream(StreamName=name, ShardCount=shards)
    else:
        _client("firehose", emu).create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="DirectPut")


def stream_records(sink: str, emu: EmulatorClient, name: str = STREAM) -> list[bytes]:
    records = emu.kinesis_records(name) if sink == "kinesis" else emu.firehose_records(name)
    return [record["data"] for record in records]


def stream_options(sink: str, name: str = STREAM) -> dict:
    return {"stream_name": name} if sink == "kinesis" else {"delivery_stream_name": name}


def _load(sink: str, emu: EmulatorClient, events: str, endpoints: str | None, results: Path, **options) -> dict:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    report = load_events(
        events=events,
        endpoints=endpoints,
        application_id=APP,
        results=str(results),
        session=session,
        endpoint_url=emu.url,
        progress=False,
        sink=sink,
        **stream_options(sink),
        **options,
    )
    return report.summary


@pytest.fixture(scope="session")
def sink_missing(
    chaos_emulator: EmulatorClient, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], str | None]:
    """Why a sink cannot be tested (it is not in the loader yet), or None: found by loading one event."""
    reasons: dict[str, str | None] = {}
    directory = tmp_path_factory.mktemp("probe")
    events = directory / "events.parquet"
    pq.write_table(
        pa.table(
            {"EndpointId": ["ep-1"], "EventId": ["ev-1"], "EventType": ["view"], "Timestamp": ["2026-01-01T00:00:00Z"]}
        ),
        events,
    )

    def missing(sink: str) -> str | None:
        if sink not in reasons:
            chaos_emulator.reset()
            create_stream(sink, chaos_emulator)
            if "sink" not in inspect.signature(load_events).parameters:
                reasons[sink] = "the loader has no sink option yet: load_events(sink=...) is not there"
                return reasons[sink]
            try:
                _load(sink, chaos_emulator, str(events), None, directory / f"{sink}.parquet")
            except NotImplementedError as exc:
                reasons[sink] = f"the loader has no working {sink} sink yet: {exc}"
            else:
                reasons[sink] = None
        return reasons[sink]

    return missing


@pytest.fixture
def ready(sink_missing, chaos_emulator: EmulatorClient) -> Callable[[str], None]:
    """Skip the test if ``sink`` is missing; else a reset emulator with the stream created."""

    def prepare(sink: str) -> None:
        reason = sink_missing(sink)
        if reason:
            pytest.skip(reason)
        chaos_emulator.reset()
        create_stream(sink, chaos_emulator, shards=SHARDS)

    return prepare


# -- reconciling -------------------------------------------------------------------------------


def reconcile(sink: str, records: list[bytes], data: Dataset, results: Path, duplicate_bound: int) -> dict:
    """Check the results table against the input and the stream's records; return the counts."""
    table = results_rows(results, data)
    unfinished = [row for row in table if row["status"] not in FINAL]
    assert unfinished == [], unfinished[:3]
    rejected = [row for row in table if row["status"] == "rejected"]
    assert all(row["source"].endswith("part-1.parquet") and row["message"] for row in rejected)
    # No event type and a timestamp that is no date are refused on every sink; an endpoint id with
    # "$" is a PutEvents rule that a stream sink may let through.
    refused = {row["event_id"] for row in rejected}
    bad = pq.read_table(data.events / "part-1.parquet").to_pylist()
    assert {row["EventId"] for row in bad if row["EndpointId"] != "bad$id"} <= refused

    given = pq.read_table(data.events / "part-0.parquet", columns=["EventId", "EventType"]).to_pylist()
    event_types = {row["EventId"]: row["EventType"] for row in given + bad}
    accepted = {row["event_id"] for row in table if row["record_type"] == "event" and row["status"] == "accepted"}
    assert {row["EventId"] for row in given} <= accepted, "a valid event is not accepted in the results table"
    assert accepted | refused == set(event_types)

    if sink == "firehose":
        assert all(record.endswith(b"\n") for record in records), "a Firehose record is not newline-terminated"
    delivered: Counter[str] = Counter()
    for record in records:
        body = json.loads(record)
        event_id = body.get("event_id")
        if event_id in accepted:
            assert body["event_type"] == event_types[event_id], body
            delivered[event_id] += 1
    lost = accepted - set(delivered)
    assert not lost, f"{len(lost)} valid events never reached the stream, e.g. {sorted(lost)[:3]}"
    duplicates = sum(count - 1 for count in delivered.values())
    assert duplicates <= duplicate_bound, f"{duplicates} duplicates, more than the bound of {duplicate_bound}"
    return {
        "accepted": sum(row["status"] == "accepted" for row in table),
        "rejected": len(rejected),
        "failed": sum(row["status"] == "failed" for row in table),
        "duplicates": duplicates,
    }


# -- scenarios ---------------------------------------------------------------------------------


def _scenario_params() -> list:
    params = []
    for sink, scenarios in SCENARIOS.items():
        params.append(pytest.param(sink, scenarios[-1], SHORT, id=f"{sink}-short-{scenarios[-1].name}"))
        params += [pytest.param(sink, s, FULL, marks=pytest.mark.chaos, id=f"{sink}-full-{s.name}") for s in scenarios]
    return params


@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("sink", "scenario", "events"), _scenario_params())
def test_every_valid_row_reaches_the_stream_under_faults(
    sink, scenario, events, ready, chaos_emulator, datasets, tmp_path
) -> None:
    ready(sink)
    data = datasets[events]
    chaos_emulator.configure(seed=events, **scenario.faults)
    results = tmp_path / "results.parquet"
    started = time.monotonic()
    summary = _load(
        sink, chaos_emulator, str(data.events), str(data.endpoints), results, max_attempts=scenario.max_attempts
    )
    seconds = time.monotonic() - started
    chaos_emulator.configure(**{name: 0.0 for name in ("drop_rate", "lost_response_rate")})
    bound = chaos_emulator.streams()["stats"]["records_unanswered"]
    counts = reconcile(sink, stream_records(sink, chaos_emulator), data, results, bound)
    assert summary["accepted"] == counts["accepted"]
    TABLE.append((f"{sink}: {scenario.name} ({events:,})", data.event_count, *counts.values(), bound, f"{seconds:.1f}"))


def _cli(sink: str, data: Dataset, emu: EmulatorClient, results: Path, *extra: str) -> list[str]:
    stream = ["--stream-name", STREAM] if sink == "kinesis" else ["--delivery-stream", STREAM]
    rate = ("--records-per-second", str(CRASH_RECORDS_PER_SECOND), "--max-in-flight", str(CRASH_IN_FLIGHT))
    return runs.cli(APP, data, emu.url, results, "--sink", sink, *stream, *rate, "--no-progress", *extra)


def _kill_when_written(process: subprocess.Popen, emu: EmulatorClient, threshold: int, timeout: float) -> int:
    """SIGKILL ``process`` once the stream holds ``threshold`` records; return that count."""
    return runs.kill_when(
        process, lambda: emu.streams()["stats"]["records_accepted"], threshold, timeout, "records", "written"
    )


def _crash_params() -> list:
    params = []
    for sink in SINKS:
        params.append(pytest.param(sink, SHORT, id=f"{sink}-short-kill"))
        params.append(pytest.param(sink, FULL, marks=pytest.mark.chaos, id=f"{sink}-full-kill"))
    return params


@pytest.mark.integration
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("sink", "events"), _crash_params())
def test_a_killed_stream_load_resumes_without_losing_or_resending_more_than_in_flight(
    sink, events, ready, chaos_emulator, datasets, tmp_path
) -> None:
    ready(sink)
    data = datasets[events]
    env = {**os.environ, **CREDENTIALS}
    results = tmp_path / "results.parquet"
    started = time.monotonic()
    log = tmp_path / "killed-run.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            _cli(sink, data, chaos_emulator, results), env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True
        )
        at_kill = _kill_when_written(
            process, chaos_emulator, int(KILL_POINT * (data.event_count - data.bad_events)), timeout=240
        )
    assert process.returncode == -signal.SIGKILL, log.read_text()

    resumed = subprocess.run(
        _cli(sink, data, chaos_emulator, results, "--resume"), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    seconds = time.monotonic() - started
    bound = CRASH_IN_FLIGHT * RECORDS_PER_REQUEST
    counts = reconcile(sink, stream_records(sink, chaos_emulator), data, results, bound)
    TABLE.append(
        (
            f"{sink}: SIGKILL at {at_kill:,} records + resume ({events:,})",
            data.event_count,
            *counts.values(),
            bound,
            f"{seconds:.1f}",
        )
    )

"""Fault scenarios: the loader against an emulator that throttles, fails, drops, loses answers and is slow.

Each scenario loads a seeded dataset (generated events and endpoints plus a few rows validation
must refuse) and then reconciles three records with one another: the input, the results table and
what the emulator accepted. Every valid row must be accepted at the emulator, every bad row
rejected, none failed; duplicates at the emulator only where the scenario makes them unavoidable
(answers lost after processing, requests in flight when the process was killed), and no more than
those can explain. The full scenarios (20,000 events) run with ``make chaos``; a short version of
some runs in the default suite.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.emulator import EmulatorClient
from airflow_provider_pinpoint.load import load_events
from tests.chaos import runs
from tests.chaos.data import TABLE, Dataset, results_rows

APP = "chaos"
FULL = 20_000
SHORT = 2_000
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class Scenario:
    name: str
    faults: dict = field(default_factory=dict)
    requests_per_second: float = 100.0
    # Attempts per row: at the short version's 4x fault rates, 8 attempts run out about once in ten runs.
    max_attempts: int = 8


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("429 storm", {"rate_limit": 10.0}, requests_per_second=60.0),
        Scenario("5% requests 500", {"error_rate": 0.05}),
        Scenario("2% connections dropped", {"drop_rate": 0.02}),
        Scenario("2% responses lost", {"lost_response_rate": 0.02}),
        Scenario("5% items 429/500", {"item_error_rate": 0.05}),
        Scenario("latency 300 ms +-50%", {"latency_ms": 300.0}),
        Scenario(
            "all at once",
            {
                "rate_limit": 20.0,
                "error_rate": 0.05,
                "drop_rate": 0.02,
                "lost_response_rate": 0.02,
                "item_error_rate": 0.05,
                "latency_ms": 100.0,
            },
            requests_per_second=60.0,
        ),
    )
}
# The short version sends about 25 requests: its fault rates are higher, so that each fault happens.
SHORT_SCENARIOS = (
    Scenario(
        "all at once, 4x rates",
        {
            "rate_limit": 20.0,
            "error_rate": 0.2,
            "drop_rate": 0.08,
            "lost_response_rate": 0.08,
            "item_error_rate": 0.2,
            "latency_ms": 100.0,
        },
        # At the emulator's own limit: every 429 costs a row an attempt, and with 60/s against 20/s
        # the 429s alone wore 14 attempts down about once in ten runs. "429 storm" covers that case.
        requests_per_second=20.0,
        max_attempts=14,
    ),
    Scenario("20% responses lost", {"lost_response_rate": 0.2}),
)

# Kill points: fractions of the valid events accepted at the emulator when the CLI gets SIGKILL,
# one drawn (seeded) from each of the early, middle and late parts of a run.
_POINTS = random.Random(2026)
KILL_POINTS = [round(_POINTS.uniform(low, low + 0.2), 2) for low in (0.1, 0.4, 0.7)]
CRASH_IN_FLIGHT = 2
CRASH_RATE = 20.0


def _scenario_params() -> list:
    full = [pytest.param(s, FULL, marks=pytest.mark.chaos, id=f"full-{name}") for name, s in SCENARIOS.items()]
    short = [pytest.param(s, SHORT, id=f"short-{s.name}") for s in SHORT_SCENARIOS]
    return short + full


def _crash_params() -> list:
    full = [pytest.param(point, FULL, marks=pytest.mark.chaos, id=f"full-kill-at-{point}") for point in KILL_POINTS]
    return [pytest.param(KILL_POINTS[1], SHORT, id=f"short-kill-at-{KILL_POINTS[1]}"), *full]


def _iso(value) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reconcile(emu: EmulatorClient, data: Dataset, results: Path, duplicate_bound: int) -> dict:
    """Check the results table against the input and the emulator's record; return the counts."""
    table = results_rows(results, data)

    status = {s: [row for row in table if row["status"] == s] for s in ("accepted", "rejected", "failed")}
    assert status["failed"] == [], status["failed"][:3]
    assert len(status["rejected"]) == data.bad_events
    assert all(row["source"].endswith("part-1.parquet") for row in status["rejected"])

    recorded = emu.events(APP)
    accepted_events = {(r["endpoint_id"], r["event_id"]) for r in status["accepted"] if r["record_type"] == "event"}
    at_emulator = {(e["endpoint_id"], e["event_id"]) for e in recorded}
    assert len(accepted_events) == data.event_count - data.bad_events
    assert at_emulator == accepted_events, "the emulator's record and the results table disagree"
    accepted_endpoints = {r["endpoint_id"] for r in status["accepted"] if r["record_type"] == "endpoint"}
    assert len(accepted_endpoints) == data.endpoint_count
    assert set(emu.endpoints(APP)) == accepted_endpoints

    given = pq.read_table(data.events / "part-0.parquet", columns=["EventId", "EventType", "Timestamp"]).to_pylist()
    sent = {e["event_id"]: e["event"] for e in recorded}
    for row in given:
        event = sent[row["EventId"]]
        assert (event["EventType"], event["Timestamp"]) == (row["EventType"], _iso(row["Timestamp"])), row

    duplicates = sum(e["receive_count"] - 1 for e in recorded)
    assert duplicates <= duplicate_bound, f"{duplicates} duplicates, more than the scenario explains"
    return {
        "accepted": len(status["accepted"]),
        "rejected": len(status["rejected"]),
        "failed": len(status["failed"]),
        "duplicates": duplicates,
    }


def _load(emu: EmulatorClient, data: Dataset, results: Path, **options) -> dict:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    report = load_events(
        events=str(data.events),
        endpoints=str(data.endpoints),
        application_id=APP,
        results=str(results),
        session=session,
        endpoint_url=emu.url,
        progress=False,
        **options,
    )
    return report.summary


@pytest.mark.integration
@pytest.mark.parametrize(("scenario", "events"), _scenario_params())
def test_every_valid_row_arrives_once_under_faults(scenario, events, chaos_emulator, datasets, tmp_path) -> None:
    data = datasets[events]
    chaos_emulator.reset()
    chaos_emulator.configure(seed=events, **scenario.faults)
    started = time.monotonic()
    summary = _load(
        chaos_emulator,
        data,
        tmp_path / "results.parquet",
        requests_per_second=scenario.requests_per_second,
        max_attempts=scenario.max_attempts,
    )
    seconds = time.monotonic() - started
    lost = chaos_emulator.stats()["faults"].get("lost_response", 0)
    bound = lost * quotas.MAX_EVENTS_PER_REQUEST
    counts = reconcile(chaos_emulator, data, tmp_path / "results.parquet", bound)
    assert summary["accepted"] == counts["accepted"]
    TABLE.append((f"{scenario.name} ({events:,})", data.event_count, *counts.values(), bound, f"{seconds:.1f}"))


@pytest.mark.integration
def test_rows_failed_in_an_outage_are_sent_by_the_next_run(chaos_emulator, datasets, tmp_path) -> None:
    """Every request answered 500 until attempts run out: all rows failed, none lost; the rerun sends them."""
    data = datasets[SHORT]
    results = tmp_path / "results.parquet"
    chaos_emulator.reset()
    chaos_emulator.configure(error_rate=1.0)
    started = time.monotonic()
    outage = _load(chaos_emulator, data, results, requests_per_second=100.0, max_attempts=2)
    assert outage["failed"] == data.event_count - data.bad_events + data.endpoint_count
    assert (outage["accepted"], outage["rejected"]) == (0, data.bad_events)
    assert chaos_emulator.events(APP) == []

    chaos_emulator.configure(error_rate=0.0)
    rerun = _load(chaos_emulator, data, results, requests_per_second=100.0)
    assert rerun["skipped"] == data.bad_events
    counts = reconcile(chaos_emulator, data, results, duplicate_bound=0)
    seconds = time.monotonic() - started
    TABLE.append((f"outage, then rerun ({SHORT:,})", data.event_count, *counts.values(), 0, f"{seconds:.1f}"))


def _cli(data: Dataset, emu: EmulatorClient, results: Path, *extra: str) -> list[str]:
    rate = ("--requests-per-second", str(CRASH_RATE), "--max-in-flight", str(CRASH_IN_FLIGHT))
    return runs.cli(APP, data, emu.url, results, *rate, "--no-progress", *extra)


def _kill_when_accepted(process: subprocess.Popen, emu: EmulatorClient, threshold: int, timeout: float) -> int:
    """SIGKILL ``process`` once the emulator has accepted ``threshold`` events; return that count."""
    return runs.kill_when(process, lambda: emu.stats()["events_accepted"], threshold, timeout, "events", "accepted")


@pytest.mark.integration
@pytest.mark.parametrize(("point", "events"), _crash_params())
def test_a_killed_run_resumes_without_losing_or_resending_more_than_in_flight(
    point, events, chaos_emulator, datasets, tmp_path
) -> None:
    data = datasets[events]
    chaos_emulator.reset()
    env = {**os.environ, **CREDENTIALS}
    results = tmp_path / "results.parquet"
    started = time.monotonic()
    log = tmp_path / "killed-run.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            _cli(data, chaos_emulator, results), env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True
        )
        at_kill = _kill_when_accepted(
            process, chaos_emulator, int(point * (data.event_count - data.bad_events)), timeout=240
        )
    assert process.returncode == -signal.SIGKILL, log.read_text()
    assert not results.exists(), "a killed run cannot have compacted its results"

    resumed = subprocess.run(
        _cli(data, chaos_emulator, results, "--resume"), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "skipped" in resumed.stdout
    seconds = time.monotonic() - started
    bound = CRASH_IN_FLIGHT * quotas.MAX_EVENTS_PER_REQUEST
    counts = reconcile(chaos_emulator, data, results, bound)
    name = f"SIGKILL at {point:.0%} ({at_kill:,} sent) + resume ({events:,})"
    TABLE.append((name, data.event_count, *counts.values(), bound, f"{seconds:.1f}"))

"""kill -9 of a pinpoint-load run with a sync state, at several points, then a rerun: no row is ever skipped.

Day 1 loads every endpoint and 120 events. Day 2 changes 20 endpoints' bodies and brings 120 new
events; it is killed (SIGKILL) at one point. Day 3 goes back to day 1's endpoint bodies and brings
every event of both days. Whatever day 2 did before it died, the emulator must end up holding day 3's
body for every endpoint (an endpoint day 2 changed must go again, though its body equals day 1's)
and must have received every event at least once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.state import describe
from tests.helpers.items import emulator_client
from tests.state.tables import APP, endpoints, events, write

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
ENV = os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
ENDPOINTS = 60


def day2_cli(emulator, tmp_path: Path, point: str, *extra: str) -> subprocess.Popen:
    e = write(
        pa.concat_tables([events(ENDPOINTS, 2, day=1), events(ENDPOINTS, 2, day=2)]), tmp_path / "d2" / "e.parquet"
    )
    p = write(endpoints(ENDPOINTS, changed=range(0, ENDPOINTS, 3)), tmp_path / "d2" / "p.parquet")
    argv = ["--application-id", APP, "--events", e, "--endpoints", p, "--results", str(tmp_path / "d2" / "r.parquet")]
    argv += ["--state", str(tmp_path / "state"), "--endpoint-url", emulator.url, "--region", "us-east-1"]
    argv += ["--no-progress", "--max-in-flight", "1", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.state.killer", point, *argv],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def load(emulator, tmp_path: Path, name: str, events_table: pa.Table, endpoints_table: pa.Table):
    return load_events(
        write(events_table, tmp_path / name / "e.parquet"),
        write(endpoints_table, tmp_path / name / "p.parquet"),
        application_id=APP,
        results=str(tmp_path / name / "r.parquet"),
        client=emulator_client(emulator.url),
        state=str(tmp_path / "state"),
        requests_per_second=1000,
        progress=False,
    )


def assert_nothing_skipped(emulator) -> None:
    arrived = {event["event_id"] for event in emulator.events(APP)}
    assert arrived >= {f"d{day}-{i:05d}-{k}" for day in (1, 2) for i in range(ENDPOINTS) for k in range(2)}
    held = emulator.endpoints(APP)
    assert sorted(held) == [f"ep-{i:05d}" for i in range(ENDPOINTS)]
    assert {endpoint["Attributes"]["segment"][0] for endpoint in held.values()} == {"v1"}


@pytest.mark.parametrize("point", ["sending", "after-results", "pending-write", "endpoints-write", "events-write"])
def test_a_kill_at_any_point_then_a_rerun_skips_no_row(point, emulator, tmp_path):
    load(emulator, tmp_path, "d1", events(ENDPOINTS, 2, day=1), endpoints(ENDPOINTS))
    sent_day1 = emulator.stats()["requests"]
    if point == "sending":
        run = day2_cli(emulator, tmp_path, "none", "--requests-per-second", "4")
        deadline = time.monotonic() + 60
        while emulator.stats()["requests"] < sent_day1 + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        run.send_signal(signal.SIGKILL)
    else:
        run = day2_cli(emulator, tmp_path, point, "--requests-per-second", "1000")
    run.communicate(timeout=120)
    assert run.returncode == -signal.SIGKILL  # it died where it was meant to, not at the end
    if point == "pending-write":
        assert emulator.stats()["requests"] == sent_day1  # nothing goes before the pending file is written

    day3 = load(
        emulator,
        tmp_path,
        "d3",
        pa.concat_tables([events(ENDPOINTS, 2, day=1), events(ENDPOINTS, 2, day=2)]),
        endpoints(ENDPOINTS),
    )
    assert day3.summary.failed == 0 and day3.summary.rejected == 0
    assert_nothing_skipped(emulator)
    if point == "pending-write":
        return  # day 2 sent nothing: day 1's bodies are still the ones held, rightly left unsent
    # Every endpoint day 2 may have changed went again on day 3.
    changed = {f"ep-{i:05d}" for i in range(0, ENDPOINTS, 3)}
    results = day3.results
    sent = set(results.loc[(results["record_type"] == "endpoint") & (results["status"] == "accepted"), "endpoint_id"])
    assert changed <= sent
    [held] = describe(tmp_path / "state")["destinations"]
    assert (held["endpoints"], held["to_send_again"]) == (ENDPOINTS, 0)


def test_a_run_killed_while_sending_finishes_with_resume_and_the_next_sends_nothing(emulator, tmp_path):
    load(emulator, tmp_path, "d1", events(ENDPOINTS, 2, day=1), endpoints(ENDPOINTS))
    sent_day1 = emulator.stats()["requests"]
    run = day2_cli(emulator, tmp_path, "none", "--requests-per-second", "4")
    deadline = time.monotonic() + 60
    while emulator.stats()["requests"] < sent_day1 + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=120)
    assert run.returncode == -signal.SIGKILL
    resumed = day2_cli(emulator, tmp_path, "none", "--requests-per-second", "1000", "--resume")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    arrived = {event["event_id"] for event in emulator.events(APP)}
    assert arrived >= {f"d2-{i:05d}-{k}" for i in range(ENDPOINTS) for k in range(2)}
    assert {e["Attributes"]["segment"][0] for i, e in emulator.endpoints(APP).items() if int(i[3:]) % 3 == 0} == {"v1x"}
    before = emulator.stats()["requests"]
    again = load(
        emulator,
        tmp_path,
        "d2-again",
        pa.concat_tables([events(ENDPOINTS, 2, day=1), events(ENDPOINTS, 2, day=2)]),
        endpoints(ENDPOINTS, changed=range(0, ENDPOINTS, 3)),
    )
    # What the killed run had accepted before it died is resent once (its state was never written); nothing more.
    assert again.summary.failed == 0
    assert emulator.stats()["requests"] - before == again.summary.requests

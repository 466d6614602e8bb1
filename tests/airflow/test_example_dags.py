"""Each example DAG, run as a user runs it: ``airflow dags test`` on a SQLite metadata DB, against the emulator.

The DB is migrated once per session in a temporary AIRFLOW_HOME; Airflow loads only ``dags/``.
The aws connection is given as an ``AIRFLOW_CONN_*`` environment variable, as in ``make demo``.
The DAGs read the repository's sample data with their default params; results go to tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAILY = REPO / "sample_data" / "daily"


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return env


def dags_test(env: dict[str, str], emulator_url: str, dag_id: str, **conf: object) -> None:
    """Run one DAG to the end; fail with the end of its log when the run does not succeed."""
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": emulator_url, "region_name": "us-east-1"},
    }
    env = {**env, "AIRFLOW_CONN_PINPOINT_DEFAULT": json.dumps(connection)}
    command = [AIRFLOW, "dags", "test", dag_id, "2026-11-24", "--conf", json.dumps(conf)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=500)
    log = run.stdout + run.stderr
    assert run.returncode == 0 and "state=success" in log, log[-4000:]


def assert_sent_once(sent: list[dict], events: pd.DataFrame, results: pd.DataFrame) -> None:
    """Every input event reached the emulator once, and the results table names the ids it received."""
    sent_ids = [event["event_id"] for event in sent]
    assert len(sent_ids) == len(set(sent_ids)) == len(events)
    assert set(events["EventId"].dropna()) <= set(sent_ids)
    assert sorted(results.loc[results["record_type"] == "event", "event_id"]) == sorted(sent_ids)


def rows(table: pd.DataFrame, record_type: str) -> int:
    return int((table["record_type"] == record_type).sum())


def test_daily_load_sends_the_days_partitions_and_writes_the_results_of_the_run(airflow_env, emulator, tmp_path):
    dags_test(airflow_env, emulator.url, "pinpoint_daily_load", application_id="daily-app", results_dir=str(tmp_path))
    events = pd.read_parquet(DAILY / "events" / "date=2026-11-24")
    endpoints = pd.read_parquet(DAILY / "endpoints" / "date=2026-11-24")
    results = pd.read_parquet(tmp_path / "date=2026-11-24" / "results.parquet")
    assert_sent_once(emulator.events("daily-app"), events, results)
    assert sorted(emulator.endpoints("daily-app")) == sorted(endpoints["Id"])
    assert (rows(results, "event"), rows(results, "endpoint")) == (len(events), len(endpoints))
    assert set(results["status"]) == {"accepted"}
    assert emulator.stats()["events_duplicated"] == 0


def test_endpoints_sync_sends_endpoints_and_no_events(airflow_env, emulator, tmp_path):
    dags_test(
        airflow_env, emulator.url, "pinpoint_endpoints_sync", application_id="sync-app", results_dir=str(tmp_path)
    )
    endpoints = pd.read_parquet(DAILY / "endpoints" / "date=2026-11-24")
    assert sorted(emulator.endpoints("sync-app")) == sorted(endpoints["Id"])
    assert emulator.events("sync-app") == []
    results = pd.read_parquet(tmp_path / "date=2026-11-24" / "results.parquet")
    assert rows(results, "endpoint") == len(results) == len(endpoints)


def test_sharded_backfill_sends_every_day_once_and_results_name_the_original_rows(airflow_env, emulator, tmp_path):
    dags_test(
        airflow_env,
        emulator.url,
        "pinpoint_backfill_sharded",
        application_id="backfill-app",
        shards=3,
        staging_dir=str(tmp_path / "staging"),
        results_dir=str(tmp_path / "results"),
    )
    events = pd.concat(
        pd.read_parquet(DAILY / "events" / f"date={day}") for day in ("2026-11-23", "2026-11-24", "2026-11-25")
    )
    [run_dir] = (tmp_path / "results").iterdir()
    parts = sorted(run_dir.glob("shard=*.parquet"))
    assert len(parts) == 3
    results = pd.concat(pd.read_parquet(part) for part in parts)
    assert_sent_once(emulator.events("backfill-app"), events, results)
    assert emulator.stats()["events_duplicated"] == 0
    assert rows(results, "event") == len(events)
    assert not results.duplicated(["source", "source_row"]).any()
    assert {Path(source).parent.parent.name for source in results["source"]} == {"events", "endpoints"}

"""Each example DAG, run as a user runs it: ``airflow dags test`` on a SQLite metadata DB, against the emulator.

The DB is migrated once per session and copied for each DAG, so the three runs go side by side
(Airflow's start-up dominates their time). Airflow loads only ``dags/``; the aws connection is an
``AIRFLOW_CONN_*`` environment variable, as in ``make demo``. The DAGs read the repository's sample
data with their default params; each loads into its own application id and writes under tmp.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_pinpoint.emulator import EmulatorClient
from airflow_provider_pinpoint.state import describe

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAILY = REPO / "sample_data" / "daily"
DAYS = ("2026-11-23", "2026-11-24", "2026-11-25")


@dataclass
class DagRun:
    application_id: str
    out: Path  # the run's results_dir (and staging_dir for the backfill)
    log: str = ""
    returncode: int | None = None


def airflow_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


@pytest.fixture(scope="module")
def dag_runs(tmp_path_factory: pytest.TempPathFactory, emulator_server: EmulatorClient) -> dict[str, DagRun]:
    emulator_server.reset()  # no records and no faults left by an earlier test
    migrated = tmp_path_factory.mktemp("airflow_home")
    subprocess.run([AIRFLOW, "db", "migrate"], env=airflow_env(migrated), check=True, capture_output=True, timeout=300)
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": emulator_server.url, "region_name": "us-east-1"},
    }
    runs = {
        "pinpoint_daily_load": DagRun("daily-app", tmp_path_factory.mktemp("daily")),
        "pinpoint_endpoints_sync": DagRun("sync-app", tmp_path_factory.mktemp("sync")),
        "pinpoint_backfill_sharded": DagRun("backfill-app", tmp_path_factory.mktemp("backfill")),
    }
    processes = {}
    for dag_id, run in runs.items():
        home = tmp_path_factory.mktemp(f"home_{dag_id}")
        shutil.copy(migrated / "airflow.db", home / "airflow.db")
        conf = {"application_id": run.application_id, "results_dir": str(run.out / "results")}
        if dag_id == "pinpoint_backfill_sharded":
            conf |= {"shards": 3, "staging_dir": str(run.out / "staging")}
        if dag_id == "pinpoint_endpoints_sync":
            conf |= {"state_dir": str(run.out / "state")}
        env = {**airflow_env(home), "AIRFLOW_CONN_PINPOINT_DEFAULT": json.dumps(connection)}
        command = [AIRFLOW, "dags", "test", dag_id, "2026-11-24", "--conf", json.dumps(conf)]
        processes[dag_id] = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    for dag_id, process in processes.items():
        runs[dag_id].log, _ = process.communicate(timeout=500)
        runs[dag_id].returncode = process.returncode
    return runs


def succeeded(run: DagRun) -> None:
    assert run.returncode == 0 and "state=success" in run.log, run.log[-4000:]


def assert_sent_once(emulator: EmulatorClient, run: DagRun, events: pd.DataFrame, results: pd.DataFrame) -> None:
    """Every input event reached the emulator exactly once, and the results table names the ids it received."""
    sent = emulator.events(run.application_id)
    sent_ids = [event["event_id"] for event in sent]
    assert len(sent_ids) == len(set(sent_ids)) == len(events)
    assert all(event["receive_count"] == 1 for event in sent)
    assert set(events["EventId"].dropna()) <= set(sent_ids)
    assert sorted(results.loc[results["record_type"] == "event", "event_id"]) == sorted(sent_ids)


def rows(table: pd.DataFrame, record_type: str) -> int:
    return int((table["record_type"] == record_type).sum())


def test_daily_load_sends_the_days_partitions_and_writes_the_results_of_the_run(dag_runs, emulator_server):
    run = dag_runs["pinpoint_daily_load"]
    succeeded(run)
    events = pd.read_parquet(DAILY / "events" / "date=2026-11-24")
    endpoints = pd.read_parquet(DAILY / "endpoints" / "date=2026-11-24")
    results = pd.read_parquet(run.out / "results" / "date=2026-11-24" / "results.parquet")
    assert_sent_once(emulator_server, run, events, results)
    assert sorted(emulator_server.endpoints(run.application_id)) == sorted(endpoints["Id"])
    assert (rows(results, "event"), rows(results, "endpoint")) == (len(events), len(endpoints))
    assert set(results["status"]) == {"accepted"}


def test_endpoints_sync_sends_endpoints_and_no_events(dag_runs, emulator_server):
    run = dag_runs["pinpoint_endpoints_sync"]
    succeeded(run)
    endpoints = pd.read_parquet(DAILY / "endpoints" / "date=2026-11-24")
    assert sorted(emulator_server.endpoints(run.application_id)) == sorted(endpoints["Id"])
    assert emulator_server.events(run.application_id) == []
    results = pd.read_parquet(run.out / "results" / "date=2026-11-24" / "results.parquet")
    assert rows(results, "endpoint") == len(results) == len(endpoints)
    # The sync state now holds every endpoint accepted, so the next day's run sends only the changed ones.
    [held] = describe(run.out / "state")["destinations"]
    assert (held["application_id"], held["endpoints"]) == (
        run.application_id,
        int((results["status"] == "accepted").sum()),
    )


def test_sharded_backfill_sends_every_day_once_and_results_name_the_original_rows(dag_runs, emulator_server):
    run = dag_runs["pinpoint_backfill_sharded"]
    succeeded(run)
    events = pd.concat(pd.read_parquet(DAILY / "events" / f"date={day}") for day in DAYS)
    [run_dir] = (run.out / "results").iterdir()
    parts = sorted(run_dir.glob("shard=*.parquet"))
    assert len(parts) == 3
    results = pd.concat(pd.read_parquet(part) for part in parts)
    assert_sent_once(emulator_server, run, events, results)
    assert rows(results, "event") == len(events)
    assert not results.duplicated(["source", "source_row"]).any()
    assert {Path(source).parent.parent.name for source in results["source"]} == {"events", "endpoints"}

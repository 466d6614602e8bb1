"""`make demo`: the daily example DAG, run by real Airflow against a local Pinpoint emulator.

Starts the emulator on a free loopback port, prepares a SQLite Airflow home in ./airflow_home
(git-ignored), runs ``airflow dags test pinpoint_daily_load 2026-11-24`` with the ``aws`` connection
given as an AIRFLOW_CONN_* variable pointing at the emulator, then prints the load summary, where
the results table is and what the emulator received. The emulator is always stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from airflow_provider_pinpoint.emulator import run_emulator

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = REPO / "airflow_home"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "pinpoint_daily_load"
LOGICAL_DATE = "2026-11-24"
APPLICATION_ID = "demo-app"
SUMMARY_MARK = "Summary: "


def main() -> int:
    started = time.monotonic()
    results_dir = AIRFLOW_HOME / "results"
    shutil.rmtree(results_dir, ignore_errors=True)  # a fresh demo sends everything, rather than resuming
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
        connection = {
            "conn_type": "aws",
            "login": "demo-access-key",
            "password": "demo-secret-key",
            "extra": {"endpoint_url": emulator.url, "region_name": "us-east-1"},
        }
        env["AIRFLOW_CONN_PINPOINT_DEFAULT"] = json.dumps(connection)
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
    for key, value in summary.items():
        print(f"  {key:>12}: {value}")
    table = pd.read_parquet(results)
    step(f"Results table: {results.relative_to(REPO)} ({len(table)} rows, one per input row)")
    print(table.groupby(["record_type", "status"]).size().to_string())
    step(f"Emulator received for {APPLICATION_ID}: {received[0]} events, {received[1]} endpoints")
    print("  " + json.dumps(stats))
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s. Task log: {log.relative_to(REPO)}")
    return 0


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

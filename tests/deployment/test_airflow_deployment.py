"""The sharded backfill under a real Airflow deployment: two runs at once, one shard killed with -9.

Started here, on loopback, in a temporary AIRFLOW_HOME: ``airflow api-server``, ``scheduler`` (with
the LocalExecutor), ``dag-processor`` and ``triggerer``, on a SQLite metadata DB (Airflow 3.3 runs
the LocalExecutor on SQLite; the lock installs no PostgreSQL or MySQL driver). Log servers are off
(``--skip-serve-logs``): they would bind every interface, and the api-server reads the task logs
from disk. The emulator runs in this process and records when each PutEvents request arrives.

The DAGs use their default locations from ``PINPOINT_OUTPUT_DIR``; the pool ``pinpoint_put_events``
has 2 slots and the account quota is 15 requests/s. Two runs of ``pinpoint_backfill_sharded`` are
triggered at once, each into its own application; once a shard task is sending, its process is
killed with SIGKILL. Checked: both runs succeed on their own (the killed shard is retried and
resumes), no second of requests across both runs exceeds the quota, every event of each run is
accepted and recorded once in its results, duplicates only in the killed run and within the
documented bound, and one results asset for every run and shard.

Long (a few minutes): ``make airflow-deployment``, outside the default suite. Everything started is
stopped at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_pinpoint.emulator import EmulatorClient
from airflow_provider_pinpoint.emulator.faults import Settings
from airflow_provider_pinpoint.emulator.runner import ServerThread
from airflow_provider_pinpoint.emulator.service import Emulator
from airflow_provider_pinpoint.emulator.store import open_store
from airflow_provider_pinpoint.emulator.wire import Answer
from airflow_provider_pinpoint.quotas import DEFAULT_MAX_IN_FLIGHT

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("PINPOINT_AIRFLOW_DEPLOYMENT") != "1",
        reason="a real Airflow deployment, minutes long: make airflow-deployment",
    ),
    pytest.mark.timeout(1200),
]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SAMPLE = REPO / "sample_data" / "daily"
DAYS = ("2026-11-23", "2026-11-24", "2026-11-25")
DAG_ID = "pinpoint_backfill_sharded"
QUOTA = 15  # the account's requests per second, as in the DAG
POOL_SLOTS = 2
COPIES = 8  # each sample event this many times, so that a shard sends for several seconds
# The DAG leaves max_in_flight at its default: the documented duplicate bound of one kill is that many requests.
MAX_IN_FLIGHT, EVENTS_PER_REQUEST = DEFAULT_MAX_IN_FLIGHT, 100
RUNS = {"run_a": "app-a", "run_b": "app-b"}


class RecordingEmulator(Emulator):
    """The emulator, noting when each PutEvents request arrives and for which application."""

    def __init__(self) -> None:
        super().__init__(open_store(None), Settings())
        self.arrivals: list[tuple[float, str]] = []

    def put_events(self, app: str, headers: dict[str, str], body: bytes, too_large: bool) -> Answer:
        self.arrivals.append((time.monotonic(), app))
        return super().put_events(app, headers, body, too_large)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Deployment:
    """Airflow's components as separate processes, each in its own process group."""

    COMPONENTS = {
        "api-server": ["api-server"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def cli(self, *args: str) -> str:
        done = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def start(self) -> None:
        for name, args in self.COMPONENTS.items():
            with (self.home / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    [AIRFLOW, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited ({process.returncode}):\n{self.log_tail(name)}"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to every process group, SIGKILL to what is left after 20 s: task processes included."""
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process.pid, signal.SIGKILL)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the metadata DB (read-only, so as not to take Airflow's write lock)."""
        db = sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def write_inputs(data: Path) -> pd.DataFrame:
    """The sample days with every event ``COPIES`` times under its own id; returns all events written."""
    written = []
    for day in DAYS:
        events = pd.read_parquet(SAMPLE / "events" / f"date={day}")
        copies = pd.concat([events] * COPIES, ignore_index=True)
        copies["EventId"] = [f"{day}-{row}" for row in range(len(copies))]
        (data / "events" / f"date={day}").mkdir(parents=True)
        copies.to_parquet(data / "events" / f"date={day}" / "part-0.parquet", index=False)
        (data / "endpoints" / f"date={day}").mkdir(parents=True)
        endpoints = pd.read_parquet(SAMPLE / "endpoints" / f"date={day}")
        endpoints.to_parquet(data / "endpoints" / f"date={day}" / "part-0.parquet", index=False)
        written.append(copies)
    return pd.concat(written, ignore_index=True)


@pytest.fixture
def emulator() -> Iterator[tuple[RecordingEmulator, EmulatorClient]]:
    service = RecordingEmulator()
    thread = ServerThread(service)
    url = thread.start_serving()
    try:
        yield service, EmulatorClient(url)
    finally:
        thread.stop()


@pytest.fixture
def deployment(tmp_path: Path, emulator: tuple[RecordingEmulator, EmulatorClient]) -> Iterator[Deployment]:
    home = tmp_path / "airflow_home"
    home.mkdir()
    port = free_port()
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": emulator[1].url, "region_name": "us-east-1"},
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "deployment-test-secret-" + os.urandom(8).hex(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW_CONN_PINPOINT_DEFAULT": json.dumps(connection),
        "AIRFLOW_VAR_PINPOINT_PUT_EVENTS_POOL_SIZE": str(POOL_SLOTS),
        "PINPOINT_OUTPUT_DIR": str(tmp_path / "pinpoint"),
    }
    deploy = Deployment(home, env)
    deploy.cli("db", "migrate")
    deploy.cli("pools", "set", "pinpoint_put_events", str(POOL_SLOTS), "Pinpoint PutEvents quota")
    try:
        deploy.start()
        yield deploy
    finally:
        deploy.stop()
        for name in deploy.COMPONENTS:
            print(f"==== {name} (end of log)\n{deploy.log_tail(name)}")


def max_in_one_second(times: list[float]) -> int:
    """The most requests that arrived within any one second."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_two_backfills_at_once_with_a_killed_shard_succeed_within_the_quota_and_lose_nothing(
    tmp_path, emulator, deployment
):
    service, client = emulator
    data = tmp_path / "data"
    events = write_inputs(data)
    endpoints = pd.read_parquet(data / "endpoints" / f"date={DAYS[-1]}")

    wait_for("the DAGs to be parsed", lambda: deployment.query("select 1 from dag where dag_id = ?", DAG_ID), 240, 2)
    deployment.check_alive()
    deployment.cli("dags", "unpause", DAG_ID)
    for run_id, app in RUNS.items():
        conf = {"application_id": app, "data_dir": str(data), "start": DAYS[0], "end": DAYS[-1], "shards": 4}
        deployment.cli("dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", json.dumps(conf))

    def a_shard_sending() -> tuple[str, int, int] | None:
        running = deployment.query(
            "select run_id, map_index, pid from task_instance "
            "where dag_id = ? and task_id = 'put_events' and state = 'running' and pid is not null",
            DAG_ID,
        )
        for run_id, map_index, pid in running:
            if sum(app == RUNS[run_id] for _, app in list(service.arrivals)) >= 5:
                return run_id, map_index, pid
        return None

    killed_run, killed_shard, pid = wait_for("a shard task sending", a_shard_sending, 600, 0.2)
    os.kill(pid, signal.SIGKILL)

    def finished() -> dict[str, str] | None:
        deployment.check_alive()
        states = dict(deployment.query("select run_id, state from dag_run where dag_id = ?", DAG_ID))
        return states if all(states.get(run) in ("success", "failed") for run in RUNS) else None

    states = wait_for("both runs to finish", finished, 900, 3)
    assert states == {run: "success" for run in RUNS}, states
    [(tries,)] = deployment.query(
        "select try_number from task_instance where dag_id = ? and task_id = 'put_events' and run_id = ? "
        "and map_index = ?",
        DAG_ID,
        killed_run,
        killed_shard,
    )
    assert tries >= 2  # the killed shard failed and its retry succeeded

    busiest = max_in_one_second([at for at, _ in service.arrivals])
    print(f"killed {killed_run} shard {killed_shard} (pid {pid}); busiest second: {busiest} requests")
    assert busiest <= QUOTA

    results_root = tmp_path / "pinpoint" / DAG_ID / "results"
    for run_id, app in RUNS.items():
        parts = sorted((results_root / run_id).glob("shard=*.parquet"))
        results = pd.concat(pd.read_parquet(part) for part in parts)
        assert len(results) == len(events) + len(endpoints)
        assert not results.duplicated(["source", "source_row"]).any()
        assert set(results["status"]) == {"accepted"}
        assert sorted(results.loc[results["record_type"] == "event", "event_id"]) == sorted(events["EventId"])
        received = client.events(app)
        assert sorted(event["event_id"] for event in received) == sorted(events["EventId"])
        duplicates = sum(event["receive_count"] - 1 for event in received)
        print(f"{run_id}: {len(received)} events accepted, {duplicates} received twice")
        assert duplicates <= (MAX_IN_FLIGHT * EVENTS_PER_REQUEST if run_id == killed_run else 0), (run_id, duplicates)
        assert sorted(client.endpoints(app)) == sorted(endpoints["Id"])

    assets = deployment.query("select uri from asset")
    assert [uri for (uri,) in assets] == [f"file://{results_root}"]

"""What a load's start costs: pandas imported only when a DataFrame (or text Arrow cannot parse)
needs it, and no garbage collection in ``pinpoint-load`` until its client is made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.items import APP

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"

# Runs pinpoint-load's main in a fresh interpreter, then reports whether pandas was imported.
_CLI = """
import sys
from airflow_provider_pinpoint.cli import main
code = main(sys.argv[1:])
print("pandas imported:", "pandas" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def _cli(emulator, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CLI, "--application-id", APP, *argv]
        + ["--endpoint-url", emulator.url, "--region", "us-east-1", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )


def test_a_cli_load_of_files_never_imports_pandas(emulator, tmp_path):
    done = _cli(
        emulator,
        *("--events", str(SAMPLE / "events.parquet"), "--endpoints", str(SAMPLE / "endpoints.parquet")),
        *("--results", str(tmp_path / "results.parquet")),
    )
    assert done.returncode == 0, done.stderr
    assert "pandas imported: False" in done.stderr


def test_text_arrow_cannot_parse_whole_still_gets_per_row_verdicts_in_the_cli(emulator, tmp_path):
    events = tmp_path / "events.csv"
    events.write_text(
        "EndpointId,EventType,Timestamp,Metrics.score\n"
        "ep-1,view,2026-11-30T12:00:00Z,1.5\n"
        "ep-2,view,yesterday,2\n"
        "ep-3,view,2026-11-30 13:00:00+01:00,many\n"
    )
    done = _cli(emulator, "--events", str(events), "--results", str(tmp_path / "results.parquet"))
    assert done.returncode == 0, done.stderr
    statuses = pq.read_table(tmp_path / "results.parquet").sort_by("source_row").column("status").to_pylist()
    assert statuses == ["accepted", "rejected", "rejected"]


def test_importing_the_operator_imports_neither_pandas_nor_pyarrow():
    pytest.importorskip("airflow")
    probe = "import sys, airflow_provider_pinpoint.operators.pinpoint; print(sorted({'pandas', 'pyarrow'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


# Runs the operator's execute() as a task process does, on files, counting the collections before the
# hook's client is made; then reports what was imported and the collector's state.
_TASK = """
import gc, json, sys
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow_provider_pinpoint.hooks.pinpoint import PinpointHook
from airflow_provider_pinpoint.operators.pinpoint import PinpointPutEventsOperator
operator = PinpointPutEventsOperator(
    task_id="put_events", aws_conn_id="pinpoint_startup", application_id=sys.argv[1],
    events=sys.argv[2], endpoints=sys.argv[3], results=sys.argv[4],
)
threshold = gc.get_threshold()
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
made = []
get_client_type = PinpointHook.get_client_type
def counting(self, *args, **kwargs):
    client = get_client_type(self, *args, **kwargs)
    made.append(len(collections))
    return client
PinpointHook.get_client_type = counting
summary = operator.execute({"run_id": "manual__startup", "outlet_events": OutletEventAccessors()})
print(json.dumps({"accepted": summary["accepted"], "rejected": summary["rejected"], "rows": summary["input_rows"],
                  "pandas": "pandas" in sys.modules, "made": made, "threshold_before": threshold,
                  "threshold_after": gc.get_threshold(), "frozen_after": gc.get_freeze_count()}))
"""


def _task(emulator, tmp_path) -> dict:
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": emulator.url, "region_name": "us-east-1"},
    }
    done = subprocess.run(
        [sys.executable, "-c", _TASK, APP, str(SAMPLE / "events.parquet"), str(SAMPLE / "endpoints.parquet")]
        + [str(tmp_path / "results.parquet")],
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ | {"AIRFLOW_CONN_PINPOINT_STARTUP": json.dumps(connection)},
    )
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout.splitlines()[-1])  # the task logs on stdout before
    assert task["accepted"] > 0 and task["accepted"] + task["rejected"] == task["rows"]
    return task


def test_the_operators_task_on_files_never_imports_pandas(emulator, tmp_path):
    pytest.importorskip("airflow")
    assert _task(emulator, tmp_path)["pandas"] is False


def test_the_operators_task_collects_no_garbage_until_its_client_is_made_and_leaves_the_collector_as_it_was(
    emulator, tmp_path
):
    pytest.importorskip("airflow")
    task = _task(emulator, tmp_path)
    assert task["made"] == [0]
    assert task["threshold_after"] == task["threshold_before"]
    assert task["frozen_after"] == 0


def test_the_client_and_validation_parse_the_pinpoint_model_once():
    probe = """
import os
from botocore.loaders import JSONFileLoader
from airflow_provider_pinpoint import service_model
from airflow_provider_pinpoint.sending.client import make_client
parsed = []
original = JSONFileLoader.load_file
def counting(self, file_path):
    parsed.append(os.path.basename(os.path.dirname(os.path.dirname(file_path))) + "/" + os.path.basename(file_path))
    return original(self, file_path)
JSONFileLoader.load_file = counting
service_model.channel_types()
make_client(None, None, "http://127.0.0.1:9", "us-east-1", 4)
print(parsed.count("pinpoint/service-2"))
"""
    env = os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    assert done.stdout.strip() == "1"


# Runs pinpoint-load as its console script does (main() reading sys.argv), counting the collections
# before and after the client is made; then reports the collector's state.
_COMMAND = """
import gc, json, sys
import airflow_provider_pinpoint.load as load
from airflow_provider_pinpoint.cli import main
threshold = gc.get_threshold()
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
made = []
make_client = load.make_client
def counting(*args, **kwargs):
    client = make_client(*args, **kwargs)
    made.append((len(collections), gc.get_threshold(), gc.get_freeze_count()))
    return client
load.make_client = counting
sys.argv = ["pinpoint-load", *sys.argv[1:]]
code = main()
print(json.dumps({"code": code, "made": made, "threshold_before": threshold, "threshold_after": gc.get_threshold()}))
"""


def _command(emulator, *argv: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND, "--application-id", APP, *argv]
        + ["--endpoint-url", emulator.url, "--region", "us-east-1", "--no-progress", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_command_collects_no_garbage_until_its_client_is_made_and_then_as_before(emulator, tmp_path):
    state = _command(
        emulator, "--events", str(SAMPLE / "events.parquet"), "--results", str(tmp_path / "results.parquet")
    )
    assert state["code"] == 0
    [(collections_before_client, threshold_at_client, frozen_at_client)] = state["made"]
    assert collections_before_client == 0
    assert frozen_at_client > 0  # what start-up made is out of later collections' sight
    assert threshold_at_client == state["threshold_before"] == state["threshold_after"]


def test_a_dry_run_that_makes_no_client_still_gets_the_collector_back(emulator):
    state = _command(emulator, "--events", str(SAMPLE / "events.parquet"), "--dry-run")
    assert state["code"] == 0 and state["made"] == []
    assert state["threshold_after"] == state["threshold_before"]


def test_main_called_in_process_and_the_library_leave_the_collector_alone(emulator, tmp_path):
    probe = f"""
import gc, sys
from airflow_provider_pinpoint.cli import main
from airflow_provider_pinpoint.sending.client import make_client
threshold = gc.get_threshold()
make_client(None, None, {emulator.url!r}, "us-east-1", 4)
code = main(["--application-id", "app", "--events", {str(SAMPLE / "events.parquet")!r}, "--dry-run", "--no-progress"])
print(code, gc.get_freeze_count(), gc.get_threshold() == threshold)
"""
    env = os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    assert done.stdout.split()[-3:] == ["0", "0", "True"]

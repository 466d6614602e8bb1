"""Start-up cost of a small CLI load: ``pinpoint-load`` on 100 events against the emulator, in CPU
seconds, as a ratio to ``python -c "import boto3, pyarrow.parquet"`` measured in the same run.

Where Airflow is installed, also the operator's task process: a process that runs
``PinpointPutEventsOperator.execute`` on the same file (through an ``aws`` connection to the
emulator), as a ratio to one that only imports what such a task imports anyway (the operator's
module, with Airflow) and boto3 and pyarrow.parquet.

Each command runs ``--repeat`` times in its own process (its CPU read from ``wait4``, so the
emulator's CPU, in another process, is not counted); the medians are compared. The target (issue
"A lean install, a fast start") is a ratio of at most 1.5.

Both commands first run once unmeasured with bytecode caching on (``PYTHONDONTWRITEBYTECODE``
dropped), so that they import from ``.pyc`` files, as after ``pip install``; otherwise compiling
every module again would be most of the figure, and the more modules, the more it weighs.

    .venv/bin/python benchmarks/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_pinpoint.emulator import run_emulator

BIN = Path(sys.executable).parent

# The operator's task: execute() on the events file, as Airflow's task runner calls it.
_TASK = """
import sys
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow_provider_pinpoint.operators.pinpoint import PinpointPutEventsOperator
operator = PinpointPutEventsOperator(
    task_id="put_events", aws_conn_id="pinpoint_startup", application_id="startup",
    events=sys.argv[1], results=sys.argv[2],
)
operator.execute({"run_id": "manual__startup", "outlet_events": OutletEventAccessors()})
"""
_TASK_IMPORTS = "import airflow_provider_pinpoint.operators.pinpoint, boto3, pyarrow.parquet"


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of one run of ``argv`` (which must succeed)."""
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a chatty task cannot fill it and stall
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise SystemExit(f"{argv[0]} failed: {stderr.read().decode(errors='replace')[-4000:]}")
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args(argv)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with_airflow = importlib.util.find_spec("airflow") is not None
    with tempfile.TemporaryDirectory() as tmp, run_emulator(validate=False, subprocess=True) as emu:
        events = Path(tmp) / "events.parquet"
        pq.write_table(
            pa.table(
                {
                    "EndpointId": [f"ep-{i % 10}" for i in range(args.events)],
                    "EventType": ["view"] * args.events,
                    "Timestamp": ["2026-11-30T12:00:00Z"] * args.events,
                }
            ),
            events,
        )
        imports = [sys.executable, "-c", "import boto3, pyarrow.parquet"]

        def load(i: int) -> list[str]:
            return [
                str(BIN / "pinpoint-load"),
                *("--application-id", "startup", "--events", str(events), "--results", f"{tmp}/r{i}.parquet"),
                *("--endpoint-url", emu.url, "--region", "us-east-1", "--no-progress"),
            ]

        commands = {"imports": lambda i: imports, "cli": load}
        if with_airflow:
            connection = {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": emu.url, "region_name": "us-east-1"},
            }
            env["AIRFLOW_CONN_PINPOINT_STARTUP"] = json.dumps(connection)
            commands["task imports"] = lambda i: [sys.executable, "-c", _TASK_IMPORTS]
            commands["task"] = lambda i: [sys.executable, "-c", _TASK, str(events), f"{tmp}/task{i}.parquet"]
        for command in commands.values():  # writes the bytecode caches
            cpu_seconds(command(args.repeat), env)
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(args.repeat):  # interleaved, so that a busy moment weighs on all alike
            for name, command in commands.items():
                cpu[name].append(cpu_seconds(command(i), env))
    median = {name: statistics.median(seconds) for name, seconds in cpu.items()}
    spread = {name: f"{min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f}" for name, seconds in cpu.items()}

    def line(label: str, name: str) -> str:
        return f"{label:<44}: {median[name] * 1000:7.1f} ms CPU (median of {args.repeat}; {spread[name]})"

    print(line("import boto3, pyarrow.parquet", "imports"))
    print(line(f"pinpoint-load, {args.events} events", "cli"))
    print(f"{'ratio':<44}: {median['cli'] / median['imports']:7.2f}x (target <= 1.5x)")
    print(f"{'  pinpoint-load less the imports':<44}: {(median['cli'] - median['imports']) * 1000:7.1f} ms CPU")
    if with_airflow:
        print(line("import the operator, boto3, pyarrow.parquet", "task imports"))
        print(line(f"the operator's task, {args.events} events", "task"))
        print(f"{'ratio':<44}: {median['task'] / median['task imports']:7.2f}x")
        print(f"{'  the task less its imports':<44}: {(median['task'] - median['task imports']) * 1000:7.1f} ms CPU")
    else:
        print("the operator's task: not measured (Airflow is not installed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

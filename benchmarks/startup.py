"""Start-up cost of a small CLI load: ``pinpoint-load`` on 100 events against the emulator, in CPU
seconds, as a ratio to ``python -c "import boto3, pyarrow.parquet"`` measured in the same run.

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


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of one run of ``argv`` (which must succeed)."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args(argv)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
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

        cpu_seconds(imports, env), cpu_seconds(load(args.repeat), env)  # writes the bytecode caches
        baseline, loads = [], []
        for i in range(args.repeat):  # interleaved, so that a busy moment weighs on both alike
            baseline.append(cpu_seconds(imports, env))
            loads.append(cpu_seconds(load(i), env))
    base, cli = statistics.median(baseline), statistics.median(loads)
    print(f"import boto3, pyarrow.parquet : {base * 1000:7.1f} ms CPU (median of {args.repeat})")
    print(f"pinpoint-load, {args.events} events  : {cli * 1000:7.1f} ms CPU (median of {args.repeat})")
    print(f"ratio                         : {cli / base:7.2f}x (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

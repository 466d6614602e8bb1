"""How the chaos tests run ``pinpoint-load`` as a process and kill it part-way, for every sink."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.chaos.data import Dataset


def cli(app: str, data: Dataset, endpoint_url: str, results: Path, *options: str) -> list[str]:
    """The ``pinpoint-load`` command line for ``data`` against the emulator at ``endpoint_url``."""
    return [
        str(Path(sys.executable).with_name("pinpoint-load")),
        "--application-id",
        app,
        "--events",
        str(data.events),
        "--endpoints",
        str(data.endpoints),
        "--results",
        str(results),
        "--endpoint-url",
        endpoint_url,
        "--region",
        "us-east-1",
        *options,
    ]


def kill_when(
    process: subprocess.Popen, done: Callable[[], int], threshold: int, timeout: float, unit: str, counted: str
) -> int:
    """SIGKILL ``process`` once ``done()`` (``unit`` ``counted``) reaches ``threshold``; return that count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = done()
        if count >= threshold:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            return count
        assert process.poll() is None, f"the run ended before the kill point ({count} of {threshold} {unit})"
        time.sleep(0.01)
    process.kill()
    process.wait()
    raise AssertionError(f"the kill point ({threshold} {unit} {counted}) was not reached in {timeout} s")

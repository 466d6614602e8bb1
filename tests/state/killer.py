"""``python -m tests.state.killer POINT ARGS...``: pinpoint-load with ARGS, killed by SIGKILL (kill -9,
no cleanup of any kind) at POINT:

- ``after-results``: the results table is compacted, the state not yet written;
- ``pending-write`` / ``endpoints-write`` / ``events-write``: halfway through writing the state's
  pending file (before anything is sent), its endpoints file, its events file (after the results);
- ``none``: not killed here (the test kills it from outside, e.g. while it is sending).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from airflow_provider_pinpoint.cli import main
from airflow_provider_pinpoint.state.files import StateFiles
from airflow_provider_pinpoint.state.sync import Sync

WRITES = {"pending-write": 1, "endpoints-write": 2, "events-write": 3}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    if point == "after-results":
        Sync.commit = lambda self: die()  # type: ignore[method-assign]
    elif point in WRITES:
        real = StateFiles.replace
        calls = [0]

        def replace(self: StateFiles, path: str, schema: Any, batches: Iterator[Any], *more: Any) -> int:
            calls[0] += 1
            if calls[0] != WRITES[point]:
                return real(self, path, schema, batches, *more)

            def half() -> Iterator[Any]:
                for batch in batches:
                    yield batch.slice(0, max(1, batch.num_rows // 2))
                    die()

            return real(self, path, schema, half(), *more)

        StateFiles.replace = replace  # type: ignore[method-assign]


if __name__ == "__main__":
    arm(sys.argv[1])
    sys.exit(main(sys.argv[2:]))

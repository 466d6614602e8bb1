"""The chaos suite's seeded dataset and the table of measured scenarios (printed at the end of the run)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# The benchmarks' seeded generator (a script directory, not a package).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import datagen  # noqa: E402

# Rows the chaos data carries that validation must refuse (so "rejected" is exercised too).
BAD_EVENTS = 12
TABLE: list[tuple] = []
HEADER = ("scenario", "events in", "accepted", "rejected", "failed", "duplicates", "dup bound", "seconds")


@dataclass(frozen=True)
class Dataset:
    events: Path  # directory: part-0 generated, part-1 the rows validation must refuse
    endpoints: Path
    event_count: int  # every event row, valid or not
    endpoint_count: int
    bad_events: int


def make_dataset(directory: Path, events: int, seed: int) -> Dataset:
    generated = datagen.generate(directory / "generated", events=events, endpoints=events // 10, seed=seed)
    parts = directory / "events"
    parts.mkdir()
    generated.events.rename(parts / "part-0.parquet")
    bad = pa.table(
        {
            "EndpointId": ["ep-000000000"] * (BAD_EVENTS // 3)
            + ["bad$id"] * (BAD_EVENTS // 3)
            + ["ep-000000001"] * (BAD_EVENTS - 2 * (BAD_EVENTS // 3)),
            "EventId": [f"bad-{i}" for i in range(BAD_EVENTS)],
            "EventType": [None] * (BAD_EVENTS // 3) + ["view"] * (BAD_EVENTS - BAD_EVENTS // 3),
            "Timestamp": ["2026-01-01T00:00:00Z"] * (2 * (BAD_EVENTS // 3))
            + ["yesterday"] * (BAD_EVENTS - 2 * (BAD_EVENTS // 3)),
        }
    )
    pq.write_table(bad, parts / "part-1.parquet")
    return Dataset(parts, generated.endpoints, events + BAD_EVENTS, generated.endpoint_count, BAD_EVENTS)

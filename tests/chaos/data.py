"""The chaos suite's seeded dataset, the check that a results table holds one row per input row, and
the table of measured scenarios (printed at the end of the run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import datagen

# Event rows validation must refuse (so "rejected" is exercised too): (EndpointId, EventType, Timestamp),
# each repeated four times: no event type, an endpoint id with "$", a timestamp that is no date.
_BAD_ROWS = [
    ("ep-000000000", None, "2026-01-01T00:00:00Z"),
    ("bad$id", "view", "2026-01-01T00:00:00Z"),
    ("ep-000000001", "view", "yesterday"),
] * 4
BAD_EVENTS = len(_BAD_ROWS)
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
    endpoint_ids, event_types, timestamps = zip(*_BAD_ROWS, strict=True)
    bad = pa.table(
        {
            "EndpointId": list(endpoint_ids),
            "EventId": [f"bad-{i}" for i in range(BAD_EVENTS)],
            "EventType": pa.array(event_types, pa.string()),
            "Timestamp": list(timestamps),
        }
    )
    pq.write_table(bad, parts / "part-1.parquet")
    return Dataset(parts, generated.endpoints, events + BAD_EVENTS, generated.endpoint_count, BAD_EVENTS)


def results_rows(results: Path, data: Dataset) -> list[dict]:
    """The rows of a load's results table, checked to be exactly one per input row of ``data``."""
    table = pq.read_table(results).to_pylist()
    keys = sorted((row["record_type"], Path(row["source"]).name, row["source_row"]) for row in table)
    valid = data.event_count - data.bad_events
    expected = sorted(
        [("endpoint", data.endpoints.name, r) for r in range(1, data.endpoint_count + 1)]
        + [("event", "part-0.parquet", r) for r in range(1, valid + 1)]
        + [("event", "part-1.parquet", r) for r in range(1, data.bad_events + 1)]
    )
    assert keys == expected, "the results table does not hold exactly one row per input row"
    return table

"""Small endpoint and event tables for the sync-state tests, written as real Parquet or CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.load import LoadReport
from airflow_provider_pinpoint.results.rows import DECISION_SCHEMA, Outcomes
from tests.helpers.items import emulator_client

APP = "app-sync"


def endpoints(
    n: int, *, changed: range = range(0), tag: str = "v1", bad: int | None = None, start: int = 0
) -> pa.Table:
    """``n`` endpoints ep-<i>; those in ``changed`` have segment ``tag``+"x"; ``bad``: that one has an
    invalid channel type."""
    ids = [f"ep-{i:05d}" for i in range(start, start + n)]
    return pa.table(
        {
            "Id": ids,
            "ChannelType": ["PIGEON" if i == bad else "EMAIL" for i in range(start, start + n)],
            "Address": [f"user{i}@example.com" for i in range(start, start + n)],
            "Attributes.segment": [f"{tag}x" if i in changed else tag for i in range(start, start + n)],
            "Metrics.orders": [float(i % 7) for i in range(start, start + n)],
        }
    )


def events(endpoint_count: int, per_endpoint: int, *, day: int = 1, bad: int | None = None) -> pa.Table:
    """``per_endpoint`` events of each endpoint, ids ``d<day>-<endpoint>-<k>``; ``bad``: that row has no EventType."""
    endpoint_ids, event_ids, types = [], [], []
    for i in range(endpoint_count):
        for k in range(per_endpoint):
            endpoint_ids.append(f"ep-{i:05d}")
            event_ids.append(f"d{day}-{i:05d}-{k}")
            types.append(None if len(types) == bad else "purchase")
    return pa.table(
        {
            "EndpointId": endpoint_ids,
            "EventId": event_ids,
            "EventType": pa.array(types, pa.string()),
            "Timestamp": [f"2026-11-{day:02d}T10:00:00.000Z"] * len(event_ids),
        }
    )


def write(table: pa.Table, path: Path) -> str:
    """``table`` as a Parquet or CSV file (by extension); its path as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return str(path)


def load_endpoints(
    url: str, directory: Path, run: str, table: pa.Table, *, state: bool = True, **options: Any
) -> LoadReport:
    """``table`` loaded as endpoints by run ``run`` into the emulator at ``url``, its files and the
    sync state (unless not ``state``) under ``directory``."""
    return load_events(
        None,
        write(table, directory / run / "endpoints.parquet"),
        application_id=APP,
        results=str(directory / run / "results.parquet"),
        client=emulator_client(url),
        progress=False,
        requests_per_second=1000,
        **({"state": str(directory / "state")} if state else {}),
        **options,
    )


def accepted(ids: list[str]) -> Outcomes:
    """Answers accepting these endpoints, as :meth:`Sync.observe` takes them from the sender."""
    n = len(ids)
    columns = {field.name: pa.nulls(n, field.type) for field in DECISION_SCHEMA}
    columns["record_type"] = pa.array(["endpoint"] * n, pa.string())
    columns["endpoint_id"] = pa.array(ids, pa.string())
    columns["status"] = pa.array(["accepted"] * n, pa.string())
    batch = pa.RecordBatch.from_arrays([columns[f.name] for f in DECISION_SCHEMA], schema=DECISION_SCHEMA)
    return Outcomes(batch, n, 0, 0, 0)

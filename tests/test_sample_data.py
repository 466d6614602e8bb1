from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from airflow_provider_pinpoint.prepare import flow
from airflow_provider_pinpoint.prepare.columns import families, fixed_fields
from airflow_provider_pinpoint.prepare.read import read_table

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
DAYS = ("2026-11-23", "2026-11-24", "2026-11-25")


def committed_files() -> list[Path]:
    return sorted(p for p in SAMPLE.rglob("*") if p.suffix in (".parquet", ".csv"))


def test_committed_files_are_what_the_seeded_script_makes(tmp_path):
    subprocess.run([sys.executable, str(SAMPLE / "make_sample_data.py"), str(tmp_path)], check=True)
    made = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert [p.relative_to(tmp_path) for p in made] == [p.relative_to(SAMPLE) for p in committed_files()]
    for path in made:
        assert path.read_bytes() == (SAMPLE / path.relative_to(tmp_path)).read_bytes(), path.name


def test_sample_data_stays_small():
    assert sum(p.stat().st_size for p in committed_files()) < 2_000_000


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_sample_tables_cover_every_convention_field(fmt):
    for kind, minimum in (("endpoints", 200), ("events", 2000)):
        table = read_table(SAMPLE / f"{kind}.{fmt}", kind=kind)
        assert table.num_rows >= minimum
        assert set(fixed_fields(kind)) <= set(table.column_names)
        for family in families(kind):
            assert any(name.startswith(family) for name in table.column_names), family
        for name in fixed_fields(kind):
            if name != "EventId":
                assert table.column(name).null_count < table.num_rows, name


def test_csv_and_parquet_samples_hold_the_same_list_attributes():
    parquet = read_table(SAMPLE / "endpoints.parquet", kind="endpoints")
    csv = read_table(SAMPLE / "endpoints.csv", kind="endpoints")
    assert parquet.column("Attributes.interests").to_pylist() == csv.column("Attributes.interests").to_pylist()
    assert max(len(v or []) for v in csv.column("Attributes.interests").to_pylist()) > 1


def test_samples_have_endpoints_without_events_and_events_without_endpoints():
    endpoint_ids = set(read_table(SAMPLE / "endpoints.parquet", kind="endpoints").column("Id").to_pylist())
    event_endpoints = set(read_table(SAMPLE / "events.parquet", kind="events").column("EndpointId").to_pylist())
    assert endpoint_ids - event_endpoints
    assert event_endpoints - endpoint_ids


def test_daily_partitions_hold_events_of_their_own_day():
    for day in DAYS:
        events = read_table(SAMPLE / "daily" / "events" / f"date={day}", kind="events")
        days = pc.unique(pc.strftime(events.column("Timestamp"), format="%Y-%m-%d")).to_pylist()
        assert days == [day]
        assert read_table(SAMPLE / "daily" / "endpoints" / f"date={day}", kind="endpoints").num_rows > 0


def documented_invalid_rows() -> set[tuple[str, int]]:
    docstring = ast.get_docstring(ast.parse((SAMPLE / "make_sample_data.py").read_text()))
    return {(kind, int(row)) for kind, row in re.findall(r"^- (endpoints|events) row (\d+):", docstring, re.M)}


def rejected_rows(events, endpoints) -> set[tuple[str, int]]:
    rejected = set()
    for out in flow.prepare(events=events, endpoints=endpoints):
        if isinstance(out, list):
            rejected |= {(Path(r.source).name.split(".")[0], r.source_row) for r in out}
    return rejected


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_rows_rejected_are_exactly_the_documented_invalid_ones(fmt):
    assert 5 <= len(documented_invalid_rows()) <= 10
    assert rejected_rows(SAMPLE / f"events.{fmt}", SAMPLE / f"endpoints.{fmt}") == documented_invalid_rows()


def test_daily_partitions_hold_no_invalid_rows():
    day = SAMPLE / "daily"
    for date in DAYS:
        assert rejected_rows(day / "events" / f"date={date}", day / "endpoints" / f"date={date}") == set()

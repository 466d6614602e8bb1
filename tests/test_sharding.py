"""Sharding a load by endpoint id: self-contained shards, nothing lost, bounded writes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.read import read_table
from airflow_provider_pinpoint.sharding import plan_shards, shard_of, sum_summaries
from tests.helpers.items import APP, emulator_client


@pytest.fixture
def tables(tmp_path: Path) -> tuple[str, str]:
    """60 endpoints and 600 events; event rows spell the endpoint id in another case half the time."""
    ids = [f"Endpoint-{n:03d}" for n in range(60)]
    endpoints = pa.table({"Id": ids, "ChannelType": ["EMAIL"] * 60, "Attributes.plan": [["gold"]] * 60})
    event_ids = [(ids[n % 60].upper() if n % 2 else ids[n % 60]) for n in range(600)] + ["no-such-endpoint"] * 5
    events = pa.table(
        {
            "EndpointId": event_ids,
            "EventType": ["purchase"] * len(event_ids),
            "Timestamp": ["2026-11-24T10:00:00Z"] * len(event_ids),
        }
    )
    pq.write_table(endpoints, tmp_path / "endpoints.parquet")
    pq.write_table(events, tmp_path / "events.parquet", row_group_size=100)
    return str(tmp_path / "events.parquet"), str(tmp_path / "endpoints.parquet")


def test_every_endpoint_and_its_events_are_in_one_shard(tables, tmp_path):
    events, endpoints = tables
    shards = plan_shards(events, endpoints, staging=str(tmp_path / "staging"), shards=4)
    owner: dict[str, int] = {}
    for shard in shards:
        for kind, column in (("endpoints", "Id"), ("events", "EndpointId")):
            if shard[kind] is None:
                continue
            for endpoint_id in read_table(shard[kind], kind=kind).column(column).to_pylist():
                assert owner.setdefault(endpoint_id.lower(), shard["shard"]) == shard["shard"]
    assert len(owner) == 61


def test_shards_together_hold_every_input_row_once_with_its_original_source_row(tables, tmp_path):
    events, endpoints = tables
    shards = plan_shards(events, endpoints, staging=str(tmp_path / "staging"), shards=3)
    for kind, source, expected in (("events", events, 605), ("endpoints", endpoints, 60)):
        seen = []
        for shard in shards:
            if shard[kind] is not None:
                table = read_table(shard[kind], kind=kind)
                assert table.num_rows == shard[f"{kind}_rows"]
                seen += zip(table.column("_source").to_pylist(), table.column("_source_row").to_pylist(), strict=True)
        assert sorted(seen) == [(source, row) for row in range(1, expected + 1)]
    assert sum(shard["rows"] for shard in shards) == 665


def test_shard_files_are_written_one_input_batch_at_a_time(tables, tmp_path):
    events, _ = tables
    shards = plan_shards(events, staging=str(tmp_path / "staging"), shards=2, batch_rows=50)
    for shard in shards:
        for part in Path(shard["events"]).glob("*.parquet"):
            metadata = pq.ParquetFile(part).metadata
            assert metadata.num_row_groups > 1
            assert all(metadata.row_group(i).num_rows <= 50 for i in range(metadata.num_row_groups))


def test_empty_shards_are_left_out(tables, tmp_path):
    _, endpoints = tables
    shards = plan_shards(endpoints=endpoints, staging=str(tmp_path / "staging"), shards=200)
    assert len(shards) < 60
    assert all(shard["events"] is None and shard["endpoints_rows"] > 0 for shard in shards)


def test_a_second_plan_replaces_the_shards_of_the_first(tables, tmp_path):
    events, endpoints = tables
    staging = tmp_path / "staging"
    plan_shards(events, endpoints, staging=str(staging), shards=8)
    shards = plan_shards(events, endpoints, staging=str(staging), shards=2)
    assert sorted(p.name for p in staging.iterdir()) == [f"shard={s['shard']:05d}" for s in shards]


def test_staging_can_be_an_fsspec_url(tables):
    events, endpoints = tables
    shards = plan_shards(events, endpoints, staging="memory://plan-test/run-1", shards=2)
    assert all(shard["events"].startswith("memory://plan-test/run-1/shard=") for shard in shards)
    assert sum(read_table(shard["events"], kind="events").num_rows for shard in shards) == 605


def test_a_list_of_sources_is_read_in_turn(tables, tmp_path):
    events, _ = tables
    shards = plan_shards([events, events], staging=str(tmp_path / "staging"), shards=2)
    assert sum(shard["events_rows"] for shard in shards) == 1210


def test_dataframes_in_a_list_get_sources_of_their_own(tmp_path):
    frames = [
        pd.DataFrame({"EndpointId": [f"ep-{n}"], "EventType": ["view"], "Timestamp": ["2026-11-24T00:00:00Z"]})
        for n in range(2)
    ]
    shards = plan_shards(frames, staging=str(tmp_path / "staging"), shards=1)
    table = read_table(shards[0]["events"], kind="events")
    assert sorted(zip(table.column("_source").to_pylist(), table.column("_source_row").to_pylist(), strict=True)) == [
        ("events[0]", 1),
        ("events[1]", 1),
    ]


def test_the_column_mapping_is_applied_while_sharding(tmp_path):
    source = tmp_path / "events.parquet"
    pq.write_table(pa.table({"user": ["a", "b"], "kind": ["x", "y"], "at": ["2026-11-24T00:00:00Z"] * 2}), source)
    mapping = {"events": {"user": "EndpointId", "kind": "EventType", "at": "Timestamp"}}
    shards = plan_shards(str(source), staging=str(tmp_path / "staging"), shards=1, column_mapping=mapping)
    assert read_table(shards[0]["events"], kind="events").column("EndpointId").to_pylist() == ["a", "b"]


@pytest.mark.parametrize("per_table", [True, False], ids=["per-table", "shared"])
def test_a_mapping_naming_a_missing_column_stops_the_plan(tmp_path, per_table):
    source = tmp_path / "events.parquet"
    pq.write_table(pa.table({"EndpointId": ["a"], "EventType": ["x"], "Timestamp": ["2026-11-24T00:00:00Z"]}), source)
    mapping = {"user_id": "EndpointId"}
    with pytest.raises(InputError, match="user_id"):
        plan_shards(
            str(source),
            staging=str(tmp_path / "staging"),
            shards=1,
            column_mapping={"events": mapping} if per_table else mapping,
        )


def test_a_table_without_endpoint_ids_cannot_be_sharded(tmp_path):
    source = tmp_path / "endpoints.parquet"
    pq.write_table(pa.table({"ChannelType": ["EMAIL"]}), source)
    with pytest.raises(InputError, match="no 'Id' column"):
        plan_shards(endpoints=str(source), staging=str(tmp_path / "staging"), shards=2)


def test_shard_of_is_case_insensitive_and_the_same_in_every_process():
    other_process = subprocess.run(
        [
            sys.executable,
            "-c",
            "from airflow_provider_pinpoint.sharding import shard_of; print(shard_of('user-42', 16))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shard_of("USER-42", 16) == shard_of("user-42", 16) == int(other_process.stdout)


def _shard_summary(results: str, started_at: str, finished_at: str, events: int) -> dict:
    counts = {"input_rows": 10, "accepted": 8, "rejected": 1, "failed": 1, "skipped": 3, "requests": 2, "retries": 1}
    counts |= {"unchanged": 4, "already_sent": 5}  # rows the sync state took out
    duration = (datetime.fromisoformat(finished_at) - datetime.fromisoformat(started_at)).total_seconds()
    return {
        **counts,
        "events_accepted": events,
        "duration_s": duration,
        "events_per_s": events / duration,
        "results": results,
        "run_id": "run",
        "started_at": started_at,
        "finished_at": finished_at,
    }


def test_sum_summaries_adds_counts_over_the_span_of_shards_side_by_side():
    total = sum_summaries(
        [
            _shard_summary("r/shard=0.parquet", "2026-11-24T10:00:00+00:00", "2026-11-24T10:00:03+00:00", 30),
            _shard_summary("r/shard=1.parquet", "2026-11-24T10:00:00+00:00", "2026-11-24T10:00:05+00:00", 50),
        ]
    )
    assert total == {
        "input_rows": 20,
        "accepted": 16,
        "rejected": 2,
        "failed": 2,
        "skipped": 6,
        "requests": 4,
        "retries": 2,
        "events_accepted": 80,
        "unchanged": 8,
        "already_sent": 10,
        "events_per_s": 16.0,
        "duration_s": 5.0,
        "results": ["r/shard=0.parquet", "r/shard=1.parquet"],
        "shards": 2,
        "run_id": "run",
    }


def test_the_rate_of_shards_run_one_after_another_is_not_their_sum():
    total = sum_summaries(
        [
            _shard_summary("r/shard=0.parquet", "2026-11-24T10:00:00+00:00", "2026-11-24T10:00:10+00:00", 100),
            _shard_summary("r/shard=1.parquet", "2026-11-24T10:00:10+00:00", "2026-11-24T10:00:20+00:00", 100),
        ]
    )
    assert (total["duration_s"], total["events_per_s"]) == (20.0, 10.0)


def test_a_load_summary_sums_as_xcom_holds_it(emulator, tmp_path):
    events = pa.table({"EndpointId": ["a", "b"], "EventType": ["e", "e"], "Timestamp": ["2026-11-24T00:00:00Z"] * 2})
    report = load_events(events, application_id=APP, client=emulator_client(emulator.url))
    total = sum_summaries([json.loads(json.dumps(report.summary.to_dict()))])
    assert (total["accepted"], total["events_accepted"]) == (2, 2)
    assert total["events_per_s"] > 0


@settings(max_examples=25, deadline=None)
@given(
    ids=st.lists(st.text(alphabet="abcXYZ-09", min_size=1, max_size=6), min_size=1, max_size=80),
    shards=st.integers(min_value=1, max_value=6),
)
def test_any_ids_in_any_case_land_in_exactly_one_shard(ids, shards):
    events = pa.table(
        {"EndpointId": ids, "EventType": ["e"] * len(ids), "Timestamp": ["2026-11-24T00:00:00Z"] * len(ids)}
    )
    with tempfile.TemporaryDirectory() as staging:
        planned = plan_shards(events, staging=staging, shards=shards, batch_rows=16)
        owner: dict[str, set[int]] = {}
        total = 0
        for shard in planned:
            column = read_table(shard["events"], kind="events").column("EndpointId").to_pylist()
            total += len(column)
            for endpoint_id in column:
                owner.setdefault(endpoint_id.lower(), set()).add(shard["shard"])
    assert total == len(ids)
    assert all(len(found) == 1 for found in owner.values())


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("2026-11-24T10:00:00+00:00", "2026-11-24T10:00:04+00:00"), ("2026-11-24T10:00:00", "2026-11-24T10:00:05")),
        (("2026-11-24T10:00:00+00:00", "2026-11-24T10:00:04+00:00"), ("yesterday", "today")),
        (("2026-11-24T10:00:00+00:00", "2026-11-24T10:00:04+00:00"), (1764000000, 1764000005)),
    ],
    ids=["naive and aware", "not a time", "not text"],
)
def test_sum_summaries_takes_shard_times_it_cannot_compare(first, second):
    odd = {**_shard_summary("r/1.parquet", *first, 50), "started_at": second[0], "finished_at": second[1]}
    total = sum_summaries([_shard_summary("r/0.parquet", *first, 40), odd])
    assert total["accepted"] == 16 and total["duration_s"] > 0


def test_a_long_plan_says_how_far_it_got(tables, tmp_path, monkeypatch, caplog):
    from airflow_provider_pinpoint import sharding

    monkeypatch.setattr(sharding, "PROGRESS_EVERY_S", 0.0)  # a line at every batch instead of every 10 s
    events, endpoints = tables
    with caplog.at_level("INFO", logger="airflow_provider_pinpoint.sharding"):
        plan_shards(events, endpoints, staging=str(tmp_path / "staging"), shards=2, batch_rows=50)
    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("planning shards: ") and " rows of events partitioned (" in line for line in lines)
    assert "planning shards: 605 rows of events in 2 shards, in 0 s" in lines

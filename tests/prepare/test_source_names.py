"""A rerun that spells its input another way is the same input: it skips what was done, sends nothing twice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_pinpoint import load_events
from tests.helpers.items import APP, emulator_client

pytestmark = pytest.mark.integration

EVENTS = "EndpointId,EventType,Timestamp\n" + "".join(f"ep-{i},view,2026-11-23T10:00:0{i}Z\n" for i in range(4))


def load(events: str, emulator, results: Path) -> dict:
    report = load_events(
        events, application_id=APP, results=str(results), client=emulator_client(emulator.url), progress=False
    )
    return report.summary


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("events.csv", "{here}/events.csv"),
        ("./data//events.csv", "data/events.csv"),
        ("data/../data/events.csv", "file://{here}/data/events.csv"),
        ("data", "{here}/data/"),
        ("data/*.csv", "./data"),
    ],
)
def test_a_rerun_spelling_the_input_differently_sends_nothing_twice(first, second, emulator, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "data" / "events.csv").write_text(EVENTS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results.parquet"
    assert load(first, emulator, results)["accepted"] == 4
    again = load(second.format(here=Path.cwd()), emulator, results)
    assert (again["skipped"], again["requests"]) == (4, 0)
    assert len(emulator.events(APP)) == 4
    assert all(event["receive_count"] == 1 for event in emulator.events(APP))
    assert len(pd.read_parquet(results)) == 4

"""The sync state through load_events, boto3 and the emulator on loopback: what goes and what does not."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.results.lock import LocationBusy
from airflow_provider_pinpoint.state import describe
from tests.helpers.items import emulator_client
from tests.state.tables import APP, endpoints, events, write

pytestmark = pytest.mark.integration


class Loads:
    """Runs of load_events on one state, each with its own results table."""

    def __init__(self, emulator, tmp_path: Path) -> None:
        self.emulator = emulator
        self.tmp = tmp_path
        self.state = str(tmp_path / "state")
        self.runs = 0

    def __call__(self, events_table=None, endpoints_table=None, *, fmt: str = "parquet", **options):
        self.runs += 1
        day = self.tmp / f"run{self.runs}"
        options.setdefault("state", self.state)
        options.setdefault("requests_per_second", 1000)
        return load_events(
            None if events_table is None else write(events_table, day / f"events.{fmt}"),
            None if endpoints_table is None else write(endpoints_table, day / f"endpoints.{fmt}"),
            application_id=APP,
            results=str(day / "results.parquet"),
            client=emulator_client(self.emulator.url),
            progress=False,
            **options,
        )

    def requests(self) -> int:
        return self.emulator.stats()["requests"]


@pytest.fixture
def loads(emulator, tmp_path) -> Loads:
    return Loads(emulator, tmp_path)


def accepted(report, record_type: str, column: str) -> list:
    results = report.results
    chosen = results[(results["record_type"] == record_type) & (results["status"] == "accepted")]
    return sorted(chosen[column])


def test_a_second_run_of_the_same_tables_sends_nothing(loads):
    first = loads(events(50, 4), endpoints(50))
    assert first.summary.accepted == 250
    before = loads.requests()
    second = loads(events(50, 4), endpoints(50))
    assert loads.requests() == before  # not one request reached the emulator
    s = second.summary
    assert (s.accepted, s.requests, s.unchanged, s.already_sent, s.input_rows) == (0, 0, 50, 200, 250)
    statuses = second.results.groupby(["record_type", "status"]).size().to_dict()
    assert statuses == {("endpoint", "unchanged"): 50, ("event", "already_sent"): 200}
    assert set(second.results["message"]) == {
        "not sent: the same body was accepted for this endpoint before (sync state)",
        "not sent: this event id was accepted for this endpoint before (sync state)",
    }
    assert s.to_dict()["unchanged"] == 50  # what XCom and the CLI's JSON carry


def test_changed_and_new_rows_are_exactly_what_goes(loads, emulator):
    loads(events(40, 2, day=1), endpoints(40))
    # Day 2: endpoints 3, 7 and 11 changed, 5 new endpoints, the same events as day 1 and 10 new ones.
    table = pa.concat_tables([events(40, 2, day=1), events(5, 2, day=2)])
    second = loads(table, pa.concat_tables([endpoints(40, changed=range(3, 12, 4)), endpoints(5, start=40)]))
    assert accepted(second, "endpoint", "endpoint_id") == ["ep-00003", "ep-00007", "ep-00011"] + [
        f"ep-{i:05d}" for i in range(40, 45)
    ]
    assert accepted(second, "event", "event_id") == sorted(f"d2-{i:05d}-{k}" for i in range(5) for k in range(2))
    assert second.summary.unchanged == 37 and second.summary.already_sent == 80
    assert emulator.endpoints(APP)["ep-00007"]["Attributes"]["segment"] == ["v1x"]
    assert all(event["receive_count"] == 1 for event in emulator.events(APP))


def test_formatting_that_leaves_the_body_the_same_counts_as_unchanged(loads):
    loads(None, endpoints(30))
    before = loads.requests()
    shuffled = endpoints(30).select(["Metrics.orders", "Address", "Id", "Attributes.segment", "ChannelType"])
    second = loads(None, shuffled, fmt="csv")  # CSV, columns in another order: the same bodies
    assert (second.summary.unchanged, loads.requests()) == (30, before)


def test_rows_rejected_then_corrected_go_on_the_next_run_and_only_they(loads):
    first = loads(events(20, 2, bad=5), endpoints(20, bad=4))
    assert first.summary.rejected == 2
    second = loads(events(20, 2), endpoints(20))
    assert accepted(second, "endpoint", "endpoint_id") == ["ep-00004"]
    assert accepted(second, "event", "event_id") == ["d1-00002-1"]
    assert (second.summary.unchanged, second.summary.already_sent) == (19, 39)


def test_rows_the_service_did_not_accept_are_not_remembered(loads, emulator):
    emulator.configure(error_rate=1.0)  # every request answered 500
    first = loads(events(10, 2), endpoints(10), max_attempts=1)
    assert first.summary.failed == 30 and first.summary.accepted == 0
    emulator.configure(error_rate=0.0)
    second = loads(events(10, 2), endpoints(10))
    assert (second.summary.accepted, second.summary.unchanged, second.summary.already_sent) == (30, 0, 0)


def test_a_full_refresh_sends_everything_and_rebuilds_the_state(loads):
    loads(events(10, 2), endpoints(10))
    again = loads(events(10, 2), endpoints(10), full_refresh=True)
    assert (again.summary.accepted, again.summary.unchanged) == (30, 0)
    after = loads(events(10, 2), endpoints(10))
    assert (after.summary.unchanged, after.summary.already_sent, after.summary.requests) == (10, 20, 0)


def test_event_ids_older_than_the_retention_are_sent_again(loads):
    loads(events(5, 2), None)
    time.sleep(0.3)
    again = loads(events(5, 2), None, state_retention_days=0.1 / 86_400)  # 0.1 s
    assert (again.summary.accepted, again.summary.already_sent) == (10, 0)
    [held] = describe(loads.state)["destinations"]
    assert held["events"] == 10  # the expired ids were dropped, the ones just sent kept


def test_a_second_run_on_the_same_state_at_once_is_refused(loads, emulator):
    emulator.configure(latency_ms=400)
    errors: list[BaseException] = []

    def first() -> None:
        try:
            loads(events(30, 2), endpoints(30), requests_per_second=5)
        except BaseException as exc:  # reported below
            errors.append(exc)

    runner = threading.Thread(target=first)
    runner.start()
    deadline = time.monotonic() + 30
    while loads.requests() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(LocationBusy) as refused:
        loads(events(30, 2), endpoints(30))
    runner.join()
    assert not errors
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"the sync state at {loads.state} is in use by run ")


def test_runs_with_their_own_parts_read_every_part_and_the_latest_body_wins(loads, emulator):
    loads(None, endpoints(10), state_part="shard-0")
    same = loads(None, endpoints(10), state_part="shard-1")
    assert same.summary.unchanged == 10  # shard-1 found what shard-0 wrote
    changed = loads(None, endpoints(10, changed=range(2)), state_part="shard-1")
    assert accepted(changed, "endpoint", "endpoint_id") == ["ep-00000", "ep-00001"]
    # Back to the first bodies: shard-0's entries are older than shard-1's, so they go again.
    back = loads(None, endpoints(10), state_part="shard-0")
    assert accepted(back, "endpoint", "endpoint_id") == ["ep-00000", "ep-00001"]
    assert emulator.endpoints(APP)["ep-00000"]["Attributes"]["segment"] == ["v1"]


def test_an_endpoint_id_in_another_case_is_the_same_endpoint(loads, emulator):
    # Pinpoint's endpoint ids are case-insensitive: "EP-00001" accepted with new values replaced
    # what "ep-00001" had, so going back to the first values must send them, in either part.
    def spelled(table: pa.Table, upper: range) -> pa.Table:
        ids = [i.upper() if n in upper else i for n, i in enumerate(table.column("Id").to_pylist())]
        return table.set_column(0, "Id", pa.array(ids))

    loads(None, endpoints(4), state_part="shard-0")
    renamed = loads(None, spelled(endpoints(4, changed=range(1, 3)), range(1, 2)), state_part="shard-1")
    assert accepted(renamed, "endpoint", "endpoint_id") == ["EP-00001", "ep-00002"]
    back = loads(None, endpoints(4), state_part="shard-0")
    assert accepted(back, "endpoint", "endpoint_id") == ["ep-00001", "ep-00002"]
    assert emulator.endpoints(APP)["ep-00001"]["Attributes"]["segment"] == ["v1"]


def test_resume_skips_what_the_state_took_out_and_sends_the_rest(loads, tmp_path):
    loads(events(10, 2), endpoints(10))
    stop = threading.Event()
    stop.set()  # stopped before anything is sent: every row to send is recorded failed
    results = str(tmp_path / "resumed.parquet")
    table_events, table_endpoints = events(12, 2), endpoints(12)
    common = {"application_id": APP, "results": results, "progress": False, "state": loads.state}
    client = emulator_client(loads.emulator.url)
    e, p = write(table_events, tmp_path / "r" / "e.parquet"), write(table_endpoints, tmp_path / "r" / "p.parquet")
    stopped = load_events(e, p, client=client, stop_event=stop, **common)
    assert stopped.summary.stopped and stopped.summary.failed == 6 and stopped.summary.unchanged == 10
    resumed = load_events(e, p, client=client, **common)
    assert resumed.summary.skipped == 30  # unchanged and already sent count as done
    assert sorted(resumed.results.groupby("status").size().to_dict().items()) == [
        ("accepted", 6),
        ("already_sent", 20),
        ("unchanged", 10),
    ]


def test_state_options_without_a_state_are_refused(tmp_path):
    with pytest.raises(InputError, match="need a state location"):
        load_events(None, write(endpoints(1), tmp_path / "p.parquet"), application_id=APP, full_refresh=True)


def test_an_application_id_that_is_no_file_name_is_refused(tmp_path):
    with pytest.raises(InputError, match="application_id must be"):
        load_events(
            None,
            write(endpoints(1), tmp_path / "p.parquet"),
            application_id="../elsewhere",
            state=str(tmp_path / "state"),
        )


def test_a_full_refresh_of_events_alone_keeps_what_the_state_holds_for_endpoints(loads):
    loads(events(10, 2), endpoints(10))
    loads(events(10, 2), None, full_refresh=True)
    after = loads(events(10, 2), endpoints(10))
    assert (after.summary.unchanged, after.summary.already_sent, after.summary.requests) == (10, 20, 0)

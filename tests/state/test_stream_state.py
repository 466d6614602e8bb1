"""The sync state on the Kinesis and Firehose sinks: moto's server on loopback, every record read back."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.cli import main
from airflow_provider_pinpoint.state import describe
from tests.helpers.items import emulator_client
from tests.helpers.moto_server import (
    REGION,
    create_delivery_stream,
    create_stream,
    decoded,
    delivered_lines,
    stream_records,
)
from tests.state.tables import APP, endpoints, events, write

pytestmark = pytest.mark.integration

UNCHANGED = "not sent: the same body was accepted for this endpoint before (sync state)"
ALREADY_SENT = "not sent: this event id was accepted for this endpoint before (sync state)"


class StreamLoads:
    """Runs of load_events into one stream (Kinesis or Firehose), each with its own input files and
    results table, all on one state."""

    def __init__(self, moto_server: str, tmp_path: Path, **target: str) -> None:
        self.url = moto_server
        self.tmp = tmp_path
        self.state = str(tmp_path / "state")
        self.target = target
        self.runs = 0

    def __call__(
        self,
        events_table: pa.Table | None = None,
        endpoints_table: pa.Table | None = None,
        *,
        run: str | None = None,
        **options: Any,
    ):
        """A run on its own input files and results table, or on those of ``run`` (to resume it)."""
        self.runs += 1
        day = self.tmp / (run or f"run{self.runs}")
        options.setdefault("state", self.state)
        return load_events(
            None if events_table is None else write(events_table, day / "events.parquet"),
            None if endpoints_table is None else write(endpoints_table, day / "endpoints.parquet"),
            application_id=APP,
            results=str(day / "results.parquet"),
            endpoint_url=self.url,
            region_name=REGION,
            progress=False,
            **self.target,
            **options,
        )


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def stream(moto_server: str) -> str:
    return create_stream(moto_server, shards=2)


@pytest.fixture
def loads(moto_server: str, tmp_path: Path, stream: str) -> StreamLoads:
    return StreamLoads(moto_server, tmp_path, sink="kinesis", stream_name=stream)


def records_in(loads: StreamLoads, stream: str) -> list[dict[str, Any]]:
    return decoded(stream_records(loads.url, stream))


def by_status(report) -> dict[tuple[str, str], int]:
    return report.results.groupby(["record_type", "status"]).size().to_dict()


def rows(report, record_type: str, status: str, column: str) -> list[str]:
    results = report.results
    chosen = results[(results["record_type"] == record_type) & (results["status"] == status)]
    return sorted(chosen[column])


def test_a_second_kinesis_run_of_the_same_tables_puts_no_record(loads, stream):
    first = loads(events(30, 3), endpoints(30))
    assert by_status(first) == {("endpoint", "accepted"): 30, ("event", "accepted"): 90}
    assert len(records_in(loads, stream)) == 120

    second = loads(events(30, 3), endpoints(30))

    assert len(records_in(loads, stream)) == 120  # not one record more in the stream
    s = second.summary
    assert (s.accepted, s.requests, s.unchanged, s.already_sent, s.input_rows) == (0, 0, 30, 90, 120)
    assert by_status(second) == {("endpoint", "unchanged"): 30, ("event", "already_sent"): 90}
    assert set(second.results["message"]) == {UNCHANGED, ALREADY_SENT}
    assert sorted(second.results["source_row"]) == sorted(first.results["source_row"])


def test_a_changed_endpoint_row_and_a_new_event_are_exactly_what_goes(loads, stream):
    loads(events(20, 2, day=1), endpoints(20))
    before = {(r["shard_id"], r["sequence_number"]) for r in stream_records(loads.url, stream)}

    day2_events = pa.concat_tables([events(20, 2, day=1), events(2, 1, day=2)])
    second = loads(day2_events, endpoints(20, changed=range(3, 6)))

    new = decoded([r for r in stream_records(loads.url, stream) if (r["shard_id"], r["sequence_number"]) not in before])
    updates = [record for record in new if record["event_type"] == "_endpoint.update"]
    assert sorted(record["client"]["client_id"] for record in updates) == ["ep-00003", "ep-00004", "ep-00005"]
    assert {record["endpoint"]["Attributes"]["segment"][0] for record in updates} == {"v1x"}
    assert sorted(record["event_id"] for record in new if record not in updates) == ["d2-00000-0", "d2-00001-0"]
    assert by_status(second) == {
        ("endpoint", "accepted"): 3,
        ("endpoint", "unchanged"): 17,
        ("event", "accepted"): 2,
        ("event", "already_sent"): 40,
    }
    # The stream's own wording of an accepted endpoint row is kept.
    assert rows(second, "endpoint", "accepted", "message") == ["sent as one _endpoint.update record"] * 3


def test_an_address_change_alone_leaves_an_endpoint_unchanged_on_a_stream(loads, stream):
    """Its record carries no Address: the stream would get the very same record."""
    loads(None, endpoints(10))
    moved = endpoints(10).set_column(2, "Address", pa.array([f"new{i}@example.com" for i in range(10)]))

    second = loads(None, moved)

    assert by_status(second) == {("endpoint", "unchanged"): 10}
    assert len(records_in(loads, stream)) == 10


def test_a_rejected_event_corrected_in_the_input_goes_on_the_next_run(loads, stream):
    first = loads(events(10, 2, bad=5), None)
    assert rows(first, "event", "rejected", "event_id") == ["d1-00002-1"]

    second = loads(events(10, 2), None)

    assert rows(second, "event", "accepted", "event_id") == ["d1-00002-1"]
    assert by_status(second)[("event", "already_sent")] == 19
    ids = [record["event_id"] for record in records_in(loads, stream)]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 20  # each event once


def test_the_putevents_state_of_the_same_application_is_kept_apart(loads, stream, emulator):
    loads(events(10, 2), endpoints(10))

    to_pinpoint = load_events(
        write(events(10, 2), loads.tmp / "pinpoint" / "events.parquet"),
        write(endpoints(10), loads.tmp / "pinpoint" / "endpoints.parquet"),
        application_id=APP,
        results=str(loads.tmp / "pinpoint" / "results.parquet"),
        client=emulator_client(emulator.url),
        state=loads.state,
        progress=False,
    )
    again_to_kinesis = loads(events(10, 2), endpoints(10))

    # What the stream accepted says nothing of PutEvents, and the other way round.
    assert by_status(to_pinpoint) == {("endpoint", "accepted"): 10, ("event", "accepted"): 20}
    assert by_status(again_to_kinesis) == {("endpoint", "unchanged"): 10, ("event", "already_sent"): 20}
    held = {
        (d["sink"], d["application_id"]): (d["endpoints"], d["events"]) for d in describe(loads.state)["destinations"]
    }
    assert held == {(f"kinesis.{loads.target['stream_name']}", APP): (10, 20), ("pinpoint", APP): (10, 20)}


def test_a_second_firehose_run_delivers_nothing_and_a_changed_endpoint_goes(moto_server, tmp_path):
    name, bucket = create_delivery_stream(moto_server)
    loads = StreamLoads(moto_server, tmp_path, sink="firehose", delivery_stream_name=name)
    loads(events(10, 2), endpoints(10))
    assert len(delivered_lines(moto_server, bucket)) == 30

    same = loads(events(10, 2), endpoints(10))
    changed = loads(events(10, 2), endpoints(10, changed=range(4, 5)))

    assert by_status(same) == {("endpoint", "unchanged"): 10, ("event", "already_sent"): 20}
    assert by_status(changed)[("endpoint", "accepted")] == 1
    lines = delivered_lines(moto_server, bucket)
    updates = sorted(
        (line["client"]["client_id"], line["endpoint"]["Attributes"]["segment"][0])
        for line in lines
        if line["event_type"] == "_endpoint.update"
    )
    assert len(lines) == 31
    assert updates == sorted([(f"ep-{i:05d}", "v1") for i in range(10)] + [("ep-00004", "v1x")])


def test_the_cli_takes_a_state_with_a_kinesis_sink(moto_server, stream, tmp_path, capsys):
    files = [write(events(5, 2), tmp_path / "events.parquet"), write(endpoints(5), tmp_path / "endpoints.parquet")]

    def run(n: int) -> dict[str, Any]:
        argv = ["--application-id", APP, "--events", files[0], "--endpoints", files[1]]
        argv += ["--results", str(tmp_path / f"results{n}.parquet"), "--state", str(tmp_path / "state")]
        argv += ["--sink", "kinesis", "--stream-name", stream, "--endpoint-url", moto_server, "--region", REGION]
        assert main([*argv, "--no-progress", "--output", "json"]) == 0
        return json.loads(capsys.readouterr().out.splitlines()[-1])

    first, second = run(1), run(2)

    assert (first["accepted"], first["unchanged"], first["already_sent"]) == (15, 0, 0)
    assert (second["accepted"], second["unchanged"], second["already_sent"], second["requests"]) == (0, 5, 10, 0)
    assert len(stream_records(moto_server, stream)) == 15


def test_rows_a_stopped_run_did_not_deliver_go_on_the_resumed_run_and_then_nothing_does(loads, stream):
    stop = threading.Event()
    stop.set()  # the run stops before it sends anything: the rows it took are failed, none remembered
    stopped = loads(events(10, 2), endpoints(10), run="resumed", stop_event=stop)
    # The endpoints are always taken before the stop is seen; the events, depending on how far the
    # preparing thread got by then, are taken and failed too, or not read at all.
    assert stopped.summary.stopped and by_status(stopped) in (
        {("endpoint", "failed"): 10},
        {("endpoint", "failed"): 10, ("event", "failed"): 20},
    )
    assert records_in(loads, stream) == []

    resumed = loads(events(10, 2), endpoints(10), run="resumed")
    again = loads(events(10, 2), endpoints(10))

    assert by_status(resumed) == {("endpoint", "accepted"): 10, ("event", "accepted"): 20}
    assert by_status(again) == {("endpoint", "unchanged"): 10, ("event", "already_sent"): 20}
    assert len(records_in(loads, stream)) == 30


def test_a_full_refresh_puts_every_record_again(loads, stream):
    loads(events(5, 2), endpoints(5))

    refreshed = loads(events(5, 2), endpoints(5), full_refresh=True)

    assert by_status(refreshed) == {("endpoint", "accepted"): 5, ("event", "accepted"): 10}
    assert len(records_in(loads, stream)) == 30


def test_each_stream_of_one_application_keeps_its_own_state(loads, stream, moto_server):
    loads(events(10, 2), endpoints(10))
    other = create_stream(moto_server, shards=1)
    other_loads = StreamLoads(moto_server, loads.tmp / "other", sink="kinesis", stream_name=other)
    other_loads.state = loads.state  # the same state location

    into_other = other_loads(events(10, 2), endpoints(10))

    # What the first stream accepted keeps nothing from the second: every record goes there once.
    assert by_status(into_other) == {("endpoint", "accepted"): 10, ("event", "accepted"): 20}
    assert len(records_in(loads, other)) == 30
    again = other_loads(events(10, 2), endpoints(10))
    assert by_status(again) == {("endpoint", "unchanged"): 10, ("event", "already_sent"): 20}

"""load_events on the sample data through boto3's real client and the emulator on loopback, faults included.

Each run must end with every valid event accepted at the emulator and a results table that reconciles:
one row per input row, accepted + rejected + failed == input rows.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import boto3
import fsspec
import pandas as pd
import pyarrow as pa
import pytest
from botocore.config import Config
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.emulator import run_emulator
from airflow_provider_pinpoint.errors import FatalServiceError, InputError, PinpointLoaderError, RejectRatioExceeded
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.results.store import ResultsStore
from airflow_provider_pinpoint.sending.engine import ACCEPTED, Sender
from airflow_provider_pinpoint.sending.ratelimit import RateLimiter
from airflow_provider_pinpoint.sinks.putevents import PutEventsTransport
from tests.helpers.arrow_stream import DataFrame as ArrowStreamFrame
from tests.helpers.items import APP, emulator_client, make_items

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
EVENTS = SAMPLE / "events.parquet"
ENDPOINTS = SAMPLE / "endpoints.parquet"
INPUT_ROWS = len(pd.read_parquet(EVENTS)) + len(pd.read_parquet(ENDPOINTS))
SECRET = "wJalrXUtnFEMI-sending-test-secret"


def load(emulator, tmp_path, **options):
    options.setdefault("requests_per_second", 500)
    return load_events(
        EVENTS,
        ENDPOINTS,
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
        **options,
    )


def assert_reconciled(frame: pd.DataFrame, emulator, journal: list, *, input_rows: int = INPUT_ROWS) -> None:
    assert len(frame) == input_rows
    for _, rows in frame.groupby(["record_type", "source"])["source_row"]:
        assert sorted(rows) == list(range(1, len(rows) + 1))
    # Compaction keeps one row per input row, so "no row twice" is checked on what each run wrote.
    written = pa.Table.from_batches(journal).to_pandas()
    assert not written.duplicated(["run_id", "record_type", "source", "source_row"]).any()
    assert frame["status"].isin(["accepted", "rejected", "failed"]).all()
    accepted = frame[(frame["status"] == ACCEPTED) & (frame["record_type"] == "event")]
    received = {(e["endpoint_id"], e["event_id"]) for e in emulator.events(APP)}
    assert set(zip(accepted["endpoint_id"], accepted["event_id"], strict=True)) == received


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_sample_data_goes_through_and_the_table_reconciles(fmt, emulator, tmp_path, journal):
    report = load_events(
        SAMPLE / f"events.{fmt}",
        SAMPLE / f"endpoints.{fmt}",
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
    )
    frame = pd.read_parquet(tmp_path / "results.parquet")
    assert_reconciled(frame, emulator, journal)
    assert report.summary.failed == 0
    assert report.summary.accepted + report.summary.rejected == INPUT_ROWS
    assert report.results.equals(frame)
    assert all(e["receive_count"] == 1 for e in emulator.events(APP))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.parquet"]


def test_json_lines_events_with_nested_objects_load_like_the_same_rows_in_parquet(emulator, tmp_path, journal):
    records = pd.read_parquet(EVENTS).to_dict(orient="records")
    with gzip.open(tmp_path / "events.jsonl.gz", "wt", encoding="utf-8") as f:
        for record in records:
            nested: dict = {}
            for name, value in record.items():
                if pd.isna(value):
                    continue
                head, _, rest = name.partition(".")
                value = value.isoformat() if isinstance(value, pd.Timestamp) else value
                (nested.setdefault(head, {}).__setitem__(rest, value) if rest else nested.__setitem__(head, value))
            f.write(json.dumps(nested) + "\n")
    same_rows = load_events(EVENTS, ENDPOINTS, application_id=APP, dry_run=True, progress=False).summary
    report = load_events(
        tmp_path / "events.jsonl.gz",
        ENDPOINTS,
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
    )
    assert_reconciled(report.results, emulator, journal)
    assert (report.summary.rejected, report.summary.events_accepted) == (same_rows.rejected, same_rows.valid_events)


def test_polars_like_tables_load_through_their_arrow_stream(emulator, tmp_path):
    # Polars exports text as string_view and lists as large_list.
    events = pa.table(
        {
            "EndpointId": pa.array(["ep-1", "ep-2"], pa.string_view()),
            "EventType": pa.array(["buy", "view"], pa.string_view()),
            "Timestamp": pa.array([1_795_000_000_000] * 2, pa.timestamp("ms", tz="UTC")),
            "Metrics.price": [1.5, None],
        }
    )
    endpoints = pa.table(
        {
            "Id": pa.array(["ep-1"], pa.string_view()),
            "ChannelType": ["EMAIL"],
            "Address": ["someone@example.com"],
            "Attributes.tags": pa.array([["a", "b"]], pa.large_list(pa.string_view())),
        }
    )
    report = load_events(
        ArrowStreamFrame(events),
        ArrowStreamFrame(endpoints),
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
    )
    assert (report.summary.accepted, report.summary.rejected, report.summary.failed) == (3, 0, 0)
    assert sorted(e["endpoint_id"] for e in emulator.events(APP)) == ["ep-1", "ep-2"]
    assert emulator.endpoints(APP)["ep-1"]["Attributes"] == {"tags": ["a", "b"]}
    assert set(report.results["source"]) == {"events", "endpoints"}


class RecordingFileSystem(MemoryFileSystem):
    """An in-memory filesystem that records the options each instance was made with."""

    protocol = "recording"
    built: list[dict] = []

    def __init__(self, *args, **options):
        RecordingFileSystem.built.append(options)
        super().__init__(*args, **options)

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path.removeprefix("recording://"))


@pytest.fixture
def recording_fs():
    fsspec.register_implementation("recording", RecordingFileSystem, clobber=True)
    RecordingFileSystem.clear_instance_cache()
    RecordingFileSystem.built.clear()
    fs = RecordingFileSystem(skip_instance_cache=True)
    yield fs
    fs.rm("/sopts", recursive=True)
    RecordingFileSystem.built.clear()


def test_storage_options_make_the_filesystem_of_the_inputs_and_the_results(emulator, recording_fs, caplog):
    recording_fs.pipe("/sopts/events/part-0.csv", (SAMPLE / "events.csv").read_bytes())
    recording_fs.built.clear()
    options = {"key": "AKIA-TEST-KEY", "secret": SECRET, "endpoint_url": "http://127.0.0.1:9"}
    caplog.set_level(logging.DEBUG)

    def run():
        return load_events(
            "recording://sopts/events/",
            ENDPOINTS,
            application_id=APP,
            results="recording://sopts/results.parquet",
            client=emulator_client(emulator.url),
            progress="log",
            storage_options=options,
        )

    report = run()
    assert recording_fs.built == [options]  # one filesystem, made with the options, for input and results
    assert recording_fs.exists("/sopts/results.parquet")
    assert report.summary.accepted + report.summary.rejected == report.summary.input_rows > 0
    assert report.summary.results == "recording://sopts/results.parquet"
    assert set(report.results["source"]) >= {"recording://sopts/events/part-0.csv"}
    again = run()
    assert again.summary.skipped == report.summary.input_rows  # the results were read back through it
    for shown in (caplog.text, repr(report), str(report.summary.to_dict()), report.results.to_csv()):
        assert SECRET not in shown and "AKIA-TEST-KEY" not in shown


def test_storage_options_without_any_url_are_refused_unless_empty(tmp_path):
    with pytest.raises(InputError, match="storage_options apply to fsspec URLs"):
        load_events(EVENTS, application_id=APP, results=str(tmp_path / "r.parquet"), storage_options={"key": "k"})
    report = load_events(EVENTS, application_id=APP, dry_run=True, progress=False, storage_options={})
    assert report.summary.input_rows > 0


class _Tables(HTMLParser):
    """The tables of an HTML fragment: each a list of rows, each a list of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")
            self._in_cell = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.tables[-1][-1][-1] += data


def test_a_report_shows_counts_and_reasons_in_a_notebook_and_hands_out_rejected_and_failed_rows(emulator, tmp_path):
    emulator.configure(item_error_rate=0.2)
    report = load(emulator, tmp_path, max_attempts=1)
    summary, frame = report.summary, pd.read_parquet(tmp_path / "results.parquet")
    assert summary.rejected > 0 and summary.failed > 0

    rejected, failed = report.rejected(), report.failed()
    assert (len(rejected), len(failed)) == (summary.rejected, summary.failed)
    assert set(rejected["status"]) == {"rejected"} and set(failed["status"]) == {"failed"}
    assert list(rejected.columns) == list(frame.columns) and list(rejected.index) == list(range(len(rejected)))
    assert report.results is not None and report.rejected().equals(rejected)  # the same from the cached frame

    parser = _Tables()
    parser.feed(report._repr_html_())
    (header, *rows), *reasons = parser.tables
    assert header == ["record type", "accepted", "rejected", "failed"]
    by_type = frame.groupby(["record_type", "status"]).size()
    assert rows == [
        [record_type, *(f"{by_type.get((record_type, status), 0):,}" for status in header[1:])]
        for record_type in ("endpoint", "event")
    ]
    assert [table[0] for table in reasons] == [["rows", "reason"]] * 2  # rejected, then failed
    for table, status in zip(reasons, ("rejected", "failed"), strict=True):
        assert 0 < len(table[1:]) <= 5
        counts = [int(row[0].replace(",", "")) for row in table[1:]]
        assert counts == sorted(counts, reverse=True) and sum(counts) <= (frame["status"] == status).sum()
    assert " row " not in " ".join(row[1] for row in reasons[0][1:])  # reasons, not the messages of single rows

    shown = repr(report)
    assert "\n" not in shown and len(shown) < 200
    assert f"{summary.accepted:,} accepted, {summary.rejected:,} rejected, {summary.failed:,} failed" in shown


FAULTS = {
    "429 storm": {"rate_limit": 8},
    "500s": {"error_rate": 0.3},
    "dropped connections": {"drop_rate": 0.2},
    "lost responses": {"lost_response_rate": 0.2},
    "per-item 429/500": {"item_error_rate": 0.2},
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_every_valid_event_arrives_despite(fault, emulator, tmp_path, journal):
    emulator.configure(seed=7, **FAULTS[fault])
    report = load(emulator, tmp_path, max_attempts=12, requests_per_second=40)
    frame = report.results
    assert report.summary.failed == 0
    assert_reconciled(frame, emulator, journal)
    assert report.summary.retries > 0
    if fault != "lost responses":
        assert all(e["receive_count"] == 1 for e in emulator.events(APP))


def test_413_splits_the_request_and_every_item_arrives(emulator):
    # ~10 KB endpoints: 500 of them make one body over the 4 MB the service takes.
    items = make_items(500, 0)
    for item in items:
        item.body = '{"Attributes":{' + ",".join(f'"a{k}":["{"x" * 99}"]' for k in range(90)) + "}}"
    assert len(Request(items).body()) > 4 * 1024 * 1024
    decided = []
    sender = Sender(
        PutEventsTransport(emulator_client(emulator.url)),
        APP,
        record=lambda outcomes: decided.extend(outcomes.rows()),
        limiter=RateLimiter(100),
    )
    stats = sender.run([Request(items)])
    assert {r.status for r in decided} == {ACCEPTED}
    assert len(decided) == len(items)
    assert len(emulator.endpoints(APP)) == len(items)
    assert stats.requests >= 3


@pytest.mark.parametrize(
    ("emulator_options", "expected"),
    [({"access_key": "the-right-key"}, "HTTP 403"), ({"apps": ["another-app"]}, "HTTP 404")],
    ids=["403", "404"],
)
def test_forbidden_and_unknown_application_stop_the_run_at_once(emulator_options, expected, tmp_path):
    with run_emulator(**emulator_options) as emu:
        client = emulator_client(emu.url, access_key="AKIASENDINGTESTKEY", secret_key=SECRET)
        with pytest.raises(FatalServiceError) as caught:
            load_events(
                EVENTS,
                ENDPOINTS,
                application_id=APP,
                results=str(tmp_path / "results.parquet"),
                client=client,
                max_in_flight=4,
                progress=False,
            )
        assert emu.stats()["requests"] <= 4
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert SECRET not in message and "AKIASENDINGTESTKEY" not in message


def test_reject_ratio_is_checked_after_the_good_rows_were_sent(emulator, tmp_path, journal):
    with pytest.raises(RejectRatioExceeded) as caught:
        load(emulator, tmp_path, max_reject_ratio=0.001)
    report = caught.value.report
    assert report.summary.rejected > 0
    assert_reconciled(pd.read_parquet(tmp_path / "results.parquet"), emulator, journal)


def test_on_invalid_fail_sends_nothing(emulator, tmp_path):
    from airflow_provider_pinpoint.errors import InputError

    with pytest.raises(InputError, match="invalid row"):
        load(emulator, tmp_path, on_invalid="fail")
    assert emulator.stats()["requests"] == 0


def test_dry_run_sends_and_writes_nothing(emulator, tmp_path):
    report = load(emulator, tmp_path, dry_run=True)
    assert emulator.stats()["requests"] == 0
    assert list(tmp_path.iterdir()) == []
    assert report.summary.input_rows == INPUT_ROWS
    assert report.first_request is not None and report.summary.requests > 0


def test_a_rerun_sends_only_what_is_not_done(emulator, tmp_path, journal):
    load(emulator, tmp_path)
    requests_before = emulator.stats()["requests"]
    report = load(emulator, tmp_path)
    assert emulator.stats()["requests"] == requests_before
    assert report.summary.skipped == INPUT_ROWS
    assert_reconciled(report.results, emulator, journal)


def test_stop_event_leaves_a_table_a_rerun_completes(emulator, tmp_path, journal):
    stop = threading.Event()
    emulator.configure(rate_limit=5)
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    first = load(emulator, tmp_path, stop_event=stop, requests_per_second=5)
    timer.join()
    assert first.summary.stopped
    assert first.summary.failed > 0
    assert ResultsStore(tmp_path / "results.parquet").exists()
    emulator.configure(rate_limit=None)
    second = load(emulator, tmp_path)
    assert second.summary.failed == 0
    assert_reconciled(second.results, emulator, journal)


def test_results_go_to_an_fsspec_url_and_resume_from_there(emulator, tmp_path):
    import fsspec

    location = f"memory://sending-tests/{tmp_path.name}/results.csv"
    options = {"application_id": APP, "results": location, "client": emulator_client(emulator.url), "progress": False}
    first = load_events(EVENTS, ENDPOINTS, **options)
    with fsspec.open(location, "rb") as f:
        frame = pd.read_csv(f)
    assert len(frame) == INPUT_ROWS == first.summary.input_rows
    assert fsspec.filesystem("memory").ls(f"/sending-tests/{tmp_path.name}", detail=False) == [
        f"/sending-tests/{tmp_path.name}/results.csv"
    ]
    second = load_events(EVENTS, ENDPOINTS, **options)
    assert second.summary.skipped == INPUT_ROWS and second.summary.requests == 0


@pytest.mark.filterwarnings("ignore:UPath 'dir' filesystem not explicitly implemented")
def test_results_go_through_a_path_objects_own_filesystem_and_resume_from_it(emulator, tmp_path):
    """A UPath / ObjectStoragePath brings a filesystem made with its options (an Airflow connection's
    credentials, here a root directory): the table must be written through it, not by its URL."""
    import json

    from upath import UPath

    location = UPath("dir://out/results.parquet", path=str(tmp_path), target_protocol="file")
    options = {"application_id": APP, "results": location, "client": emulator_client(emulator.url), "progress": False}
    first = load_events(EVENTS, ENDPOINTS, **options)
    assert len(pd.read_parquet(tmp_path / "out" / "results.parquet")) == INPUT_ROWS
    assert os.listdir(tmp_path / "out") == ["results.parquet"]
    assert first.summary.results == str(location)  # its text, not the object
    json.dumps(first.summary.to_dict())  # XCom-ready: the path object itself is not in it
    second = load_events(EVENTS, ENDPOINTS, **options)
    assert second.summary.skipped == INPUT_ROWS and second.summary.requests == 0


def test_results_of_another_type_are_refused_with_a_clear_error(emulator):
    with pytest.raises(InputError, match="results must be a path, a URL or an ObjectStoragePath, not a dict"):
        load_events(EVENTS, application_id=APP, results={"path": "x"}, client=emulator_client(emulator.url))


def events_frame(n: int, *, tag: str = "a") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "EndpointId": [f"{tag}-ep-{i % 50:03d}" for i in range(n)],
            "EventId": [f"{tag}-ev-{i:05d}" for i in range(n)],
            "EventType": ["purchase"] * n,
            "Timestamp": ["2026-01-01T00:00:00Z"] * n,
        }
    )


def test_a_results_write_failure_stops_the_run_with_an_error_naming_the_location(emulator, tmp_path, monkeypatch):
    from airflow_provider_pinpoint.errors import PinpointLoaderError
    from airflow_provider_pinpoint.results.journal import ResultsWriter

    calls = 0
    add_outcomes = ResultsWriter.add_outcomes

    def failing(self, results):
        nonlocal calls
        calls += 1
        if calls >= 3:
            raise OSError(28, "No space left on device")
        add_outcomes(self, results)

    monkeypatch.setattr(ResultsWriter, "add_outcomes", failing)
    location = str(tmp_path / "results.parquet")
    with pytest.raises(PinpointLoaderError) as caught:
        load_events(
            events_frame(1_000),
            application_id=APP,
            results=location,
            client=emulator_client(emulator.url),
            progress=False,
            requests_per_second=500,
        )
    message = str(caught.value)
    assert location in message and "No space left" in message and "\n" not in message


def test_a_stopped_run_records_every_row_it_read_as_sent_or_not_sent(emulator, tmp_path):
    # One DataFrame is read and packed whole before the stop: every one of its rows must be in the table.
    stop = threading.Event()
    emulator.configure(latency_ms=200)
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    report = load_events(
        events_frame(1_000),
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
        max_in_flight=1,
        stop_event=stop,
    )
    timer.join()
    assert report.summary.stopped
    assert report.summary.input_rows == 1_000
    assert report.summary.failed > 0


@pytest.mark.parametrize(
    ("second_input", "what"),
    [
        (events_frame(300, tag="b"), "endpoint id"),
        (events_frame(300).assign(EventId=[f"other-{i}" for i in range(300)]), "event id"),
    ],
    ids=["endpoint ids", "event ids"],
)
def test_a_rerun_on_a_different_input_with_the_same_results_is_refused(second_input, what, emulator, tmp_path):
    location = str(tmp_path / "results.parquet")
    options = {"application_id": APP, "results": location, "client": emulator_client(emulator.url), "progress": False}
    load_events(events_frame(300), **options)
    requests_before = emulator.stats()["requests"]
    with pytest.raises(InputError) as caught:
        load_events(second_input, **options)
    assert str(caught.value) == (
        f"events row 1: the results at {location} were written for a different input ({what} differs); "
        "use a new results location"
    )
    assert emulator.stats()["requests"] == requests_before


def test_a_results_table_with_fewer_rows_than_the_input_fails_the_run(emulator, tmp_path, monkeypatch):
    # Whatever makes the compacted table lose a row (two rows under one key, a faulty store), the run
    # must not end as if every row were accounted for. Here compaction drops the table's last row.
    compact = ResultsStore.compact

    def losing_a_row(self: ResultsStore) -> dict[str, int]:
        counts = compact(self)
        counts[ACCEPTED] -= 1
        return counts

    monkeypatch.setattr(ResultsStore, "compact", losing_a_row)
    with pytest.raises(
        PinpointLoaderError, match=rf"hold {INPUT_ROWS - 1} rows, but the input gave {INPUT_ROWS}"
    ) as caught:
        load(emulator, tmp_path)
    assert "\n" not in str(caught.value)


def test_a_second_load_on_a_held_results_location_refuses_before_sending_anything(emulator, tmp_path):
    from airflow_provider_pinpoint.results.lock import LocationBusy

    location = tmp_path / "results.parquet"
    stop = threading.Event()
    first: dict = {}

    def slow_first_run() -> None:
        first["report"] = load(emulator, tmp_path, requests_per_second=2, stop_event=stop)

    runner = threading.Thread(target=slow_first_run)
    runner.start()
    try:
        for _ in range(200):  # the first run holds the location once it has sent something
            if emulator.stats()["requests"]:
                break
            threading.Event().wait(0.05)
        with pytest.raises(LocationBusy, match=r"results\.parquet are in use by run"):
            load_events(EVENTS, application_id="second-app", results=location, client=emulator_client(emulator.url))
    finally:
        stop.set()
        runner.join(60)
    assert emulator.events("second-app") == []
    # The first run's table is whole: one row per row it read, and a resume completes the input.
    stopped = first["report"]
    assert len(stopped.results) == stopped.summary.input_rows > 0
    assert load(emulator, tmp_path).summary.input_rows == INPUT_ROWS


def test_the_error_that_stopped_a_run_is_not_hidden_by_a_failing_compaction(tmp_path, monkeypatch):
    from airflow_provider_pinpoint.results.journal import ResultsWriteError

    def failing(self: ResultsStore) -> dict[str, int]:
        raise ResultsWriteError("could not write the results (OSError: no space left on device)")

    monkeypatch.setattr(ResultsStore, "compact", failing)
    with run_emulator(apps=["another-app"]) as emu, pytest.raises(FatalServiceError, match="HTTP 404"):
        load_events(EVENTS, application_id=APP, results=str(tmp_path / "r.parquet"), client=emulator_client(emu.url))


@pytest.mark.parametrize(
    "option",
    [
        {"requests_per_second": float("nan")},
        {"requests_per_second": float("inf")},
        {"requests_per_second": "5"},
        {"max_in_flight": "8"},
        {"max_in_flight": 2.5},
        {"max_attempts": 1.5},
        {"max_attempts": None},
    ],
    ids=repr,
)
def test_a_rate_or_count_that_is_no_number_is_refused_before_anything_is_sent(emulator, option, tmp_path):
    """NaN passed the "<= 0" check and turned the rate limit off; text failed with a TypeError."""
    events = pa.table({"EndpointId": ["a"], "EventType": ["e"], "Timestamp": ["2026-11-24T00:00:00Z"]})
    with pytest.raises(InputError, match="requests_per_second must be a finite number"):
        load_events(
            events,
            application_id=APP,
            client=emulator_client(emulator.url),
            results=str(tmp_path / "r.parquet"),
            **option,
        )
    assert emulator.stats()["requests"] == 0


@pytest.mark.parametrize(
    "option", [{"region_name": "not a region!"}, {"endpoint_url": "no scheme here"}], ids=["region", "endpoint"]
)
def test_a_client_that_cannot_be_made_fails_in_one_line(option, tmp_path):
    events = pa.table({"EndpointId": ["a"], "EventType": ["e"], "Timestamp": ["2026-11-24T00:00:00Z"]})
    options = {"region_name": "us-east-1", **option}
    with pytest.raises(PinpointLoaderError, match="Cannot make the AWS client"):
        load_events(events, application_id=APP, results=str(tmp_path / "r.parquet"), **options)


def _stop_after_requests(emulator, stop: threading.Event, requests: int, timeout_s: float = 60.0) -> None:
    """Set ``stop`` once the emulator has received ``requests`` requests (or after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while emulator.stats()["requests"] < requests and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()


def test_a_stop_says_which_failed_rows_had_been_sent_before(emulator, tmp_path):
    # Every item answered 429/500 within a 202: items wait in the retry pool when the stop comes.
    emulator.configure(item_error_rate=1.0)
    stop = threading.Event()
    # The stop comes once the emulator has answered a few requests (not after a fixed time, which a
    # busy machine can reach before the first request goes out).
    threading.Thread(target=_stop_after_requests, args=(emulator, stop, 3), daemon=True).start()
    report = load(emulator, tmp_path, stop_event=stop, max_attempts=50)
    rows = report.results
    failed = rows[rows["status"] == "failed"]
    sent_before = failed[failed["attempts"] > 0]
    assert len(sent_before) and sent_before["message"].str.startswith("not sent again: the run was stopped").all()
    never_sent = failed[failed["attempts"] == 0]
    assert never_sent["message"].str.startswith("not sent: the run was stopped").all()


def test_a_client_with_fewer_connections_than_max_in_flight_sends_as_many_at_once_as_it_has(
    emulator, tmp_path, monkeypatch, caplog
):
    # Threads beyond the client's pool would open and drop a connection for each request.
    sending, peak, lock = 0, 0, threading.Lock()
    send = PutEventsTransport.send

    def counted(self, application_id, request):
        nonlocal sending, peak
        with lock:
            sending += 1
            peak = max(peak, sending)
        try:
            return send(self, application_id, request)
        finally:
            with lock:
                sending -= 1

    monkeypatch.setattr(PutEventsTransport, "send", counted)
    emulator.configure(latency_ms=20)
    events = pd.DataFrame(
        {"EndpointId": [f"ep-{i}" for i in range(2_000)], "EventType": "view", "Timestamp": "2026-11-24T00:00:00Z"}
    )
    with caplog.at_level(logging.INFO, logger="airflow_provider_pinpoint"):
        report = load_events(
            events,
            application_id=APP,
            results=str(tmp_path / "results.parquet"),
            client=boto3.client(
                "pinpoint",
                endpoint_url=emulator.url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=4),
            ),
            requests_per_second=10_000,
            max_in_flight=16,
            progress=False,
        )
    assert report.summary.accepted == 2_000
    assert 1 < peak <= 4
    assert len([r for r in caplog.records if "not max_in_flight=16" in r.getMessage()]) == 1

"""load_events on the sample data through boto3's real client and the emulator on loopback, faults included.

Each run must end with every valid event accepted at the emulator and a results table that reconciles:
one row per input row, accepted + rejected + failed == input rows.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.emulator import run_emulator
from airflow_provider_pinpoint.errors import FatalServiceError, InputError, PinpointLoaderError, RejectRatioExceeded
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.results.store import ResultsStore
from airflow_provider_pinpoint.sending.engine import ACCEPTED, Sender
from airflow_provider_pinpoint.sending.ratelimit import RateLimiter
from airflow_provider_pinpoint.sinks.putevents import PutEventsTransport
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

    UPath = pytest.importorskip("upath").UPath  # comes with Airflow: absent from the lean install

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
    assert first["report"].summary.input_rows == INPUT_ROWS  # the first run's table is whole


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

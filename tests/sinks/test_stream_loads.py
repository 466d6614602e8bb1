"""The sample tables into a real Kinesis stream and a real Firehose delivery stream (moto's server on
loopback), through the notebook API and the CLI; every record read back and compared with the input."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.cli import main
from airflow_provider_pinpoint.errors import FatalServiceError, InputError
from airflow_provider_pinpoint.load import LoadReport
from airflow_provider_pinpoint.sinks.connect import ENDPOINT_RECORD_NOTE
from tests.helpers.event_stream import expected_device, expected_event, millis
from tests.helpers.moto_server import (
    REGION,
    create_delivery_stream,
    create_stream,
    decoded,
    delivered_lines,
    moto_client,
    stream_records,
    unique_name,
)

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
EVENTS = SAMPLE / "events.parquet"
ENDPOINTS = SAMPLE / "endpoints.parquet"
APP = "app-streams"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _rows(path: Path) -> list[dict[str, Any]]:
    return pd.read_parquet(path).to_dict("records")


def _load(moto_server: str, tmp_path: Path, **target: str) -> LoadReport:
    """The sample tables through the notebook API into the sink and stream ``target`` names."""
    return load_events(
        EVENTS,
        ENDPOINTS,
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        endpoint_url=moto_server,
        region_name=REGION,
        **target,
    )


def assert_delivered_as_documented(records: list[dict[str, Any]], results: pd.DataFrame) -> None:
    """Every accepted row's record is there exactly once, mapped as documented; nothing else is."""
    accepted = results[results["status"] == "accepted"]
    rows = _rows(EVENTS)
    # Rows without an EventId get a derived one: the results table says which row each id is.
    event_rows = accepted[accepted["record_type"] == "event"]
    events = {
        event_id: rows[source_row - 1] | {"EventId": event_id}
        for event_id, source_row in zip(event_rows["event_id"], event_rows["source_row"], strict=True)
    }
    endpoints = {row["Id"]: row for row in _rows(ENDPOINTS)}
    accepted_endpoints = set(accepted.loc[accepted["record_type"] == "endpoint", "endpoint_id"])

    event_records = [record for record in records if record["event_type"] != "_endpoint.update"]
    endpoint_records = [record for record in records if record["event_type"] == "_endpoint.update"]
    counts = collections.Counter(record["event_id"] for record in event_records)
    assert counts == collections.Counter(accepted.loc[accepted["record_type"] == "event", "event_id"])
    for record in event_records:
        assert isinstance(record.pop("arrival_timestamp"), int)
        endpoint_id = record["client"]["client_id"]
        endpoint = endpoints.get(endpoint_id) if endpoint_id in accepted_endpoints else None
        assert record == expected_event(events[record["event_id"]], endpoint, APP)

    assert sorted(record["client"]["client_id"] for record in endpoint_records) == sorted(accepted_endpoints)
    for record in endpoint_records:
        row = endpoints[record["client"]["client_id"]]
        assert "Address" not in record["endpoint"] and row["Address"] not in json.dumps(record)
        assert record["endpoint"]["ChannelType"] == row["ChannelType"]
        effective = millis(row["EffectiveDate"])
        if effective is not None:
            assert record["event_timestamp"] == effective
        else:  # the time the load started, moments before it sent the record
            assert 0 <= record["arrival_timestamp"] - record["event_timestamp"] < 600_000
        assert record.get("device", {}) == expected_device(row)
    assert len({record["event_id"] for record in endpoint_records}) == len(endpoint_records)


def assert_results_account_for_every_row(results: pd.DataFrame) -> None:
    assert len(results) == len(_rows(EVENTS)) + len(_rows(ENDPOINTS))
    assert set(results["status"]) == {"accepted", "rejected"}
    endpoints = results[(results["record_type"] == "endpoint") & (results["status"] == "accepted")]
    assert set(endpoints["message"]) == {ENDPOINT_RECORD_NOTE}


def test_the_notebook_api_loads_the_sample_tables_into_a_kinesis_stream(moto_server: str, tmp_path: Path) -> None:
    stream = create_stream(moto_server, shards=2)

    report = _load(moto_server, tmp_path, sink="kinesis", stream_name=stream)

    raw = stream_records(moto_server, stream)
    records = decoded(raw)
    assert all(
        record["partition_key"] == data["client"]["client_id"] for record, data in zip(raw, records, strict=True)
    )
    assert len({record["shard_id"] for record in raw}) == 2
    assert_results_account_for_every_row(report.results)
    assert_delivered_as_documented(records, report.results)


def test_the_notebook_api_loads_the_sample_tables_into_a_firehose_delivery_stream_as_json_lines(
    moto_server: str, tmp_path: Path
) -> None:
    name, bucket = create_delivery_stream(moto_server)

    report = _load(moto_server, tmp_path, sink="firehose", delivery_stream_name=name)

    assert_results_account_for_every_row(report.results)
    assert_delivered_as_documented(delivered_lines(moto_server, bucket), report.results)


def cli(moto_server: str, results: Path, *extra: str) -> list[str]:
    return [
        "--application-id",
        APP,
        "--events",
        str(EVENTS),
        "--endpoints",
        str(ENDPOINTS),
        "--results",
        str(results),
        "--endpoint-url",
        moto_server,
        "--region",
        REGION,
        "--no-progress",
        *extra,
    ]


@pytest.mark.parametrize("sink", ["kinesis", "firehose"])
def test_the_cli_loads_the_sample_tables_into_a_stream(
    sink: str, moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.parquet"
    if sink == "kinesis":
        stream = create_stream(moto_server, shards=1)
        target = ["--sink", "kinesis", "--stream-name", stream]
    else:
        stream, bucket = create_delivery_stream(moto_server)
        target = ["--sink", "firehose", "--delivery-stream", stream]

    code = main(cli(moto_server, results, *target, "--output", "json"))

    summary = json.loads(capsys.readouterr().out)
    table = pd.read_parquet(results)
    assert code == 0
    assert (summary["accepted"], summary["rejected"], summary["failed"]) == (2634, 6, 0)
    assert_results_account_for_every_row(table)
    records = (
        decoded(stream_records(moto_server, stream)) if sink == "kinesis" else delivered_lines(moto_server, bucket)
    )
    assert_delivered_as_documented(records, table)


def test_a_partial_cli_run_resumes_with_the_rest_and_every_record_arrives_once(
    moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = create_stream(moto_server, shards=2)
    results = tmp_path / "results.parquet"
    target = ("--sink", "kinesis", "--stream-name", stream)

    assert main(cli(moto_server, results, *target, "--limit", "500")) == 0
    first = len(stream_records(moto_server, stream))
    assert main(cli(moto_server, results, *target, "--resume", "--output", "json")) == 0

    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    table = pd.read_parquet(results)
    # The first run: 500 events and the 240 endpoint rows, 6 of them rejected; the second, the rest.
    assert summary["skipped"] == 740 and first == 734
    assert_results_account_for_every_row(table)
    assert_delivered_as_documented(decoded(stream_records(moto_server, stream)), table)


def test_dry_run_prints_the_first_record_and_puts_nothing(
    moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = create_stream(moto_server, shards=1)
    argv = cli(moto_server, tmp_path / "results.parquet", "--sink", "kinesis", "--stream-name", stream, "--dry-run")

    assert main([*argv, "--output", "json"]) == 0

    out = json.loads(capsys.readouterr().out)
    first = out["first_record"]
    endpoint = _rows(ENDPOINTS)[0]
    assert first["event_type"] == "_endpoint.update" and first["client"]["client_id"] == endpoint["Id"]
    assert isinstance(first["arrival_timestamp"], int)
    assert out["valid_rows"] == 2634 and out["rejected"] == 6
    assert stream_records(moto_server, stream) == []
    assert not (tmp_path / "results.parquet").exists()


@pytest.mark.parametrize("sink", ["kinesis", "firehose"])
def test_a_stream_that_does_not_exist_exits_1_with_one_line(
    sink: str, moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = unique_name("missing")
    flag = "--stream-name" if sink == "kinesis" else "--delivery-stream"

    code = main(cli(moto_server, tmp_path / "results.parquet", "--sink", sink, flag, missing))

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("pinpoint-load: Not found: ") and missing in err[-1]
    assert not any("Traceback" in line for line in err)


def test_the_notebook_api_raises_one_line_for_a_missing_stream(moto_server: str, tmp_path: Path) -> None:
    with pytest.raises(FatalServiceError, match="Not found: Kinesis stream 'nowhere'") as caught:
        load_events(
            EVENTS,
            application_id=APP,
            results=str(tmp_path / "results.parquet"),
            sink="kinesis",
            stream_name="nowhere",
            endpoint_url=moto_server,
            region_name=REGION,
        )
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("sink", "limit"), [("kinesis", "1,048,576 per record (data and partition key)"), ("firehose", "1,024,000")]
)
def test_a_record_over_the_size_limit_is_rejected_with_its_reason_and_the_rest_goes(
    sink: str, limit: str, moto_server: str, tmp_path: Path
) -> None:
    events = pd.DataFrame(
        {
            "EndpointId": ["ep-1", "ep-1", "ep-2"],
            "EventId": ["small", "huge", "also-small"],
            "EventType": ["view", "view", "view"],
            "Timestamp": ["2026-11-24T00:00:00Z"] * 3,
            "Attributes.blob": ["x", "y" * (1024 * 1024), None],
        }
    )
    if sink == "kinesis":
        name = create_stream(moto_server, shards=1)
        target: dict[str, Any] = {"stream_name": name}
    else:
        name, bucket = create_delivery_stream(moto_server)
        target = {"delivery_stream_name": name}

    report = load_events(
        events,
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        sink=sink,  # type: ignore[arg-type]
        endpoint_url=moto_server,
        region_name=REGION,
        **target,
    )

    rejected = report.rejected()
    assert list(rejected["event_id"]) == ["huge"]
    assert "row 2: (whole row) makes a record of" in rejected["message"][0] and limit in rejected["message"][0]
    records = decoded(stream_records(moto_server, name)) if sink == "kinesis" else delivered_lines(moto_server, bucket)
    assert sorted(record["event_id"] for record in records) == ["also-small", "small"]


def test_rules_only_pinpoint_enforces_do_not_reject_rows_on_a_stream(moto_server: str, tmp_path: Path) -> None:
    """Row 11 of the sample events has an attribute value of 201 characters: PutEvents would drop the
    event, so the PutEvents sink rejects it; a stream takes it as it is."""
    stream = create_stream(moto_server, shards=1)
    long_value = _rows(EVENTS)[10]["Attributes.sku"]
    assert len(long_value) == 201
    putevents = load_events(EVENTS, application_id=APP, dry_run=True)
    assert 11 in set(putevents.rejected()["source_row"])

    report = load_events(
        EVENTS,
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        sink="kinesis",
        stream_name=stream,
        endpoint_url=moto_server,
        region_name=REGION,
    )

    assert 11 not in set(report.rejected()["source_row"])
    sent = [record for record in decoded(stream_records(moto_server, stream)) if record["event_id"] == "evt-00011"]
    assert [record["attributes"]["sku"] for record in sent] == [long_value]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sink": "kinesis"}, "sink='kinesis' needs stream_name"),
        ({"sink": "firehose"}, "sink='firehose' needs delivery_stream_name"),
        ({"sink": "kinesis", "delivery_stream_name": "d"}, "delivery_stream_name (--delivery-stream) is for"),
        ({"sink": "sqs", "stream_name": "s"}, "sink must be one of"),
        ({"stream_name": "s"}, "are for sink='kinesis' and sink='firehose'"),
    ],
)
def test_a_missing_or_misplaced_stream_name_is_an_input_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_events(EVENTS, application_id=APP, dry_run=True, **options)


def test_a_client_of_another_service_is_an_input_error(moto_server: str) -> None:
    with pytest.raises(
        InputError, match="client is a boto3 'firehose' client; sink='kinesis' sends with a 'kinesis' one"
    ):
        load_events(
            EVENTS,
            application_id=APP,
            sink="kinesis",
            stream_name="s",
            client=moto_client(moto_server, "firehose"),
        )

"""The Kinesis example DAG, run as a user runs it: ``airflow dags test`` on a SQLite metadata DB, into a
stream on moto's server, with the ``aws`` connection (its ``endpoint_url``) given as an
``AIRFLOW_CONN_*`` environment variable. Every record is read back from the stream's shards."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.dags.test_example_dags import AIRFLOW, DAILY, airflow_env
from tests.helpers.event_stream import expected_event
from tests.helpers.moto_server import create_stream, decoded, stream_records

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(600)]

DAY = "2026-11-24"


@dataclass
class KinesisRun:
    stream: str
    results: Path
    log: str
    returncode: int


@pytest.fixture(scope="module")
def kinesis_run(tmp_path_factory: pytest.TempPathFactory, moto_server: str) -> KinesisRun:
    home = tmp_path_factory.mktemp("airflow_home_kinesis")
    env = airflow_env(home)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    stream = create_stream(moto_server, shards=2)
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"},
    }
    out = tmp_path_factory.mktemp("kinesis")
    conf = {"stream_name": stream, "application_id": "kinesis-app", "results_dir": str(out / "results")}
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "pinpoint_to_kinesis", DAY, "--conf", json.dumps(conf)],
        env={**env, "AIRFLOW_CONN_KINESIS_DEFAULT": json.dumps(connection)},
        capture_output=True,
        text=True,
        timeout=500,
    )
    return KinesisRun(
        stream, out / "results" / f"date={DAY}" / "results.parquet", done.stdout + done.stderr, done.returncode
    )


def test_the_days_events_reach_the_stream_once_each_as_the_input_says(kinesis_run, moto_server):
    assert kinesis_run.returncode == 0 and "state=success" in kinesis_run.log, kinesis_run.log[-4000:]
    results = pd.read_parquet(kinesis_run.results)
    # Each event record, compared with the input row the results table names for its event id.
    sources = {source: pd.read_parquet(source).to_dict("records") for source in set(results["source"])}
    event_rows = results[results["record_type"] == "event"]
    inputs = {
        event_id: sources[source][source_row - 1] | {"EventId": event_id}
        for event_id, source, source_row in zip(
            event_rows["event_id"], event_rows["source"], event_rows["source_row"], strict=True
        )
    }
    endpoints = {row["Id"]: row for row in pd.read_parquet(DAILY / "endpoints" / f"date={DAY}").to_dict("records")}
    read = stream_records(moto_server, kinesis_run.stream)
    events = [
        (raw, record)
        for raw, record in zip(read, decoded(read), strict=True)
        if record["event_type"] != "_endpoint.update"
    ]
    assert sorted(record["event_id"] for _, record in events) == sorted(inputs)
    assert len(inputs) == len(pd.read_parquet(DAILY / "events" / f"date={DAY}"))
    for raw, record in events:
        assert isinstance(record.pop("arrival_timestamp"), int)
        row = inputs[record["event_id"]]
        assert raw["partition_key"] == row["EndpointId"]
        assert record == expected_event(row, endpoints.get(row["EndpointId"]), "kinesis-app")


def test_each_endpoint_row_reaches_the_stream_as_one_endpoint_update_without_its_address(kinesis_run, moto_server):
    assert kinesis_run.returncode == 0, kinesis_run.log[-4000:]
    endpoints = pd.read_parquet(DAILY / "endpoints" / f"date={DAY}")
    read = stream_records(moto_server, kinesis_run.stream)
    updates = [record for record in decoded(read) if record["event_type"] == "_endpoint.update"]
    assert sorted(record["client"]["client_id"] for record in updates) == sorted(endpoints["Id"])
    addresses = set(endpoints["Address"].dropna())
    assert addresses and not any(address in record["data"].decode() for record in read for address in addresses)


def test_the_results_table_has_one_accepted_row_per_input_row(kinesis_run):
    assert kinesis_run.returncode == 0, kinesis_run.log[-4000:]
    results = pd.read_parquet(kinesis_run.results)
    endpoints = pd.read_parquet(DAILY / "endpoints" / f"date={DAY}")
    events = pd.read_parquet(DAILY / "events" / f"date={DAY}")
    assert results["record_type"].value_counts().to_dict() == {"event": len(events), "endpoint": len(endpoints)}
    assert set(results["status"]) == {"accepted"}
    assert not results.duplicated(["source", "source_row"]).any()

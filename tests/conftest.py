"""Fixtures shared by every test area: one emulator per session (reset before each test), a boto3
client for it, moto's server for the Kinesis and Firehose sinks (``moto_server``, its base URL), the
results journal as written, and Airflow connections given as users give them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pyarrow as pa
import pytest

from airflow_provider_pinpoint.emulator import EmulatorClient, run_emulator
from airflow_provider_pinpoint.results.journal import ResultsWriter
from tests.helpers.items import emulator_client
from tests.helpers.moto_server import moto_server

__all__ = ["moto_server"]


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorClient]:
    """An emulator in a thread of the test process, on a free loopback port, accepting any app id."""
    with run_emulator() as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: EmulatorClient) -> EmulatorClient:
    """The session's emulator with no records, no statistics and no faults."""
    emulator_server.reset()
    return emulator_server


@pytest.fixture
def pinpoint(emulator):
    """A boto3 Pinpoint client pointed at the (reset) session emulator, botocore retries off."""
    return emulator_client(emulator.url)


@pytest.fixture
def journal(monkeypatch) -> list[pa.RecordBatch]:
    """Every batch of results rows written during the test, before compaction merges them."""
    written: list[pa.RecordBatch] = []
    add = ResultsWriter.add

    def recording(self, batch: pa.RecordBatch) -> None:
        written.append(batch)
        add(self, batch)

    monkeypatch.setattr(ResultsWriter, "add", recording)
    return written


@pytest.fixture
def aws_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an ``aws`` connection (fake keys, the given extra) for this test; returns its id."""

    def define(conn_id: str = "pp", **extra: object) -> str:
        value = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
        return conn_id

    return define


@pytest.fixture
def emulator_conn_id(aws_connection: Callable[..., str], emulator: EmulatorClient) -> str:
    """A connection id whose ``endpoint_url`` is the test emulator (reset for this test)."""
    return aws_connection("pinpoint_test", endpoint_url=emulator.url, region_name="us-east-1")

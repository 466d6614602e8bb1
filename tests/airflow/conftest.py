"""Airflow connections for the provider tests, given the way users give them: AIRFLOW_CONN_* JSON."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from airflow_provider_pinpoint.emulator import EmulatorClient


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

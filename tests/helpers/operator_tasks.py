"""What the operator tests give a task and check of it: the sample day's tables, the context the
operators read, and the checks every sink's operator must pass alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from airflow.sdk.execution_time.context import OutletEventAccessors

DAILY = Path(__file__).resolve().parents[2] / "sample_data" / "daily"
EVENTS = str(DAILY / "events" / "date=2026-11-24")
ENDPOINTS = str(DAILY / "endpoints" / "date=2026-11-24")


def context(**extra):
    """The part of a task's context the operator reads."""
    return {"run_id": "manual__2026-11-24", "outlet_events": OutletEventAccessors(), **extra}


def every_row_accepted(summary: dict, results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check that the results of a load of EVENTS and ENDPOINTS hold every input row, accepted, and
    that the summary survives JSON (XCom); the events table and the results table, for more checks."""
    events = pd.read_parquet(EVENTS)
    table = pd.read_parquet(results)
    assert len(table) == summary["input_rows"] == len(events) + len(pd.read_parquet(ENDPOINTS))
    assert summary["accepted"] == summary["input_rows"] and set(table["status"]) == {"accepted"}
    assert json.loads(json.dumps(summary)) == summary
    return events, table


def userinfo_connection(aws_connection: Callable[..., str], conn_id: str, moto_server: str) -> str:
    """A connection to moto's server through a gateway URL with credentials in it, which messages
    may never show (see :func:`assert_one_line_naming`)."""
    host = moto_server.removeprefix("http://")
    return aws_connection(conn_id, endpoint_url=f"http://gateway-user:gateway-secret@{host}", region_name="us-east-1")


def assert_one_line_naming(message: str, name: str) -> None:
    """``message`` names ``name`` in one line and shows none of the gateway URL's credentials."""
    assert name in message and "\n" not in message
    assert "gateway-secret" not in message and "gateway-user" not in message

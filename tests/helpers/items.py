"""Valid items built by hand, and boto3 clients for the emulator: shared by the sending tests."""

from __future__ import annotations

import json

import boto3

from airflow_provider_pinpoint.prepare.requests import ENDPOINT, EVENT, Item, Request
from airflow_provider_pinpoint.quotas import DEFAULT_MAX_IN_FLIGHT
from airflow_provider_pinpoint.sending.client import client_config

APP = "app-sending"


def make_items(endpoints: int, events_per_endpoint: int, *, tag: str = "t") -> list[Item]:
    """Valid rows: each endpoint row followed by its events, numbered like two input files."""
    items: list[Item] = []
    event_row = 0
    for e in range(endpoints):
        endpoint_id = f"{tag}-ep-{e:05d}"
        items.append(
            Item(ENDPOINT, endpoint_id, None, "endpoints.parquet", e + 1, json.dumps({"ChannelType": "CUSTOM"}))
        )
        for v in range(events_per_endpoint):
            event_row += 1
            body = {"EventType": "purchase", "Timestamp": "2026-01-01T00:00:00.000Z", "Metrics": {"n": v}}
            items.append(
                Item(EVENT, endpoint_id, f"{tag}-ev-{event_row:06d}", "events.parquet", event_row, json.dumps(body))
            )
    return items


def make_requests(items: list[Item], per_request: int = 50) -> list[Request]:
    return [Request(items[i : i + per_request]) for i in range(0, len(items), per_request)]


def emulator_client(
    url: str, *, access_key: str = "testing", secret_key: str = "testing", max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
):
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=client_config(max_in_flight),
    )

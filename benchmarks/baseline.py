"""The reference: the PutEvents script a data engineer would write in a notebook.

pandas reads both tables, a merge puts each event next to its endpoint's columns, ``iterrows`` builds
the ``BatchItem`` maps, and boto3's ``put_events`` sends them one request of 100 events at a time,
with the client's default settings. It is honest and correct: absent values are left out, timestamps
go out as ISO 8601 UTC, numbers as numbers, every endpoint's attributes travel with its events, and
per-item failures inside a 202 are counted rather than ignored. It is what the loader is measured
against, not a template to copy.
"""

from __future__ import annotations

import math
from collections import defaultdict

import boto3
import pandas as pd

EVENTS_PER_REQUEST = 100


def _present(value) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (value is pd.NA or value is pd.NaT)


def _iso(value) -> str:
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _endpoint_map(row: pd.Series, columns: list[str]) -> dict:
    endpoint: dict = {}
    for column in columns:
        value = row[column]
        name = column.removeprefix("endpoint.")
        if name == "Id" or not _present(value):
            continue
        if name.startswith("User.UserAttributes."):
            user = endpoint.setdefault("User", {}).setdefault("UserAttributes", {})
            user[name.rsplit(".", 1)[1]] = [str(v) for v in value]
        elif name.startswith("Attributes."):
            endpoint.setdefault("Attributes", {})[name.split(".", 1)[1]] = [str(v) for v in value]
        elif name.startswith("Metrics."):
            endpoint.setdefault("Metrics", {})[name.split(".", 1)[1]] = float(value)
        elif name in ("Location.Latitude", "Location.Longitude"):
            endpoint.setdefault("Location", {})[name.split(".", 1)[1]] = float(value)
        elif "." in name:
            group, key = name.split(".", 1)
            endpoint.setdefault(group, {})[key] = str(value)
        else:
            endpoint[name] = str(value)
    return endpoint


def _event_map(row: pd.Series, columns: list[str]) -> dict:
    event: dict = {}
    for column in columns:
        value = row[column]
        if column in ("EndpointId", "EventId") or not _present(value):
            continue
        if column.startswith("Attributes."):
            event.setdefault("Attributes", {})[column.split(".", 1)[1]] = str(value)
        elif column.startswith("Metrics."):
            event.setdefault("Metrics", {})[column.split(".", 1)[1]] = float(value)
        elif column in ("Timestamp", "Session.StartTimestamp", "Session.StopTimestamp"):
            if "." in column:
                event.setdefault("Session", {})[column.split(".", 1)[1]] = _iso(value)
            else:
                event["Timestamp"] = _iso(value)
        elif column.startswith("Session."):
            key = column.split(".", 1)[1]
            event.setdefault("Session", {})[key] = int(value) if key == "Duration" else str(value)
        else:
            event[column] = str(value)
    return event


def send_events(
    events_path: str, endpoints_path: str | None, application_id: str, endpoint_url: str | None = None
) -> dict:
    """Send every event of ``events_path`` (with its endpoint from ``endpoints_path``, if given); return counts.

    Without an endpoints table each item's ``Endpoint`` is empty: the events are sent on their own.
    """
    events = pd.read_parquet(events_path)
    event_columns = list(events.columns)
    if endpoints_path:
        endpoints = pd.read_parquet(endpoints_path).add_prefix("endpoint.")
        rows = events.merge(endpoints, how="left", left_on="EndpointId", right_on="endpoint.Id")
        endpoint_columns = list(endpoints.columns)
    else:
        rows, endpoint_columns = events, []

    client = boto3.client("pinpoint", endpoint_url=endpoint_url)
    counts = {"requests": 0, "events_sent": 0, "events_failed": 0}

    def send(batch: dict) -> None:
        response = client.put_events(ApplicationId=application_id, EventsRequest={"BatchItem": batch})
        counts["requests"] += 1
        for item in response["EventsResponse"]["Results"].values():
            for result in item.get("EventsItemResponse", {}).values():
                counts["events_sent"] += 1
                if result["StatusCode"] != 202:
                    counts["events_failed"] += 1

    batch: dict = defaultdict(lambda: {"Endpoint": {}, "Events": {}})
    in_batch = 0
    for _, row in rows.iterrows():
        entry = batch[row["EndpointId"]]
        if endpoint_columns and not entry["Endpoint"] and _present(row["endpoint.Id"]):
            entry["Endpoint"] = _endpoint_map(row, endpoint_columns)
        entry["Events"][row["EventId"]] = _event_map(row, event_columns)
        in_batch += 1
        if in_batch == EVENTS_PER_REQUEST:
            send(dict(batch))
            batch.clear()
            in_batch = 0
    if in_batch:
        send(dict(batch))
    return counts

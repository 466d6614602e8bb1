"""The records the stream sinks should write for the sample tables, worked out independently of the
loader from the input rows with pandas (the mapping docs/migration.md documents)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def millis(value: Any) -> int | None:
    """A timestamp (pandas, datetime or ISO text) as Unix milliseconds; None when absent."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


def _present(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return value != ""
    return True


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def expected_event(row: dict[str, Any], endpoint: dict[str, Any] | None, app_id: str) -> dict[str, Any]:
    """The record of one event row (without ``arrival_timestamp``); ``endpoint``: its endpoint's row."""
    application: dict[str, Any] = {"app_id": app_id}
    for key, column in (("package_name", "AppPackageName"), ("title", "AppTitle"), ("version_code", "AppVersionCode")):
        if _present(row.get(column)):
            application[key] = row[column]
    sdk = {
        key: row[column]
        for key, column in (("name", "SdkName"), ("version", "ClientSdkVersion"))
        if _present(row.get(column))
    }
    if sdk:
        application["sdk"] = sdk
    record: dict[str, Any] = {
        "event_type": row["EventType"],
        "event_timestamp": millis(row["Timestamp"]),
        "event_version": "3.0",
        "event_id": row["EventId"],
        "application": application,
        "client": {"client_id": row["EndpointId"]},
    }
    if endpoint is not None:
        if _present(endpoint.get("Demographic.AppVersion")):
            application["version_name"] = endpoint["Demographic.AppVersion"]
        device = expected_device(endpoint)
        if device:
            record["device"] = device
    session: dict[str, Any] = {}
    if _present(row.get("Session.Id")):
        session["session_id"] = row["Session.Id"]
    for key, column in (("start_timestamp", "Session.StartTimestamp"), ("stop_timestamp", "Session.StopTimestamp")):
        if _present(row.get(column)):
            session[key] = millis(row[column])
    if _present(row.get("Session.Duration")):
        session["duration"] = int(row["Session.Duration"])
    if session:
        record["session"] = session
    record["attributes"] = {
        name.removeprefix("Attributes."): value
        for name, value in row.items()
        if name.startswith("Attributes.") and _present(value)
    }
    record["metrics"] = {
        name.removeprefix("Metrics."): _number(value)
        for name, value in row.items()
        if name.startswith("Metrics.") and _present(value)
    }
    return record


def expected_device(endpoint: dict[str, Any]) -> dict[str, Any]:
    """``device`` from an endpoint row's Demographic columns."""
    device: dict[str, Any] = {}
    locale = endpoint.get("Demographic.Locale")
    if _present(locale):
        language, country = locale.split("_")
        device["locale"] = {"code": locale, "country": country, "language": language}
    for key, column in (("make", "Demographic.Make"), ("model", "Demographic.Model")):
        if _present(endpoint.get(column)):
            device[key] = endpoint[column]
    platform = {
        key: endpoint[column]
        for key, column in (("name", "Demographic.Platform"), ("version", "Demographic.PlatformVersion"))
        if _present(endpoint.get(column))
    }
    if platform:
        device["platform"] = platform
    return device

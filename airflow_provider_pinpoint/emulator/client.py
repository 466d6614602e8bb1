"""Python access to a running emulator through its ``/_emulator/`` HTTP API.

The same client serves an emulator in a thread of this process, in a subprocess, or started by
hand with ``pinpoint-emulator``: tests and notebooks never reach into the server's memory.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote


class EmulatorClient:
    """Statistics, records and settings of the emulator serving at ``url``."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmulatorClient({self.url!r})"

    def _call(self, method: str, path: str, payload: dict | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = json.loads(exc.read() or b"{}").get("Message", exc.reason)
            raise ValueError(f"emulator refused {method} /_emulator/{path}: {message}") from None

    def stats(self) -> dict:
        """Counters: requests, events accepted/rejected/dropped/duplicated, endpoints, faults by kind."""
        return self._call("GET", "stats")

    def events(self, app_id: str) -> list[dict]:
        """Every distinct event the application accepted, in order of first receipt.

        Each entry: ``endpoint_id``, ``event_id``, ``event`` (the Event map as last received) and
        ``receive_count`` (above 1 when the same event was accepted more than once).
        """
        return self._call("GET", f"apps/{quote(app_id, safe='')}/events")

    def endpoints(self, app_id: str) -> dict[str, dict]:
        """Endpoint id -> the Endpoint map as last updated (only endpoints sent with a non-empty map)."""
        return self._call("GET", f"apps/{quote(app_id, safe='')}/endpoints")

    def streams(self) -> dict:
        """Kinesis and Firehose: ``stats`` (write requests, records accepted and failed, faults by
        kind), ``kinesis`` (stream -> records per shard) and ``firehose`` (delivery stream -> records)."""
        return self._call("GET", "streams")

    def kinesis_records(self, stream_name: str) -> list[dict]:
        """Every record a Kinesis stream holds, shard by shard in order of arrival.

        Each entry: ``shard_id``, ``sequence_number``, ``partition_key``, ``arrival`` (epoch seconds)
        and ``data`` (bytes). A
        record written twice (a resend) is there twice, as in the service.
        """
        records = self._call("GET", f"streams/kinesis/{quote(stream_name, safe='')}/records")
        for record in records:
            record["data"] = base64.b64decode(record["data"])
        return records

    def firehose_records(self, delivery_stream_name: str) -> list[dict]:
        """Every record delivered to a Firehose delivery stream in order: ``record_id`` and ``data`` (bytes)."""
        records = self._call("GET", f"streams/firehose/{quote(delivery_stream_name, safe='')}/records")
        for record in records:
            record["data"] = base64.b64decode(record["data"])
        return records

    def config(self) -> dict:
        """Current settings (validation and faults) and the declared applications."""
        return self._call("GET", "config")

    def configure(self, **changes: Any) -> dict:
        """Change settings of the running emulator, e.g. ``configure(rate_limit=5, error_rate=0.1)``."""
        return self._call("POST", "config", changes)

    def reset(self) -> dict:
        """Forget every record and statistic and turn every fault off."""
        return self._call("POST", "reset", {})

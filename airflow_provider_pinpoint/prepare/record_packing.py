"""Records -> Kinesis ``PutRecords`` / Firehose ``PutRecordBatch`` requests, within each service's quotas.

A stream request is a plain list of records, so packing is a greedy cut of the records in input
order: a request closes when the next record would take it past the record count or the byte
quota. What a record costs is exact: its JSON, the ``arrival_timestamp`` the transport writes in
front of it, plus its partition key on Kinesis (the 5 MiB covers keys) or its newline on Firehose.
A record over the per-record quota, or a partition key over 256 characters, can never be sent:
it is rejected here, with the size and the rule, and never reaches the service.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.prepare.event_stream import ARRIVAL_BYTES
from airflow_provider_pinpoint.prepare.requests import EVENT, Request
from airflow_provider_pinpoint.prepare.validation import source_label

MiB = 1024 * 1024
KiB = 1024


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """One service's quotas on a request of records and on each record."""

    service: str  # for messages: "Kinesis" or "Firehose"
    max_records: int
    max_request_bytes: int
    max_record_bytes: int
    key_counts: bool  # Kinesis: the partition key (the endpoint id) counts towards both byte quotas
    newline: bool  # Firehose: each record ends in "\n", so the delivered objects are JSON Lines
    max_key_chars: int | None = None

    def record_sizes(self, records: pa.Array, keys: pa.Array) -> np.ndarray:
        """Bytes each record costs against the quotas, as the transport will send it."""
        sizes = pc.binary_length(records).to_numpy(zero_copy_only=False).astype(np.int64) + ARRIVAL_BYTES
        if self.key_counts:
            sizes += pc.binary_length(keys).to_numpy(zero_copy_only=False).astype(np.int64)
        if self.newline:
            sizes += 1
        return sizes


# Kinesis PutRecords: 500 records and 5 MiB per request, partition keys included; 1 MiB per record
# (data and key); keys of 1 to 256 Unicode characters.
KINESIS = RecordLimits("Kinesis", 500, 5 * MiB, MiB, key_counts=True, newline=False, max_key_chars=256)
# Firehose PutRecordBatch: 500 records and 4 MiB per request, 1,000 KiB per record (before base64).
FIREHOSE = RecordLimits("Firehose", 500, 4 * MiB, 1000 * KiB, key_counts=False, newline=True)


@dataclass(frozen=True, slots=True)
class Oversized:
    """Rows of a batch whose record can never be sent, and why (one message per row)."""

    at: np.ndarray  # positions in the batch
    messages: list[str]


def oversized(items: pa.RecordBatch, sizes: np.ndarray, limits: RecordLimits) -> Oversized:
    """The items (``ITEM_SCHEMA``) whose record or partition key is over its quota."""
    too_big = sizes > limits.max_record_bytes
    too_long = np.zeros(len(sizes), dtype=bool)
    key_chars = None
    if limits.max_key_chars is not None:
        key_chars = pc.utf8_length(items.column("endpoint_id")).to_numpy(zero_copy_only=False)
        too_long = key_chars > limits.max_key_chars
    at = np.flatnonzero(too_big | too_long)
    messages = []
    sources, rows = items.column("source"), items.column("source_row")
    for i in at.tolist():
        label = f"{source_label(sources[i].as_py())} row {rows[i].as_py()}"
        if too_long[i]:
            assert key_chars is not None
            messages.append(
                f"{label}: EndpointId is {key_chars[i]:,} characters; a {limits.service} partition key "
                f"(the endpoint id) may have at most {limits.max_key_chars}"
            )
        else:
            what = "data and partition key" if limits.key_counts else "before base64"
            messages.append(
                f"{label}: (whole row) makes a record of {int(sizes[i]):,} bytes; {limits.service} allows "
                f"{limits.max_record_bytes:,} per record ({what})"
            )
    return Oversized(at, messages)


def pack_records(items: pa.RecordBatch, sizes: np.ndarray, limits: RecordLimits) -> list[Request]:
    """Requests of consecutive items (``ITEM_SCHEMA``, every record within its own quota), each within
    the record count and byte quotas of ``limits``, in input order."""
    n = items.num_rows
    if n == 0:
        return []
    before = np.concatenate(([0], np.cumsum(sizes)))
    is_event = pc.equal(items.column("record_type"), EVENT).to_numpy(zero_copy_only=False)
    events_before = np.concatenate(([0], np.cumsum(is_event)))
    requests = []
    start = 0
    while start < n:
        by_bytes = int(np.searchsorted(before, before[start] + limits.max_request_bytes, side="right")) - 1
        stop = max(start + 1, min(n, start + limits.max_records, by_bytes))
        requests.append(
            Request(columns=items.slice(start, stop - start), events=int(events_before[stop] - events_before[start]))
        )
        start = stop
    return requests


def request_bytes(request: Request, limits: RecordLimits) -> int:
    """Bytes ``request``'s records cost against the request quota (a resend's requests are packed by
    the engine's own packing, which knows nothing of records: the transport checks them with this)."""
    columns = request.columns
    return int(limits.record_sizes(columns.column("body"), columns.column("endpoint_id")).sum())

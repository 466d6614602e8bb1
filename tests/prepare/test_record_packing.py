"""Packing records into Kinesis / Firehose requests: every record once, in order, within every quota."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_pinpoint.prepare.event_stream import ARRIVAL_BYTES
from airflow_provider_pinpoint.prepare.record_packing import (
    FIREHOSE,
    KINESIS,
    RecordLimits,
    oversized,
    pack_records,
    request_bytes,
)
from airflow_provider_pinpoint.prepare.requests import EVENT, item_batch

SMALL = RecordLimits("Test", max_records=5, max_request_bytes=400, max_record_bytes=200, key_counts=True, newline=False)


def items(bodies: list[str], keys: list[str]) -> pa.RecordBatch:
    n = len(bodies)
    return item_batch(
        EVENT,
        pa.array(keys, pa.string()),
        pa.array([f"e{i}" for i in range(n)], pa.string()),
        pa.array(["events.parquet"] * n, pa.string()),
        pa.array(range(1, n + 1), pa.int64()),
        pa.array(bodies, pa.string()),
    )


def test_a_record_costs_its_json_its_arrival_timestamp_and_its_key_or_newline() -> None:
    batch = items(['{"a":1}', '{"é":2}'], ["k", "kéy"])

    assert KINESIS.record_sizes(batch.column("body"), batch.column("endpoint_id")).tolist() == [
        7 + ARRIVAL_BYTES + 1,
        8 + ARRIVAL_BYTES + 4,
    ]
    assert FIREHOSE.record_sizes(batch.column("body"), batch.column("endpoint_id")).tolist() == [
        7 + ARRIVAL_BYTES + 1,
        8 + ARRIVAL_BYTES + 1,
    ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=2, max_value=160), st.text(alphabet="abcé", min_size=1, max_size=12)),
        min_size=1,
        max_size=40,
    )
)
def test_requests_hold_every_record_once_in_order_and_as_many_as_fit(rows: list[tuple[int, str]]) -> None:
    bodies = ["{" + "x" * (length - 2) + "}" for length, _ in rows]
    keys = [key for _, key in rows]
    batch = items(bodies, keys)
    sizes = SMALL.record_sizes(batch.column("body"), batch.column("endpoint_id"))
    over = oversized(batch, sizes, SMALL)
    fits = np.ones(len(sizes), dtype=bool)
    fits[over.at] = False
    batch, sizes = batch.filter(pa.array(fits)), sizes[fits]

    requests = pack_records(batch, sizes, SMALL)

    sent = [row for request in requests for row in request.columns.column("source_row").to_pylist()]
    assert sent == batch.column("source_row").to_pylist()
    at = 0
    for request in requests:
        assert len(request) <= SMALL.max_records
        assert request_bytes(request, SMALL) <= SMALL.max_request_bytes
        assert request.event_count == len(request)
        at += len(request)
        if at < len(sizes):  # greedy: the next record did not fit
            assert (
                len(request) == SMALL.max_records or request_bytes(request, SMALL) + sizes[at] > SMALL.max_request_bytes
            )
    assert all(
        int(size) > SMALL.max_record_bytes
        for size in SMALL.record_sizes(
            pa.array([bodies[i] for i in over.at.tolist()], pa.string()),
            pa.array([keys[i] for i in over.at.tolist()], pa.string()),
        )
    )


def test_a_record_over_its_quota_or_a_key_over_256_characters_is_named_with_the_rule() -> None:
    batch = items(["{}", "{" + "x" * KINESIS.max_record_bytes + "}", "{}"], ["ok", "ok", "k" * 257])
    sizes = KINESIS.record_sizes(batch.column("body"), batch.column("endpoint_id"))

    over = oversized(batch, sizes, KINESIS)

    assert over.at.tolist() == [1, 2]
    assert over.messages[0].startswith("events.parquet row 2: (whole row) makes a record of 1,048,6")
    assert "Kinesis allows 1,048,576 per record" in over.messages[0]
    assert over.messages[1] == (
        "events.parquet row 3: EndpointId is 257 characters; a Kinesis partition key (the endpoint id) may have at most 256"
    )


def test_five_hundred_records_at_most_per_request_on_both_services() -> None:
    batch = items(["{}"] * 1201, ["k"] * 1201)
    for limits in (KINESIS, FIREHOSE):
        sizes = limits.record_sizes(batch.column("body"), batch.column("endpoint_id"))
        assert [len(request) for request in pack_records(batch, sizes, limits)] == [500, 500, 201]

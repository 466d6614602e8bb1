"""A load's sink, ready to send: the transport for the chosen service, its rate budget and its quotas.

PutEvents needs only its transport and the request rate. The stream sinks also need a budget of
records and bytes per second: given by the user, or else for Kinesis the stream's open shards'
write quotas (``DescribeStreamSummary``, which also stops a load into a stream that does not exist
before anything is read) and for Firehose the smallest regions' quotas.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.prepare.record_packing import FIREHOSE, KINESIS, RecordLimits
from airflow_provider_pinpoint.prepare.requests import ENDPOINT
from airflow_provider_pinpoint.results.rows import ACCEPTED, Outcomes
from airflow_provider_pinpoint.sending.transport import Transport
from airflow_provider_pinpoint.sinks import firehose, kinesis
from airflow_provider_pinpoint.sinks.putevents import PutEventsTransport
from airflow_provider_pinpoint.sinks.streams import Budget, shared_budget
from airflow_provider_pinpoint.sinks.target import Rates, SinkTarget

log = logging.getLogger(__name__)

# No request rate of its own on Kinesis: its quotas are records and bytes per shard.
UNCAPPED_REQUESTS_PER_SECOND = 1_000_000.0
# What an accepted endpoint row's results message says on the stream sinks.
ENDPOINT_RECORD_NOTE = "sent as one _endpoint.update record"


@dataclass
class ReadySink:
    """What the load needs to send: the transport, where requests go (the rate limiter's key), the
    request rate, the quotas a resend is packed within, and the limits of a record (streams only)."""

    transport: Transport
    target: str
    requests_per_second: float
    max_items: int
    max_bytes: int
    limits: RecordLimits | None = None
    budget: Budget | None = None

    def noted(self, decided: Outcomes) -> Outcomes:
        """Results rows as the sink words them: on the streams, an accepted endpoint row says it went as
        an ``_endpoint.update`` record."""
        if self.limits is None:
            return decided
        batch = decided.batch
        mask = pc.and_(pc.equal(batch.column("record_type"), ENDPOINT), pc.equal(batch.column("status"), ACCEPTED))
        if not pc.any(mask).as_py():
            return decided
        at = batch.schema.get_field_index("message")
        message = pc.if_else(mask, pa.scalar(ENDPOINT_RECORD_NOTE, pa.string()), batch.column(at))
        batch = batch.set_column(at, batch.schema.field(at), message)
        return Outcomes(batch, decided.accepted, decided.rejected, decided.failed, decided.events_accepted)


def limits_of(target: SinkTarget) -> RecordLimits:
    """The record quotas of a stream sink."""
    return KINESIS if target.sink == "kinesis" else FIREHOSE


@contextmanager
def ready_sink(
    target: SinkTarget, client: Any, rates: Rates, stop_event: threading.Event | None = None
) -> Iterator[ReadySink]:
    """The sink for ``target`` through ``client`` (a boto3 client of the sink's service), for the block;
    a stream transport waiting for its budget gives up waiting when ``stop_event`` is set."""
    url = str(client.meta.endpoint_url)
    if target.sink == "pinpoint":
        rps = rates.requests_per_second or quotas.DEFAULT_REQUESTS_PER_SECOND
        yield ReadySink(PutEventsTransport(client), url, rps, quotas.MAX_EVENTS_PER_REQUEST, quotas.MAX_REQUEST_BYTES)
        return
    assert target.stream is not None
    limits = limits_of(target)
    key = f"{url}#{target.sink}:{target.stream}"
    if target.sink == "kinesis":
        records, octets = _kinesis_rates(client, target.stream, rates)
        rps = rates.requests_per_second or UNCAPPED_REQUESTS_PER_SECOND
    else:
        records = rates.records_per_second or firehose.DEFAULT_RECORDS_PER_SECOND
        octets = rates.bytes_per_second or firehose.DEFAULT_BYTES_PER_SECOND
        rps = rates.requests_per_second or firehose.DEFAULT_REQUESTS_PER_SECOND
    with shared_budget(key, records, octets) as budget:
        transport: kinesis.KinesisTransport | firehose.FirehoseTransport
        if target.sink == "kinesis":
            transport = kinesis.KinesisTransport(client, target.stream, limits, budget)
        else:
            transport = firehose.FirehoseTransport(client, target.stream, limits, budget)
            firehose.check_exists(transport)
        if stop_event is not None:
            transport.stopped = stop_event.is_set
        log.info(
            "%s budget: %s records/s, %s bytes/s", transport.describe_target(""), f"{records:,.0f}", f"{octets:,.0f}"
        )
        # Resends are packed by the engine's PutEvents packing; a request it makes over the quota is
        # split by the transport's 413, so this only needs to be about right.
        yield ReadySink(transport, key, rps, limits.max_records, limits.max_request_bytes, limits, budget)


def _kinesis_rates(client: Any, stream: str, rates: Rates) -> tuple[float, float]:
    """Records and bytes per second for a Kinesis stream: the user's, else its open shards' quotas.
    The stream is described in any case: one that does not exist stops the load here."""
    probe = kinesis.KinesisTransport(client, stream, KINESIS, Budget.unlimited())
    shards = kinesis.open_shards(probe)
    records, octets = kinesis.default_rates(shards)
    return rates.records_per_second or records, rates.bytes_per_second or octets

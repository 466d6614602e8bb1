"""The Kinesis Data Streams sink: ``PutRecords`` of event-stream JSON records, partition key = endpoint id.

The endpoint id as partition key keeps each endpoint's records on one shard, in the order they were
stored; with many endpoints the keys hash evenly over the shards. The default budget follows the
stream's open shards (``DescribeStreamSummary``): 1,000 records and 1 MiB per second each.
"""

from __future__ import annotations

import logging

import botocore.exceptions

from airflow_provider_pinpoint.common.text import one_line, scrubbed
from airflow_provider_pinpoint.prepare.record_packing import MiB
from airflow_provider_pinpoint.sinks.streams import StreamTransport

log = logging.getLogger(__name__)

RECORDS_PER_SHARD = 1000.0
BYTES_PER_SHARD = float(MiB)


class KinesisTransport(StreamTransport):
    """Puts requests of records into one Kinesis data stream through a boto3 ``kinesis`` client."""

    service = "Kinesis"
    what = "stream"
    flag = "the stream name (--stream-name)"
    permission = "kinesis:PutRecords"
    operation = "PutRecords"
    name_member = "StreamName"
    results_member = "Records"
    id_member = "SequenceNumber"


def open_shards(transport: KinesisTransport) -> int | None:
    """The stream's open shard count (``DescribeStreamSummary``). A stream that does not exist, or no
    permission to put into it, stops the load here with one line; no permission to describe it only
    means the count is unknown (None), said once in the log."""
    try:
        summary = transport.client.describe_stream_summary(StreamName=transport.stream)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "AccessDeniedException":
            log.warning(
                "cannot read the shard count of %s (kinesis:DescribeStreamSummary denied): the budget is that of one "
                "shard; set records_per_second / --records-per-second for more",
                transport.describe_target(""),
            )
            return None
        raise transport.classify("", exc) from None
    except botocore.exceptions.BotoCoreError as exc:
        log.warning("cannot read the shard count (%s): the budget is that of one shard", scrubbed(one_line(str(exc))))
        return None
    count = summary.get("StreamDescriptionSummary", {}).get("OpenShardCount")
    return int(count) if isinstance(count, int) and count > 0 else None


def default_rates(shards: int | None) -> tuple[float, float]:
    """Records and bytes per second the stream takes: its shards' write quotas (one shard if unknown)."""
    count = shards or 1
    return RECORDS_PER_SHARD * count, BYTES_PER_SHARD * count

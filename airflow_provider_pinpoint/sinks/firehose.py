"""The Firehose sink: ``PutRecordBatch`` of event-stream JSON records, each ending in a newline, so the
objects Firehose delivers (to S3, say) are JSON Lines.

Firehose's throughput quotas depend on the region and can be raised on request; the default budget
is the smallest regions' (100,000 records, 1,000 requests and 1 MiB per second), which holds
everywhere. Set ``records_per_second`` / ``bytes_per_second`` for more.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import botocore.exceptions

from airflow_provider_pinpoint.common.text import one_line, scrubbed
from airflow_provider_pinpoint.prepare.record_packing import MiB
from airflow_provider_pinpoint.sinks.streams import StreamTransport

log = logging.getLogger(__name__)

DEFAULT_RECORDS_PER_SECOND = 100_000.0
DEFAULT_BYTES_PER_SECOND = float(MiB)
DEFAULT_REQUESTS_PER_SECOND = 1_000.0


class FirehoseTransport(StreamTransport):
    """Puts requests of records into one Firehose delivery stream through a boto3 ``firehose`` client."""

    service = "Firehose"
    what = "delivery stream"
    flag = "the delivery stream name (--delivery-stream)"
    permission = "firehose:PutRecordBatch"
    operation = "PutRecordBatch"
    name_member = "DeliveryStreamName"
    results_member = "RequestResponses"
    id_member = "RecordId"

    def _payload(self, records: Sequence[bytes], keys: Sequence[str]) -> tuple[Sequence[bytes], Sequence[str] | None]:
        """Each record ends in a newline, so what Firehose delivers is JSON Lines; it takes no keys."""
        return [data + b"\n" for data in records], None


def check_exists(transport: FirehoseTransport) -> None:
    """Stop at once, with one line, when the delivery stream does not exist (``DescribeDeliveryStream``);
    no permission to describe it is only logged (the first put will say what it must)."""
    try:
        transport.client.describe_delivery_stream(DeliveryStreamName=transport.stream)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "AccessDeniedException":
            log.warning("cannot describe %s (firehose:DescribeDeliveryStream denied)", transport.describe_target(""))
            return
        raise transport.classify("", exc) from None
    except botocore.exceptions.BotoCoreError as exc:
        log.warning("cannot describe the delivery stream (%s)", scrubbed(one_line(str(exc))))

"""What the stream transports make of an answer: a status per record, and one line for a refused request."""

from __future__ import annotations

import botocore.exceptions
import pytest

from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.prepare.record_packing import KINESIS
from airflow_provider_pinpoint.sending.transport import BadRequest, RetryableError
from airflow_provider_pinpoint.sinks.kinesis import KinesisTransport
from airflow_provider_pinpoint.sinks.streams import Budget, RecordsAnswer, Throttled
from tests.helpers.moto_server import REGION, moto_client


def test_a_200_with_per_record_failures_resends_only_those_records() -> None:
    entries = [
        {"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
        {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"},
        {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."},
    ]

    answer = RecordsAnswer.of(entries, 3, "req-1", "SequenceNumber")

    assert answer.statuses == [
        (200, ""),
        (429, "ProvisionedThroughputExceededException: Rate exceeded for shard"),
        (500, "InternalFailure: Internal service failure."),
    ]
    assert answer.throttled == 1 and not answer.all_stored


def test_firehose_service_unavailable_per_record_counts_as_throttled() -> None:
    entries = [{"RecordId": "r1"}, {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}]

    answer = RecordsAnswer.of(entries, 2, None, "RecordId")

    assert [code for code, _ in answer.statuses] == [200, 429]


def test_an_answer_that_lists_another_number_of_records_decides_none_of_them() -> None:
    answer = RecordsAnswer.of([{"SequenceNumber": "1"}], 2, None, "SequenceNumber")

    assert answer.statuses == [(0, "the answer listed 1 records for the 2 sent")] * 2


def _refused(code: str, status: int = 400) -> botocore.exceptions.ClientError:
    response = {"Error": {"Code": code, "Message": f"{code} said so"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "PutRecords")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ResourceNotFoundException", 400, FatalServiceError),
        ("AccessDeniedException", 400, FatalServiceError),
        ("KMSAccessDeniedException", 400, FatalServiceError),
        ("ExpiredTokenException", 400, FatalServiceError),
        ("ProvisionedThroughputExceededException", 400, Throttled),
        ("LimitExceededException", 400, Throttled),
        ("InvalidArgumentException", 400, BadRequest),
        ("InternalFailure", 500, RetryableError),
    ],
)
def test_a_refused_request_is_classified_by_its_error_code(
    code: str, status: int, kind: type, moto_server: str
) -> None:
    transport = KinesisTransport(moto_client(moto_server, "kinesis"), "orders", KINESIS, Budget.unlimited())

    error = transport.classify("app", _refused(code, status))

    assert type(error) is kind
    assert "\n" not in str(error)
    if kind is FatalServiceError:
        assert f"Kinesis stream 'orders' in region '{REGION}'" in str(error)
    if kind is Throttled:
        assert error.throttled  # type: ignore[attr-defined]

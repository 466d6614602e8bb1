"""Faults of the Kinesis and Firehose writes, as a boto3 user meets them (botocore retries off)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from tests.helpers.streams import stream_client

STREAM = "events"


@pytest.fixture
def stream(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    return STREAM


@pytest.fixture
def delivery(firehose):
    firehose.create_delivery_stream(DeliveryStreamName=STREAM)
    return STREAM


def kinesis_records(n: int) -> list[dict]:
    return [{"Data": f"record {i}".encode(), "PartitionKey": "k"} for i in range(n)]


def test_per_record_internal_failures_come_in_request_order_and_only_the_others_are_written(emulator, kinesis, stream):
    emulator.configure(record_error_rate=0.3, seed=5)
    sent = kinesis_records(100)
    answer = kinesis.put_records(StreamName=stream, Records=sent)
    failed = [i for i, result in enumerate(answer["Records"]) if "ErrorCode" in result]
    assert 10 < len(failed) < 60
    assert answer["FailedRecordCount"] == len(failed)
    assert {answer["Records"][i]["ErrorCode"] for i in failed} == {"InternalFailure"}
    kept = [entry["Data"] for i, entry in enumerate(sent) if i not in failed]
    assert [r["data"] for r in emulator.kinesis_records(stream)] == kept
    assert emulator.streams()["stats"]["faults"] == {"record_error": len(failed)}


def test_the_same_seed_fails_the_same_records(emulator, kinesis):
    patterns = []
    for _ in range(2):
        emulator.reset()
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        emulator.configure(record_error_rate=0.5, seed=11)
        answer = kinesis.put_records(StreamName=STREAM, Records=kinesis_records(50))
        patterns.append(["ErrorCode" in r for r in answer["Records"]])
    assert patterns[0] == patterns[1]
    assert any(patterns[0]) and not all(patterns[0])


def test_firehose_per_record_failures_come_in_request_order(emulator, firehose, delivery):
    emulator.configure(record_error_rate=0.3, seed=3)
    sent = [{"Data": f"{i}\n".encode()} for i in range(100)]
    answer = firehose.put_record_batch(DeliveryStreamName=delivery, Records=sent)
    failed = [i for i, r in enumerate(answer["RequestResponses"]) if "ErrorCode" in r]
    assert answer["FailedPutCount"] == len(failed) > 0
    kept = [entry["Data"] for i, entry in enumerate(sent) if i not in failed]
    assert [r["data"] for r in emulator.firehose_records(delivery)] == kept


@pytest.mark.parametrize(
    ("setting", "code", "status", "fault"),
    [
        # Whole-request throttling is Kinesis's throughput error.
        ("throttle_rate", "ProvisionedThroughputExceededException", 400, "throttle"),
        ("error_rate", "InternalFailureException", 500, "error"),
    ],
)
def test_a_kinesis_request_refused_as_a_whole_has_the_services_error_and_writes_nothing(
    emulator, kinesis, stream, setting, code, status, fault
):
    emulator.configure(**{setting: 1.0})
    with pytest.raises(getattr(kinesis.exceptions, code)) as raised:
        kinesis.put_records(StreamName=stream, Records=kinesis_records(3))
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert emulator.kinesis_records(stream) == []
    assert emulator.streams()["stats"]["faults"] == {fault: 1}


def test_whole_request_throttling_is_a_firehose_service_unavailable(emulator, firehose, delivery):
    emulator.configure(throttle_rate=1.0)
    with pytest.raises(firehose.exceptions.ServiceUnavailableException):
        firehose.put_record_batch(DeliveryStreamName=delivery, Records=[{"Data": b"x\n"}])
    assert emulator.firehose_records(delivery) == []


@pytest.mark.parametrize("service", ["kinesis", "firehose"])
def test_unavailable_rate_is_a_503_and_writes_nothing(emulator, kinesis, stream, firehose, delivery, service):
    emulator.configure(unavailable_rate=1.0)
    with pytest.raises(ClientError) as raised:
        if service == "kinesis":
            kinesis.put_records(StreamName=stream, Records=kinesis_records(1))
        else:
            firehose.put_record_batch(DeliveryStreamName=delivery, Records=[{"Data": b"x"}])
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert emulator.streams()["stats"]["records_accepted"] == 0


def test_a_lost_answer_is_a_connection_error_but_the_records_were_written(emulator, kinesis, stream):
    emulator.configure(lost_response_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        kinesis.put_records(StreamName=stream, Records=kinesis_records(3))
    assert [r["data"] for r in emulator.kinesis_records(stream)] == [b"record 0", b"record 1", b"record 2"]
    assert emulator.streams()["stats"]["faults"] == {"lost_response": 1}
    assert emulator.streams()["stats"]["records_unanswered"] == 3


def test_a_lost_firehose_answer_also_applies_the_write(emulator, firehose, delivery):
    emulator.configure(lost_response_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        firehose.put_record_batch(DeliveryStreamName=delivery, Records=[{"Data": b"a\n"}, {"Data": b"b\n"}])
    assert [r["data"] for r in emulator.firehose_records(delivery)] == [b"a\n", b"b\n"]


def test_a_lost_answer_held_past_the_read_timeout_is_a_timeout_and_the_write_applied(emulator, stream):
    emulator.configure(lost_response_rate=1.0, lost_response_delay_ms=1500)
    impatient = stream_client("kinesis", emulator.url, read_timeout=0.3)
    with pytest.raises(ReadTimeoutError):
        impatient.put_records(StreamName=stream, Records=kinesis_records(2))
    assert len(emulator.kinesis_records(stream)) == 2


def test_resending_after_a_lost_answer_writes_the_records_twice(emulator, kinesis, stream):
    emulator.configure(lost_response_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        kinesis.put_records(StreamName=stream, Records=kinesis_records(2))
    emulator.configure(lost_response_rate=0.0)
    kinesis.put_records(StreamName=stream, Records=kinesis_records(2))
    assert [r["data"] for r in emulator.kinesis_records(stream)] == [b"record 0", b"record 1"] * 2


def test_a_dropped_connection_writes_nothing(emulator, kinesis, stream):
    emulator.configure(drop_rate=1.0)
    with pytest.raises(ConnectionClosedError):
        kinesis.put_records(StreamName=stream, Records=kinesis_records(2))
    assert emulator.kinesis_records(stream) == []
    assert emulator.streams()["stats"]["faults"] == {"drop": 1}


def test_latency_delays_the_answer_but_changes_nothing_else(emulator, kinesis, stream):
    emulator.configure(latency_ms=20)
    answer = kinesis.put_records(StreamName=stream, Records=kinesis_records(2))
    assert answer["FailedRecordCount"] == 0
    assert emulator.streams()["stats"]["faults"] == {"latency": 1}


def test_set_up_and_read_back_calls_meet_no_faults(emulator, kinesis, firehose):
    emulator.configure(error_rate=1.0, drop_rate=1.0, throttle_rate=1.0, unavailable_rate=1.0)
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    firehose.create_delivery_stream(DeliveryStreamName=STREAM)
    assert kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["OpenShardCount"] == 2
    assert len(kinesis.list_shards(StreamName=STREAM)["Shards"]) == 2
    assert (
        firehose.describe_delivery_stream(DeliveryStreamName=STREAM)["DeliveryStreamDescription"][
            "DeliveryStreamStatus"
        ]
        == "ACTIVE"
    )


def test_an_unknown_stream_is_not_found_before_any_fault_is_drawn(emulator, kinesis):
    emulator.configure(throttle_rate=1.0, error_rate=1.0)
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.put_records(StreamName="missing", Records=kinesis_records(1))
    assert emulator.streams()["stats"]["faults"] == {}


def test_putevents_faults_are_not_counted_with_the_streams(emulator, kinesis, stream):
    emulator.configure(item_error_rate=1.0, rate_limit=0.001)
    kinesis.put_records(StreamName=stream, Records=kinesis_records(5))
    kinesis.put_records(StreamName=stream, Records=kinesis_records(5))
    assert emulator.streams()["stats"] == {
        "requests": 2,
        "records_accepted": 10,
        "records_failed": 0,
        "records_unanswered": 0,
        "faults": {},
    }
    assert emulator.stats()["faults"] == {}

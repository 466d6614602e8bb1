"""Amazon Data Firehose through boto3's own client: delivery streams, writes and reading back."""

from __future__ import annotations

import pytest

STREAM = "events-to-s3"
KIB = 1024


@pytest.fixture
def delivery(firehose):
    firehose.create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::events-bucket",
        },
    )
    return STREAM


def test_a_delivery_stream_is_active_and_listed_once_created(firehose, delivery):
    description = firehose.describe_delivery_stream(DeliveryStreamName=delivery)["DeliveryStreamDescription"]
    assert (description["DeliveryStreamName"], description["DeliveryStreamStatus"]) == (delivery, "ACTIVE")
    assert description["DeliveryStreamType"] == "DirectPut"
    assert firehose.list_delivery_streams()["DeliveryStreamNames"] == [delivery]


def test_records_are_delivered_as_sent_in_order(emulator, firehose, delivery):
    sent = [{"Data": f'{{"n": {i}}}\n'.encode()} for i in range(30)]
    answer = firehose.put_record_batch(DeliveryStreamName=delivery, Records=sent)
    assert answer["FailedPutCount"] == 0
    delivered = emulator.firehose_records(delivery)
    assert [r["data"] for r in delivered] == [e["Data"] for e in sent]
    assert [r["record_id"] for r in delivered] == [r["RecordId"] for r in answer["RequestResponses"]]


def test_put_record_delivers_one_record(emulator, firehose, delivery):
    answer = firehose.put_record(DeliveryStreamName=delivery, Record={"Data": b"one\n"})
    assert emulator.firehose_records(delivery) == [{"record_id": answer["RecordId"], "data": b"one\n"}]


def test_an_unknown_delivery_stream_is_resource_not_found(firehose):
    with pytest.raises(firehose.exceptions.ResourceNotFoundException) as raised:
        firehose.put_record_batch(DeliveryStreamName="missing", Records=[{"Data": b"x"}])
    assert "missing" in raised.value.response["Error"]["Message"]
    with pytest.raises(firehose.exceptions.ResourceNotFoundException):
        firehose.describe_delivery_stream(DeliveryStreamName="missing")


def test_creating_a_delivery_stream_twice_is_resource_in_use(firehose, delivery):
    with pytest.raises(firehose.exceptions.ResourceInUseException):
        firehose.create_delivery_stream(DeliveryStreamName=delivery)


def test_more_than_500_records_is_refused_whole(emulator, firehose, delivery):
    with pytest.raises(firehose.exceptions.ClientError) as raised:
        firehose.put_record_batch(DeliveryStreamName=delivery, Records=[{"Data": b"x"}] * 501)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert emulator.firehose_records(delivery) == []


def test_a_record_over_1000_kib_is_refused_whole(emulator, firehose, delivery):
    with pytest.raises(firehose.exceptions.ClientError) as raised:
        firehose.put_record_batch(DeliveryStreamName=delivery, Records=[{"Data": b"x" * (1000 * KIB + 1)}])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    firehose.put_record_batch(DeliveryStreamName=delivery, Records=[{"Data": b"x" * (1000 * KIB)}])
    assert len(emulator.firehose_records(delivery)) == 1


def test_a_request_over_4_mib_is_an_invalid_argument(emulator, firehose, delivery):
    with pytest.raises(firehose.exceptions.InvalidArgumentException):
        firehose.put_record_batch(DeliveryStreamName=delivery, Records=[{"Data": b"x" * (900 * KIB)}] * 5)
    assert emulator.firehose_records(delivery) == []


def test_the_inspection_api_answers_404_for_an_unknown_delivery_stream(emulator):
    with pytest.raises(ValueError, match="missing"):
        emulator.firehose_records("missing")

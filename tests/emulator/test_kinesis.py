"""Kinesis Data Streams through boto3's own client: streams, shards, writes and reading back."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.helpers.streams import md5_hash_key, shard_of
from tests.helpers.wire import exchange

STREAM = "events"
KIB = 1024
MIB = 1024 * KIB


def read_all(kinesis, stream: str = STREAM) -> dict[str, list[dict]]:
    """Every record of every shard, through GetShardIterator(TRIM_HORIZON) and GetRecords."""
    found = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[dict] = []
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=7)
            records += page["Records"]
            iterator = page["NextShardIterator"]
            if page["MillisBehindLatest"] == 0 and not page["Records"]:
                break
        found[shard["ShardId"]] = records
    return found


def test_a_new_stream_splits_the_hash_key_space_evenly_across_its_shards(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=4)
    shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards]
    assert ranges[0][0] == 0
    assert ranges[-1][1] == 2**128 - 1
    assert all(end + 1 == next_start for (_, end), (next_start, _) in zip(ranges[:-1], ranges[1:], strict=True))
    sizes = {end - start + 1 for start, end in ranges}
    assert max(sizes) - min(sizes) < 4
    summary = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]
    assert (summary["OpenShardCount"], summary["StreamStatus"]) == (4, "ACTIVE")


def test_each_record_goes_to_the_shard_whose_range_holds_the_md5_of_its_key(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=3)
    shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
    keys = [f"endpoint-{i}" for i in range(60)]
    answer = kinesis.put_records(StreamName=STREAM, Records=[{"Data": b"x", "PartitionKey": k} for k in keys])
    assert answer["FailedRecordCount"] == 0
    assert [r["ShardId"] for r in answer["Records"]] == [shard_of(shards, k) for k in keys]
    assert len({r["ShardId"] for r in answer["Records"]}) == 3


def test_an_explicit_hash_key_overrides_the_partition_key(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    key = next(f"k{i}" for i in range(100) if md5_hash_key(f"k{i}") < 2**127)
    answer = kinesis.put_records(
        StreamName=STREAM, Records=[{"Data": b"x", "PartitionKey": key, "ExplicitHashKey": str(2**128 - 1)}]
    )
    assert answer["Records"][0]["ShardId"] == "shardId-000000000001"


def test_records_read_back_through_get_records_as_written_in_order_per_shard(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    sent = [{"Data": f"record {i}".encode(), "PartitionKey": f"key-{i % 5}"} for i in range(40)]
    answer = kinesis.put_records(StreamName=STREAM, Records=sent)
    written = {}
    for entry, result in zip(sent, answer["Records"], strict=True):
        written.setdefault(result["ShardId"], []).append(
            (result["SequenceNumber"], entry["PartitionKey"], entry["Data"])
        )
    found = read_all(kinesis)
    assert {
        shard: [(r["SequenceNumber"], r["PartitionKey"], r["Data"]) for r in records]
        for shard, records in found.items()
    } == written


def test_put_record_answers_its_shard_and_sequence_number(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
    answer = kinesis.put_record(StreamName=STREAM, Data=b"one", PartitionKey="ep-1")
    assert answer["ShardId"] == shard_of(shards, "ep-1")
    assert [r["Data"] for r in read_all(kinesis)[answer["ShardId"]]] == [b"one"]


def test_an_after_sequence_number_iterator_starts_behind_that_record(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    answer = kinesis.put_records(
        StreamName=STREAM, Records=[{"Data": bytes([i]), "PartitionKey": "k"} for i in range(5)]
    )
    iterator = kinesis.get_shard_iterator(
        StreamName=STREAM,
        ShardId="shardId-000000000000",
        ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        StartingSequenceNumber=answer["Records"][2]["SequenceNumber"],
    )["ShardIterator"]
    assert [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]] == [b"\x03", b"\x04"]


def test_the_inspection_api_lists_every_record_with_its_key_and_shard(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    answer = kinesis.put_records(StreamName=STREAM, Records=[{"Data": b"a", "PartitionKey": "p"}])
    records = emulator.kinesis_records(STREAM)
    assert isinstance(records[0].pop("arrival"), float)
    assert records == [
        {
            "shard_id": answer["Records"][0]["ShardId"],
            "sequence_number": answer["Records"][0]["SequenceNumber"],
            "partition_key": "p",
            "data": b"a",
        }
    ]
    assert emulator.streams()["stats"]["records_accepted"] == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda k: k.put_records(StreamName="missing", Records=[{"Data": b"x", "PartitionKey": "k"}]),
        lambda k: k.put_record(StreamName="missing", Data=b"x", PartitionKey="k"),
        lambda k: k.describe_stream_summary(StreamName="missing"),
        lambda k: k.list_shards(StreamName="missing"),
    ],
    ids=["PutRecords", "PutRecord", "DescribeStreamSummary", "ListShards"],
)
def test_an_unknown_stream_is_resource_not_found(kinesis, call):
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as raised:
        call(kinesis)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "missing" in raised.value.response["Error"]["Message"]


def test_creating_a_stream_twice_is_resource_in_use(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    with pytest.raises(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)


def test_more_than_500_records_is_a_validation_exception_and_nothing_is_written(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    with pytest.raises(kinesis.exceptions.ValidationException) as raised:
        kinesis.put_records(StreamName=STREAM, Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
    assert "500" in raised.value.response["Error"]["Message"]
    assert emulator.kinesis_records(STREAM) == []


def test_a_partition_key_over_256_characters_is_a_validation_exception(kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    with pytest.raises(kinesis.exceptions.ValidationException):
        kinesis.put_records(StreamName=STREAM, Records=[{"Data": b"x", "PartitionKey": "k" * 257}])


def test_a_record_over_1_mib_with_its_key_is_an_invalid_argument(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    with pytest.raises(kinesis.exceptions.InvalidArgumentException):
        kinesis.put_records(StreamName=STREAM, Records=[{"Data": b"x" * MIB, "PartitionKey": "k"}])
    kinesis.put_records(StreamName=STREAM, Records=[{"Data": b"x" * (MIB - 1), "PartitionKey": "k"}])
    assert len(emulator.kinesis_records(STREAM)) == 1


def test_a_request_over_5_mib_is_an_invalid_argument(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    records = [{"Data": b"x" * 1_000_000, "PartitionKey": f"k{i}"} for i in range(6)]
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as raised:
        kinesis.put_records(StreamName=STREAM, Records=records)
    assert "5 MB" in raised.value.response["Error"]["Message"]
    assert emulator.kinesis_records(STREAM) == []


def test_reset_forgets_every_stream(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    emulator.reset()
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.describe_stream_summary(StreamName=STREAM)


def _raw_put(url: str, host: str, authorization: str | None) -> tuple[int, bytes]:
    headers = {"Host": host, "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecord"}
    if authorization:
        headers["Authorization"] = authorization
    return exchange(url, "POST", "/", b'{"StreamName":"events","Data":"eA==","PartitionKey":"k"}', headers)


def test_a_stream_write_under_a_foreign_host_name_is_refused_with_421(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    status, _ = _raw_put(emulator.url, "attacker.example", "AWS4-HMAC-SHA256 Credential=testing/x")
    assert status == 421
    assert emulator.kinesis_records(STREAM) == []


def test_a_stream_write_without_credentials_is_refused(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    status, body = _raw_put(emulator.url, "127.0.0.1", None)
    assert status == 400
    assert b"UnrecognizedClientException" in body
    assert emulator.kinesis_records(STREAM) == []


def test_an_unknown_operation_is_refused_by_name(kinesis):
    with pytest.raises(ClientError) as raised:
        kinesis.list_stream_consumers(StreamARN="arn:aws:kinesis:us-east-1:123456789012:stream/events")
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"


def test_a_stream_body_over_8_mib_is_refused_413_without_being_kept(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecords"}
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=testing/x"
    status, body = exchange(emulator.url, "POST", "/", b" " * (8 * MIB + 1), headers)
    assert status == 413
    assert b"RequestEntityTooLargeException" in body


def test_putevents_keeps_its_4_mb_cap_even_with_a_stray_target_header(emulator):
    headers = {"Content-Type": "application/json", "X-Amz-Target": "Kinesis_20131202.PutRecords"}
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=testing/x"
    status, body = exchange(emulator.url, "POST", "/v1/apps/app-1/events", b" " * (4 * MIB + 1), headers)
    assert status == 413
    assert b"exceeds" in body

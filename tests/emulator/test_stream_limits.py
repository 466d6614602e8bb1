"""Write budgets: per Kinesis shard (records and bytes a second) and per Firehose delivery stream.

The records of one request are judged at one instant, so these outcomes do not depend on timing:
a budget's burst is one second's worth, and a budget of 0.001 a second refills nothing in a test.
"""

from __future__ import annotations

import pytest

from airflow_provider_pinpoint.emulator.streams.budget import Budget
from tests.helpers.streams import keys_on

STREAM = "events"
KIB = 1024
THROUGHPUT = "ProvisionedThroughputExceededException"


def two_shards(kinesis) -> list[dict]:
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    return kinesis.list_shards(StreamName=STREAM)["Shards"]


def test_records_beyond_a_shards_budget_fail_alone_inside_a_200_in_request_order(emulator, kinesis):
    emulator.configure(shard_records_per_second=100)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    sent = [{"Data": f"{i}".encode(), "PartitionKey": "hot"} for i in range(300)]
    answer = kinesis.put_records(StreamName=STREAM, Records=sent)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["FailedRecordCount"] == 200
    codes = [r.get("ErrorCode") for r in answer["Records"]]
    assert codes == [None] * 100 + [THROUGHPUT] * 200
    assert "shardId-000000000000" in answer["Records"][150]["ErrorMessage"]
    assert [r["data"] for r in emulator.kinesis_records(STREAM)] == [e["Data"] for e in sent[:100]]


def test_writes_within_a_shards_budget_are_never_throttled(emulator, kinesis):
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    for batch in range(2):  # 1,000 records: one second's worth of the default budget, at once
        records = [{"Data": b"x" * 100, "PartitionKey": f"{batch}-{i}"} for i in range(500)]
        assert kinesis.put_records(StreamName=STREAM, Records=records)["FailedRecordCount"] == 0
    assert len(emulator.kinesis_records(STREAM)) == 1000
    assert emulator.streams()["stats"]["faults"] == {}


def test_the_bytes_budget_of_1_mib_a_second_fails_the_record_that_exceeds_it(emulator, kinesis):
    shards = two_shards(kinesis)
    first, second = keys_on(shards, "shardId-000000000000", 2)
    (other,) = keys_on(shards, "shardId-000000000001", 1)
    records = [{"Data": b"x" * (600 * KIB), "PartitionKey": key} for key in (first, second, other)]
    answer = kinesis.put_records(StreamName=STREAM, Records=records)
    assert [r.get("ErrorCode") for r in answer["Records"]] == [None, THROUGHPUT, None]
    assert answer["FailedRecordCount"] == 1


def test_a_hot_shard_is_throttled_while_the_other_takes_its_share(emulator, kinesis):
    emulator.configure(shard_records_per_second=100)
    shards = two_shards(kinesis)
    hot = keys_on(shards, "shardId-000000000000", 1)[0]
    cold = keys_on(shards, "shardId-000000000001", 50, prefix="cold")
    records = []
    for i in range(150):
        records.append({"Data": b"h", "PartitionKey": hot})
        if i < 50:
            records.append({"Data": b"c", "PartitionKey": cold[i]})
    answer = kinesis.put_records(StreamName=STREAM, Records=records)
    failed_shards = [
        shard
        for shard, result in zip([k["PartitionKey"] == hot for k in records], answer["Records"], strict=True)
        if "ErrorCode" in result
    ]
    assert answer["FailedRecordCount"] == 50
    assert all(failed_shards)
    assert emulator.streams()["kinesis"][STREAM]["shards"] == {"shardId-000000000000": 100, "shardId-000000000001": 50}


def test_put_record_beyond_the_budget_is_a_request_level_throughput_error(emulator, kinesis):
    emulator.configure(shard_records_per_second=0.001)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    kinesis.put_record(StreamName=STREAM, Data=b"first", PartitionKey="k")
    with pytest.raises(kinesis.exceptions.ProvisionedThroughputExceededException):
        kinesis.put_record(StreamName=STREAM, Data=b"second", PartitionKey="k")
    assert [r["data"] for r in emulator.kinesis_records(STREAM)] == [b"first"]


def test_a_changed_budget_applies_from_the_next_request(emulator, kinesis):
    emulator.configure(shard_records_per_second=0.001)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    records = [{"Data": b"x", "PartitionKey": "k"}] * 3
    assert kinesis.put_records(StreamName=STREAM, Records=records)["FailedRecordCount"] == 2
    emulator.configure(shard_records_per_second=1000)
    assert kinesis.put_records(StreamName=STREAM, Records=records)["FailedRecordCount"] == 0


def test_a_firehose_budget_fails_the_records_beyond_it_with_service_unavailable(emulator, firehose):
    emulator.configure(firehose_records_per_second=10)
    firehose.create_delivery_stream(DeliveryStreamName=STREAM)
    sent = [{"Data": f"{i}\n".encode()} for i in range(15)]
    answer = firehose.put_record_batch(DeliveryStreamName=STREAM, Records=sent)
    assert answer["FailedPutCount"] == 5
    assert [r.get("ErrorCode") for r in answer["RequestResponses"]] == [None] * 10 + ["ServiceUnavailableException"] * 5
    assert [r["data"] for r in emulator.firehose_records(STREAM)] == [e["Data"] for e in sent[:10]]


def test_a_firehose_bytes_budget_counts_the_data(emulator, firehose):
    emulator.configure(firehose_bytes_per_second=1000)
    firehose.create_delivery_stream(DeliveryStreamName=STREAM)
    answer = firehose.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": b"x" * 600}] * 2)
    assert [r.get("ErrorCode") for r in answer["RequestResponses"]] == [None, "ServiceUnavailableException"]


def test_a_firehose_stream_without_a_budget_takes_everything(emulator, firehose):
    firehose.create_delivery_stream(DeliveryStreamName=STREAM)
    for _ in range(4):
        answer = firehose.put_record_batch(DeliveryStreamName=STREAM, Records=[{"Data": b"x\n"}] * 500)
        assert answer["FailedPutCount"] == 0
    assert emulator.streams()["firehose"][STREAM]["records"] == 2000


@pytest.mark.parametrize(
    "setting", ["shard_records_per_second", "shard_bytes_per_second", "firehose_records_per_second"]
)
@pytest.mark.parametrize("value", [0, -1, "lots", True])
def test_a_budget_that_is_not_a_positive_number_is_refused(emulator, setting, value):
    with pytest.raises(ValueError, match=setting):
        emulator.configure(**{setting: value})


def test_a_budget_refills_at_its_rate_up_to_one_seconds_worth():
    budget = Budget(records_per_second=10, bytes_per_second=None, now=0.0)
    assert sum(budget.take(1) for _ in range(20)) == 10
    budget.refill(0.5)
    assert sum(budget.take(1) for _ in range(20)) == 5
    budget.refill(100.0)
    assert sum(budget.take(1) for _ in range(20)) == 10


def test_a_record_refused_by_the_budget_spends_nothing():
    budget = Budget(records_per_second=10, bytes_per_second=100, now=0.0)
    assert not budget.take(101)
    assert budget.take(100)
    assert budget.records == 9

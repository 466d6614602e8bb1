"""The moto fixture and its helpers read back exactly what was put into a stream and a delivery stream."""

from __future__ import annotations

import json

from tests.helpers.moto_server import (
    create_delivery_stream,
    create_stream,
    decoded,
    delivered_lines,
    moto_client,
    stream_records,
)


def test_every_record_put_into_a_stream_is_read_back_from_its_shards(moto_server: str) -> None:
    name = create_stream(moto_server, shards=3)
    records = [{"Data": json.dumps({"n": n}).encode(), "PartitionKey": f"key-{n}"} for n in range(40)]
    answer = moto_client(moto_server, "kinesis").put_records(StreamName=name, Records=records)
    assert answer["FailedRecordCount"] == 0

    read = stream_records(moto_server, name)

    assert sorted(record["n"] for record in decoded(read)) == list(range(40))
    assert {record["partition_key"] for record in read} == {f"key-{n}" for n in range(40)}
    assert len({record["shard_id"] for record in read}) > 1


def test_records_put_into_a_delivery_stream_land_in_its_bucket_as_json_lines(moto_server: str) -> None:
    name, bucket = create_delivery_stream(moto_server)
    records = [{"Data": (json.dumps({"n": n}) + "\n").encode()} for n in range(7)]
    answer = moto_client(moto_server, "firehose").put_record_batch(DeliveryStreamName=name, Records=records)
    assert answer["FailedPutCount"] == 0

    assert sorted(line["n"] for line in delivered_lines(moto_server, bucket)) == list(range(7))

"""The pre-built PutRecords / PutRecordBatch bodies, through a real boto3 client to moto's server."""

from __future__ import annotations

import json

from airflow_provider_pinpoint.prepare.record_packing import FIREHOSE, KINESIS
from airflow_provider_pinpoint.sinks.firehose import FirehoseTransport
from airflow_provider_pinpoint.sinks.kinesis import KinesisTransport
from airflow_provider_pinpoint.sinks.raw_records import RawRecords
from airflow_provider_pinpoint.sinks.streams import Budget
from tests.helpers.moto_server import (
    create_delivery_stream,
    create_stream,
    delivered_lines,
    moto_client,
    stream_records,
)


def test_data_and_partition_keys_arrive_byte_for_byte_even_keys_that_need_json_escapes(moto_server: str) -> None:
    stream = create_stream(moto_server, shards=2)
    client = moto_client(moto_server, "kinesis")
    keys = ["plain", 'quote"d', "back\\slash", "tab\there", "ünï"]
    data = [json.dumps({"n": n, "text": "é\n\u2028"}).encode() for n in range(len(keys))]

    answer = RawRecords(client, "PutRecords", "StreamName", stream).send(data, keys)

    assert answer["FailedRecordCount"] == 0 and len(answer["Records"]) == len(keys)
    read = sorted(stream_records(moto_server, stream), key=lambda record: json.loads(record["data"])["n"])
    assert [record["partition_key"] for record in read] == keys
    assert [record["data"] for record in read] == data


def test_a_plain_call_on_the_same_client_is_left_alone(moto_server: str) -> None:
    stream = create_stream(moto_server, shards=1)
    client = moto_client(moto_server, "kinesis")
    RawRecords(client, "PutRecords", "StreamName", stream).send([b"built"], ["k"])

    client.put_records(StreamName=stream, Records=[{"Data": b"plain", "PartitionKey": "k"}])

    assert sorted(record["data"] for record in stream_records(moto_server, stream)) == [b"built", b"plain"]


def test_firehose_records_go_as_built_and_each_ends_in_a_newline(moto_server: str) -> None:
    name, bucket = create_delivery_stream(moto_server)
    client = moto_client(moto_server, "firehose")
    transport = FirehoseTransport(client, name, FIREHOSE, Budget.unlimited())

    answer = transport._put([b'{"n":1}', b'{"n":2}'], ["a", "b"])

    assert answer.all_stored
    assert delivered_lines(moto_server, bucket) == [{"n": 1}, {"n": 2}]


def test_the_kinesis_transport_stamps_arrival_time_and_keys_by_endpoint(moto_server: str) -> None:
    from airflow_provider_pinpoint.prepare.requests import EVENT, Item, Request

    stream = create_stream(moto_server, shards=1)
    transport = KinesisTransport(moto_client(moto_server, "kinesis"), stream, KINESIS, Budget.unlimited())
    request = Request([Item(EVENT, "ep-1", "e-1", "events.csv", 1, '{"event_type":"view"}')])

    answer = transport.send("app", request)

    (record,) = stream_records(moto_server, stream)
    body = json.loads(record["data"])
    assert answer.common_success(request) == 200
    assert record["partition_key"] == "ep-1" and body["event_type"] == "view"
    assert isinstance(body["arrival_timestamp"], int) and list(body)[0] == "arrival_timestamp"

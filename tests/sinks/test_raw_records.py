"""The pre-built PutRecords / PutRecordBatch bodies, through a real boto3 client to moto's server."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.auth
import botocore.config
import botocore.exceptions
import pytest

from airflow_provider_pinpoint.prepare.record_packing import FIREHOSE, KINESIS
from airflow_provider_pinpoint.sinks.firehose import FirehoseTransport
from airflow_provider_pinpoint.sinks.kinesis import KinesisTransport
from airflow_provider_pinpoint.sinks.raw_records import RawRecords
from airflow_provider_pinpoint.sinks.streams import Budget
from tests.helpers.moto_server import (
    CREDENTIALS,
    REGION,
    create_delivery_stream,
    create_stream,
    delivered_lines,
    moto_client,
    stream_records,
)
from tests.sinks.test_raw_body import _Recorder, served


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


def _single_attempt(url: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        **CREDENTIALS,
    )


@pytest.mark.usefixtures("only_botocores_handlers")
def test_a_single_attempt_client_is_sent_to_directly_byte_for_byte(moto_server: str) -> None:
    stream = create_stream(moto_server, shards=1)
    raw = RawRecords(_single_attempt(moto_server, "kinesis"), "PutRecords", "StreamName", stream)
    keys = ["plain", 'quote"d']
    data = [b'{"n":0}', b'{"n":1,"t":"\\u00e9"}']

    answer = raw.send(data, keys)

    assert raw.direct
    assert answer["FailedRecordCount"] == 0 and len(answer["Records"]) == 2
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    read = sorted(stream_records(moto_server, stream), key=lambda record: json.loads(record["data"])["n"])
    assert [(record["partition_key"], record["data"]) for record in read] == list(zip(keys, data, strict=True))


_BATCH_PUTS = [
    ("kinesis", "PutRecords", "StreamName", ["k1", "k2"], {"FailedRecordCount": 0, "Records": [{}, {}]}),
    ("firehose", "PutRecordBatch", "DeliveryStreamName", None, {"FailedPutCount": 0, "RequestResponses": [{}, {}]}),
]


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    yield from served()


@pytest.mark.usefixtures("only_botocores_handlers")
@pytest.mark.parametrize(("service", "operation", "field", "keys", "answer"), _BATCH_PUTS)
def test_direct_requests_carry_the_headers_botocore_sends(
    recorder, monkeypatch, service, operation, field, keys, answer
):
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.datetime(2026, 3, 4, 5, 6, 7))
    client = _single_attempt(recorder.url, service)
    results = []
    for direct in (False, True):
        recorder.answers.append((200, {"x-amzn-RequestId": "req-1"}, json.dumps(answer).encode()))
        raw = RawRecords(client, operation, field, "the-stream", direct=direct)
        results.append(raw.send([b'{"n":1}', b'{"n":2}'], keys))
        assert raw.direct is direct
    plain, sent = (headers for _, _, headers, _ in recorder.received)
    assert recorder.received[0][3] == recorder.received[1][3]
    for headers in (plain, sent):
        headers.pop("amz-sdk-invocation-id")
    assert list(sent.items()) == list(plain.items())
    for result in results:
        result["ResponseMetadata"]["HTTPHeaders"].pop("date")
    # The retry handler's note (a single attempt was all there was to be) is not reproduced on success.
    assert results[0]["ResponseMetadata"].pop("MaxAttemptsReached") is True
    assert results[1] == results[0]


@pytest.mark.usefixtures("only_botocores_handlers")
@pytest.mark.parametrize(("service", "operation", "field", "keys", "answer"), _BATCH_PUTS)
@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "ResourceNotFoundException"), (400, "ProvisionedThroughputExceededException"), (503, "ServiceUnavailable")],
)
def test_direct_errors_are_raised_as_botocore_raises_them(
    recorder, service, operation, field, keys, answer, status, code
):
    client = _single_attempt(recorder.url, service)
    raised = []
    for direct in (False, True):
        body = json.dumps({"__type": code, "message": f"{code} for this test"}).encode()
        recorder.answers.append((status, {"x-amzn-RequestId": "req-err"}, body))
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            RawRecords(client, operation, field, "the-stream", direct=direct).send([b"{}", b"{}"], keys)
        raised.append(caught.value)
    plain, sent = raised
    assert type(sent) is type(plain) and str(sent) == str(plain)
    for error in raised:
        error.response["ResponseMetadata"]["HTTPHeaders"].pop("date")
    assert sent.response == plain.response

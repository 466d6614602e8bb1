"""Each kind of answer (or no answer) from the service maps to one classified outcome."""

from __future__ import annotations

import http.server
import json
import threading

import boto3
import pandas as pd
import pytest
from botocore.config import Config

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.emulator import run_emulator
from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.sending.transport import BadRequest, PayloadTooLarge, RetryableError
from airflow_provider_pinpoint.sinks.putevents import PutEventsTransport, Response
from tests.helpers.items import APP, emulator_client, make_items

pytestmark = pytest.mark.integration


def send(url, request, **client_options):
    client = (
        emulator_client(url)
        if not client_options
        else boto3.client(
            "pinpoint",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **client_options),
        )
    )
    return PutEventsTransport(client).send(APP, request)


def test_a_202_carries_each_items_status(emulator):
    items = make_items(1, 2)
    response = send(emulator.url, Request(items))
    assert response.status == 202 and response.request_id
    assert [response.item_status(item)[0] for item in items] == [202, 202, 202]


def test_one_code_for_every_item_only_when_all_got_the_same_2xx():
    items = make_items(1, 2)
    endpoint_id, first, second = items[0].endpoint_id, items[1].event_id, items[2].event_id

    def answer(endpoint_code, first_code, with_second=True):
        events = {first: {"StatusCode": first_code, "Message": "x"}}
        if with_second:
            events[second] = {"StatusCode": 202}
        entry = {"EndpointItemResponse": {"StatusCode": endpoint_code}, "EventsItemResponse": events}
        return Response(202, "req", {endpoint_id: entry})

    assert answer(202, 202).common_success(Request(items)) == 202
    assert answer(202, 400).common_success(Request(items)) is None  # one item rejected
    assert answer(200, 202).common_success(Request(items)) is None  # two different codes: each item keeps its own
    assert answer(202, 202, with_second=False).common_success(Request(items)) is None  # an item with no status
    assert answer(202, "202").common_success(Request(items)) is None  # not a number: item_status decides


@pytest.mark.parametrize(
    ("faults", "status"),
    [({"error_rate": 1.0}, 500), ({"rate_limit": 0.001}, 429), ({"drop_rate": 1.0}, None)],
    ids=["500", "429", "dropped connection"],
)
def test_retryable_failures(faults, status, emulator):
    emulator.configure(**faults)
    request = Request(make_items(1, 1))
    if status == 429:
        send(emulator.url, request)  # takes the bucket's only token
    with pytest.raises(RetryableError) as caught:
        send(emulator.url, request)
    assert caught.value.status == status
    assert caught.value.throttled == (status == 429)


def test_a_timeout_is_retryable(emulator):
    emulator.configure(latency_ms=2000)
    with pytest.raises(RetryableError, match="no answer"):
        send(emulator.url, Request(make_items(1, 1)), read_timeout=0.2, connect_timeout=1)


def test_413_asks_for_a_split(emulator):
    items = make_items(500, 0)
    for item in items:
        item.body = '{"Attributes":{' + ",".join(f'"a{k}":["{"x" * 99}"]' for k in range(90)) + "}}"
    with pytest.raises(PayloadTooLarge):
        send(emulator.url, Request(items))


def test_404_is_fatal_and_says_what_to_check():
    with run_emulator(apps=["another-app"]) as emu, pytest.raises(FatalServiceError) as caught:
        send(emu.url, Request(make_items(1, 1)))
    message = str(caught.value)
    assert "HTTP 404" in message and APP in message and "application id" in message


def test_the_target_named_in_errors_leaves_out_credentials_in_the_endpoint_url():
    with run_emulator(apps=["another-app"]) as emu, pytest.raises(FatalServiceError) as caught:
        send(emu.url.replace("://", "://proxyuser:proxy-secret@"), Request(make_items(1, 1)))
    message = str(caught.value)
    assert "HTTP 404" in message and emu.url.split("://")[1] in message
    assert "proxy-secret" not in message and "proxyuser" not in message


@pytest.fixture
def answering_server():
    """A loopback HTTP server that answers every POST with the status and body set on it; with
    ``item`` set, the body gives every item of the request that status entry."""
    answer = {"status": 200, "body": b"", "item": None}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = answer["body"]
            if answer["item"] is not None:
                item = answer["item"]
                results = {
                    endpoint_id: {
                        "EndpointItemResponse": item,
                        "EventsItemResponse": dict.fromkeys(entry["Events"], item),
                    }
                    for endpoint_id, entry in request["BatchItem"].items()
                }
                body = json.dumps({"Results": results}).encode()
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", answer
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (301, FatalServiceError),
        (307, FatalServiceError),
        (401, FatalServiceError),
        (407, FatalServiceError),
        (408, RetryableError),
        (400, BadRequest),
        (418, BadRequest),
    ],
)
def test_each_whole_request_answer_is_classified(answering_server, status, outcome):
    url, answer = answering_server
    answer["status"], answer["body"] = status, b'{"message": "refused"}'
    with pytest.raises(outcome):
        send(url, Request(make_items(1, 1)))


@pytest.mark.parametrize("status", [301, 302, 307, 400, 401, 407, 408, 418])
def test_no_whole_request_answer_settles_rows_as_rejected(answering_server, status, tmp_path):
    url, answer = answering_server
    answer["status"], answer["body"] = status, b'{"message": "refused"}'
    results = tmp_path / "results.parquet"
    events = pd.DataFrame(
        {"EndpointId": ["e1", "e2"], "EventType": ["x", "x"], "Timestamp": ["2026-01-01T00:00:00Z"] * 2}
    )
    try:
        load_events(events, application_id=APP, client=emulator_client(url), results=str(results), max_attempts=2)
    except FatalServiceError:
        pass
    table = pd.read_parquet(results)
    assert len(table) == 2 and set(table["status"]) == {"failed"}
    assert all(table["message"].str.len() > 0)
    assert set(table["attempts"]) == ({2} if status == 408 else {1})


@pytest.mark.parametrize(
    "item",
    [
        {"StatusCode": 99999999999, "Message": "Accepted"},
        {"StatusCode": -1},
        {"StatusCode": "202"},
        {"StatusCode": 202.5},
        {"StatusCode": True},
        {"StatusCode": 400, "Message": {"text": "no"}},
        {"StatusCode": 500, "Message": 5},
        "Accepted",
    ],
    ids=repr,
)
def test_an_item_status_that_cannot_be_read_settles_failed_with_a_description(answering_server, item, tmp_path):
    url, answer = answering_server
    answer["status"], answer["item"] = 202, item
    results = tmp_path / "results.parquet"
    events = pd.DataFrame(
        {"EndpointId": ["e1", "e2"], "EventType": ["x", "x"], "Timestamp": ["2026-01-01T00:00:00Z"] * 2}
    )
    report = load_events(events, application_id=APP, client=emulator_client(url), results=str(results), max_attempts=2)
    table = pd.read_parquet(results)
    assert report.summary.failed == len(table) == 2
    assert all("for this item" in message and "not" in message for message in table["message"])
    assert set(table["attempts"]) == {2}


@pytest.mark.parametrize("code", [401, 403, 404, 408])
def test_a_per_item_4xx_that_does_not_say_the_item_is_invalid_is_resent_then_failed(answering_server, code, tmp_path):
    url, answer = answering_server
    answer["status"], answer["item"] = 202, {"StatusCode": code, "Message": "not now"}
    results = tmp_path / "results.parquet"
    events = pd.DataFrame({"EndpointId": ["e1"], "EventType": ["x"], "Timestamp": ["2026-01-01T00:00:00Z"]})
    load_events(events, application_id=APP, client=emulator_client(url), results=str(results), max_attempts=2)
    table = pd.read_parquet(results)
    assert table[["status", "status_code", "attempts"]].values.tolist() == [["failed", code, 2]]


@pytest.mark.parametrize(
    "body",
    [
        b"<html>bad gateway</html>",
        b"[1, 2]",
        b'"Results"',
        b"",
        b'{"Results":' + b'{"a":' * 20_000 + b"1" + b"}" * 20_001,
        b'{"Results": "\xff\xfe"}',
    ],
    ids=["html", "list", "text", "empty", "nested too deep", "not UTF-8"],
)
def test_a_2xx_answer_that_is_not_a_json_object_is_retryable(answering_server, body):
    url, answer = answering_server
    answer["body"] = body
    with pytest.raises(RetryableError, match="could not be parsed"):
        send(url, Request(make_items(1, 1)))


def test_a_2xx_json_object_is_read_as_the_answer(answering_server):
    url, answer = answering_server
    endpoint, event = make_items(1, 1)
    entry = {
        "EndpointItemResponse": {"StatusCode": 202, "Message": "Accepted"},
        "EventsItemResponse": {event.event_id: {"StatusCode": 400, "Message": "no"}},
    }
    answer["body"] = json.dumps({"Results": {endpoint.endpoint_id: entry}}).encode()
    response = send(url, Request([endpoint, event]))
    assert (response.item_status(endpoint), response.item_status(event)) == ((202, "Accepted"), (400, "no"))


def test_no_credentials_is_fatal_and_says_where_to_put_them(emulator, monkeypatch, tmp_path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session().client("pinpoint", endpoint_url=emulator.url, region_name="us-east-1")
    with pytest.raises(FatalServiceError, match="No AWS credentials found"):
        PutEventsTransport(client).send(APP, Request(make_items(1, 1)))


@pytest.mark.parametrize("status", [400, 403, 404, 429, 500])
def test_a_service_message_that_quotes_an_address_reaches_no_error_text(answering_server, status):
    url, answer = answering_server
    answer["status"], answer["body"] = status, b'{"message": "User jane.doe@example.com at +1 555 010 4477 is refused"}'
    with pytest.raises((FatalServiceError, BadRequest, RetryableError)) as caught:
        send(url, Request(make_items(1, 1)))
    text = str(caught.value) + getattr(caught.value, "message", "")
    assert "jane.doe@example.com" not in text and "555 010 4477" not in text
    assert "is refused" in text


def test_a_client_that_cannot_make_the_request_stops_the_run_in_one_line(emulator, tmp_path):
    """Credentials that cannot be retrieved (a failing credential_process, SSO, a role) fail every request alike."""
    import botocore.exceptions

    client = emulator_client(emulator.url)

    def put_events(**_):
        raise botocore.exceptions.CredentialRetrievalError(
            provider="custom-process", error_msg="exit 1 jane@example.com"
        )

    client.put_events = put_events
    results = tmp_path / "results.parquet"
    events = pd.DataFrame({"EndpointId": ["e1"], "EventType": ["x"], "Timestamp": ["2026-01-01T00:00:00Z"]})
    with pytest.raises(FatalServiceError, match="CredentialRetrievalError") as caught:
        load_events(events, application_id=APP, client=client, results=str(results))
    assert "jane@example.com" not in str(caught.value)
    assert pd.read_parquet(results)["status"].tolist() == ["failed"]


@pytest.mark.parametrize("status", [403, 500])
def test_an_error_answer_nested_too_deep_to_parse_is_retryable(answering_server, status):
    url, answer = answering_server
    answer["status"], answer["body"] = status, b'{"message":' + b'{"a":' * 20_000 + b"1" + b"}" * 20_001
    with pytest.raises(RetryableError, match="could not be parsed"):
        send(url, Request(make_items(1, 1)))

"""RawPutEvents sends pre-built bodies through a real boto3 client, signed, and parses only what it must.

Wire-level facts (exact bytes, signature) are checked on a loopback server that records what it
received, the way a real service would see the request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.config
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from airflow_provider_pinpoint.sinks.raw_body import RawPutEvents

ACCESS_KEY = "testing"
SECRET_KEY = "testing-secret"


class _Recorder(ThreadingHTTPServer):
    """Records every request; answers with queued (status, headers, body) or a 202 naming the endpoints."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received.append((self.command, self.path, dict(self.headers.items()), body))
            answer = self.server.answers.pop(0) if self.server.answers else None
        if answer is None:
            results = {
                endpoint_id: {
                    "EndpointItemResponse": {"StatusCode": 202, "Message": "Accepted"},
                    "EventsItemResponse": {
                        event_id: {"StatusCode": 202, "Message": "Accepted"} for event_id in batch["Events"]
                    },
                }
                for endpoint_id, batch in json.loads(body)["BatchItem"].items()
            }
            answer = (202, {"x-amzn-RequestId": f"req-{len(body)}"}, json.dumps({"Results": results}).encode())
        status, headers, payload = answer
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def served() -> Iterator[_Recorder]:
    """A recorder serving on loopback in a thread, shut down when the generator is closed."""
    recorder = _Recorder()
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    yield recorder
    recorder.shutdown()
    recorder.server_close()


@pytest.fixture
def server() -> Iterator[_Recorder]:
    yield from served()


@pytest.fixture
def client(server: _Recorder):
    return boto3.client(
        "pinpoint",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}),
    )


# Deliberately not what botocore's serializer would produce: spacing, key order, non-ASCII text.
BODY = (
    '{"BatchItem": {"end-é1": {"Endpoint": {}, "Events": {"ev-1": {"Timestamp": "2026-01-01T00:00:00.000Z",'
    ' "EventType": "purchase", "Attributes": {"city": "Zürich"}}, "ev-2": {"EventType": "view",'
    ' "Timestamp": "2026-01-01T00:00:01.000Z"}}}}}'
).encode()


def _error(status: int, code: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"Message": f"{code} for this test", "RequestID": "req-err"}).encode()
    return status, {"x-amzn-ErrorType": code, "x-amzn-RequestId": "req-err"}, body


def test_body_on_the_wire_is_byte_identical(server, client):
    RawPutEvents(client).send("app-1", BODY)

    method, path, headers, body = server.received[0]
    assert (method, path) == ("POST", "/v1/apps/app-1/events")
    assert body == BODY
    assert int(headers["Content-Length"]) == len(BODY)


def _signature_over_received_body(url: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, str]:
    """Recompute the SigV4 signature over what arrived, as the service would: (canonical request, signature)."""
    signed_names = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    signed = {name: value for name, value in headers.items() if name.lower() in signed_names}
    request = AWSRequest(method="POST", url=url + path, data=body, headers=signed)
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "mobiletargeting", "us-east-1")
    canonical = signer.canonical_request(request)
    return canonical, signer.signature(signer.string_to_sign(request, canonical), request)


def test_signature_covers_the_body_sent(server, client):
    RawPutEvents(client).send("app-1", BODY)

    _, path, headers, body = server.received[0]
    canonical, signature = _signature_over_received_body(server.url, path, headers, body)
    assert canonical.endswith(sha256(BODY).hexdigest())
    assert headers["Authorization"].endswith(f"Signature={signature}")


def test_results_request_id_and_status_are_returned(client):
    response = RawPutEvents(client).send("app-1", BODY)

    assert response.status_code == 202
    assert response.request_id == f"req-{len(BODY)}"
    assert response.results == {
        "end-é1": {
            "EndpointItemResponse": {"StatusCode": 202, "Message": "Accepted"},
            "EventsItemResponse": {
                "ev-1": {"StatusCode": 202, "Message": "Accepted"},
                "ev-2": {"StatusCode": 202, "Message": "Accepted"},
            },
        }
    }


def _emulator_client(emulator, max_attempts: int = 3):
    return boto3.client(
        "pinpoint",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": max_attempts}),
    )


def test_results_equal_what_botocores_parser_returns(emulator):
    client = _emulator_client(emulator)
    too_long_key = "k" * 60  # per-item 400 from the service, so the results mix outcomes
    batch = json.loads(BODY)["BatchItem"]
    batch["end-é1"]["Events"]["ev-3"] = {
        "EventType": "view",
        "Timestamp": "2026-01-01T00:00:02.000Z",
        "Attributes": {too_long_key: "x"},
    }
    body = json.dumps({"BatchItem": batch}).encode()

    raw = RawPutEvents(client).send("app-1", body)
    plain = client.put_events(ApplicationId="app-1", EventsRequest={"BatchItem": batch})

    assert raw.results == plain["EventsResponse"]["Results"]
    assert raw.results["end-é1"]["EventsItemResponse"]["ev-3"]["StatusCode"] == 400
    assert raw.request_id
    recorded = {entry["event_id"]: entry["event"] for entry in emulator.events("app-1")}
    assert recorded["ev-1"] == batch["end-é1"]["Events"]["ev-1"]


def test_request_errors_from_the_emulator_raise_the_plain_classes(emulator):
    client = _emulator_client(emulator, max_attempts=1)
    events = {f"ev-{n}": {"EventType": "view", "Timestamp": "2026-01-01T00:00:00.000Z"} for n in range(101)}
    batch = {"e1": {"Endpoint": {}, "Events": events}}
    body = json.dumps({"BatchItem": batch}).encode()
    raw = RawPutEvents(client)

    with pytest.raises(client.exceptions.BadRequestException):
        raw.send("app-1", body)
    emulator.configure(error_rate=1.0)
    with pytest.raises(client.exceptions.InternalServerErrorException):
        raw.send("app-1", BODY)
    assert emulator.events("app-1") == []


@pytest.mark.parametrize(
    ("status", "code"), [(400, "BadRequestException"), (403, "ForbiddenException"), (404, "NotFoundException")]
)
def test_errors_raise_what_plain_put_events_raises(server, client, status, code):
    server.answers = [_error(status, code), _error(status, code)]
    with pytest.raises(client.exceptions.ClientError) as plain:
        client.put_events(ApplicationId="app-1", EventsRequest={"BatchItem": {}})
    with pytest.raises(client.exceptions.ClientError) as raw:
        RawPutEvents(client).send("app-1", BODY)

    assert type(raw.value) is type(plain.value) is getattr(client.exceptions, code)
    assert raw.value.response["Error"] == plain.value.response["Error"]


def test_botocore_retries_resend_the_same_body_newly_signed(server, client):
    server.answers = [_error(500, "InternalServerErrorException")]

    response = RawPutEvents(client).send("app-1", BODY)

    assert response.status_code == 202
    assert [received[3] for received in server.received] == [BODY, BODY]
    for _, path, headers, body in server.received:
        _, signature = _signature_over_received_body(server.url, path, headers, body)
        assert headers["Authorization"].endswith(f"Signature={signature}")


def test_plain_put_events_on_the_same_client_is_untouched(server, client):
    RawPutEvents(client)
    batch = {"e1": {"Endpoint": {}, "Events": {"v1": {"EventType": "view", "Timestamp": "2026-01-01T00:00:00Z"}}}}

    response = client.put_events(ApplicationId="app-1", EventsRequest={"BatchItem": batch})

    assert json.loads(server.received[0][3]) == {"BatchItem": batch}
    assert response["EventsResponse"]["Results"]["e1"]["EventsItemResponse"]["v1"]["StatusCode"] == 202


def test_threads_sharing_a_client_each_get_their_own_body_and_answer(server, client):
    raw = RawPutEvents(client)
    bodies = [
        json.dumps({"BatchItem": {f"end-{n}": {"Endpoint": {}, "Events": {}}}}).encode() + b" " * n for n in range(16)
    ]
    answers: dict[int, dict] = {}

    def send(n: int) -> None:
        answers[n] = raw.send("app-1", bodies[n]).results

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(received[3] for received in server.received) == sorted(bodies)
    assert {n: list(results) for n, results in answers.items()} == {n: [f"end-{n}"] for n in range(len(bodies))}


def test_several_senders_on_one_client_each_get_the_results(client):
    first, second = RawPutEvents(client), RawPutEvents(client)

    assert list(first.send("app-1", BODY).results) == ["end-é1"]
    assert list(second.send("app-1", BODY).results) == ["end-é1"]


def _plain_client(url: str, user_agent_extra: str | None = None):
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(
            retries={"mode": "standard", "max_attempts": 3}, user_agent_extra=user_agent_extra
        ),
    )


@pytest.mark.parametrize("extra", [None, "my-dag/1.0"])
def test_the_user_agent_sent_is_the_one_botocore_builds_and_is_built_once_per_feature_set(server, extra, monkeypatch):
    from botocore.useragent import UserAgentString

    plain = _plain_client(server.url, extra)
    plain.put_events(ApplicationId="app-1", EventsRequest={"BatchItem": {}})
    expected = server.received[-1][2]["User-Agent"]

    builds = []
    build = UserAgentString.to_string
    monkeypatch.setattr(UserAgentString, "to_string", lambda self: builds.append(1) or build(self))
    raw = RawPutEvents(_plain_client(server.url, extra))
    for _ in range(3):
        raw.send("app-1", BODY)
    assert [headers["User-Agent"] for _, _, headers, _ in server.received[-3:]] == [expected] * 3
    assert (extra or "") in expected
    assert 1 <= len(builds) <= 2  # the header without, then with, the call's late features: once each

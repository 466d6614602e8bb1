"""The direct PutEvents path: the same bytes, signature, headers and errors as the client's own call.

Every comparison sends the same body both ways through one real boto3 client to a loopback server
that records what arrived, so the reference is what botocore itself puts on the wire.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from hashlib import sha256
from typing import Any

import boto3
import botocore.auth
import botocore.config
import botocore.exceptions
import botocore.session
import pytest
from botocore.credentials import CredentialProvider, RefreshableCredentials

from airflow_provider_pinpoint.sending.client import make_client
from airflow_provider_pinpoint.sinks.raw_body import RawPutEvents
from tests.sinks.test_raw_body import (
    ACCESS_KEY,
    BODY,
    SECRET_KEY,
    _error,
    _Recorder,
    _signature_over_received_body,
    served,
)

pytestmark = pytest.mark.usefixtures("only_botocores_handlers")

SINGLE_ATTEMPT = {"total_max_attempts": 1, "mode": "standard"}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def server() -> Iterator[_Recorder]:
    yield from served()


def _client(url: str, session: Any = None, **config: Any) -> Any:
    keys = {} if session is not None else {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
    return (session or boto3).client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        config=botocore.config.Config(retries=dict(SINGLE_ATTEMPT), **config),
        **keys,
    )


@pytest.fixture
def client(server: _Recorder) -> Any:
    return _client(server.url)


def test_a_single_attempt_client_is_sent_to_directly(server, client):
    raw = RawPutEvents(client)
    assert raw.direct
    raw.send("app-1", BODY)
    assert raw.direct
    method, path, headers, body = server.received[0]
    assert (method, path, body) == ("POST", "/v1/apps/app-1/events", BODY)
    canonical, signature = _signature_over_received_body(server.url, path, headers, body)
    assert canonical.endswith(sha256(BODY).hexdigest())
    assert headers["Authorization"].endswith(f"Signature={signature}")


def test_a_botocore_whose_prepared_request_takes_no_context_is_sent_to_directly(server, client, monkeypatch):
    # botocore before about 1.43.6x: AWSPreparedRequest(method, url, headers, body, stream_output) only.
    from airflow_provider_pinpoint.sinks import direct_send

    class FiveArguments(direct_send.AWSPreparedRequest):
        def __init__(self, method: str, url: str, headers: Any, body: Any, stream_output: bool) -> None:
            super().__init__(method, url, headers, body, stream_output)

    monkeypatch.setattr(direct_send, "AWSPreparedRequest", FiveArguments)
    raw = RawPutEvents(client)
    assert raw.direct
    assert raw.send("app-1", BODY).status_code == 202
    assert server.received[0][3] == BODY


def test_the_loaders_own_client_is_sent_to_directly(server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    raw = RawPutEvents(make_client(None, None, server.url, "us-east-1", 4))
    raw.send("app-1", BODY)
    assert raw.direct
    assert server.received[0][3] == BODY


def test_headers_are_those_botocore_sends_for_the_same_body_and_clock(server, client, monkeypatch):
    fixed = datetime.datetime(2026, 3, 4, 5, 6, 7)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: fixed)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-abc;Parent=def")
    RawPutEvents(client, direct=False).send("app-1", BODY)
    direct = RawPutEvents(client)
    direct.send("app-1", BODY)
    direct.send("app-1", BODY)
    assert direct.direct

    plain, first, second = (headers for _, _, headers, _ in server.received)
    invocation_ids = {h.pop("amz-sdk-invocation-id") for h in (plain, first, second)}
    assert len(invocation_ids) == 3 and all(_UUID.match(value) for value in invocation_ids)
    assert list(first.items()) == list(plain.items())
    assert list(second.items()) == list(plain.items())
    assert plain["X-Amz-Date"] == "20260304T050607Z"
    assert plain["X-Amzn-Trace-Id"]


def test_session_token_is_signed_like_botocore(server, monkeypatch):
    fixed = datetime.datetime(2026, 3, 4, 5, 6, 7)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: fixed)
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, aws_session_token="token  with spaces "
    )
    client = _client(server.url, session)
    RawPutEvents(client, direct=False).send("app-1", BODY)
    RawPutEvents(client).send("app-1", BODY)
    plain, direct = (headers for _, _, headers, _ in server.received)
    assert "x-amz-security-token" in plain["Authorization"]
    assert direct["Authorization"] == plain["Authorization"]
    assert direct["X-Amz-Security-Token"] == plain["X-Amz-Security-Token"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "BadRequestException"),
        (403, "ForbiddenException"),
        (404, "NotFoundException"),
        (413, "PayloadTooLargeException"),
        (429, "TooManyRequestsException"),
        (500, "InternalServerErrorException"),
        (502, "SomethingAProxySays"),
    ],
)
def test_errors_are_raised_as_botocore_raises_them(server, client, status, code):
    raised = []
    for raw in (RawPutEvents(client, direct=False), RawPutEvents(client)):
        server.answers.append(_error(status, code))
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            raw.send("app-1", BODY)
        raised.append(caught.value)
    plain, direct = raised
    assert type(direct) is type(plain)
    assert str(direct) == str(plain)
    for response in (plain.response, direct.response):
        response["ResponseMetadata"]["HTTPHeaders"].pop("date")
    assert direct.response == plain.response
    assert direct.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_a_closed_port_raises_what_botocore_raises():
    with _Recorder() as closed:
        url = closed.url  # bound then released: nothing listens there any more
    client = _client(url)
    raised = []
    for raw in (RawPutEvents(client, direct=False), RawPutEvents(client)):
        with pytest.raises(botocore.exceptions.EndpointConnectionError) as caught:
            raw.send("app-1", BODY)
        raised.append(caught.value)
    assert RawPutEvents(client).direct
    assert str(raised[1]) == str(raised[0])


class _Rotating(CredentialProvider):
    """Credentials that expire at once, so every use refreshes them to the next key."""

    METHOD = "rotating-test"

    def __init__(self) -> None:
        self.handed_out: list[str] = []

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(self._next(), self._next, self.METHOD)

    def _next(self) -> dict[str, str]:
        number = len(self.handed_out)
        self.handed_out.append(f"AKID{number}")
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
        return {
            "access_key": f"AKID{number}",
            "secret_key": f"{SECRET_KEY}-{number}",
            "token": f"token-{number}",
            "expiry_time": expiry.isoformat(),
        }


def test_credentials_are_refreshed_between_requests(server):
    provider = _Rotating()
    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before("env", provider)
    client = _client(server.url, boto3.session.Session(botocore_session=core))
    raw = RawPutEvents(client)
    for _ in range(3):
        raw.send("app-1", BODY)
    assert raw.direct
    keys = [headers["Authorization"].split("Credential=")[1].split("/")[0] for _, _, headers, _ in server.received]
    assert len(set(keys)) == 3
    assert set(keys) <= set(provider.handed_out)
    for (_, path, headers, body), key in zip(server.received, keys, strict=True):
        number = key.removeprefix("AKID")
        assert headers["X-Amz-Security-Token"] == f"token-{number}"
        signer = botocore.auth.SigV4Auth(
            botocore.credentials.Credentials(key, f"{SECRET_KEY}-{number}"), "mobiletargeting", "us-east-1"
        )
        request = botocore.awsrequest.AWSRequest(
            method="POST",
            url=server.url + path,
            data=body,
            headers={
                name: value
                for name, value in headers.items()
                if name.lower() in ("content-type", "host", "x-amz-date", "x-amz-security-token")
            },
        )
        request.context["timestamp"] = headers["X-Amz-Date"]
        canonical = signer.canonical_request(request)
        assert headers["Authorization"].endswith(
            f"Signature={signer.signature(signer.string_to_sign(request, canonical), request)}"
        )


def test_missing_credentials_raise_what_botocore_raises(server, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = _client(server.url, boto3.session.Session())
    with pytest.raises(botocore.exceptions.NoCredentialsError):
        RawPutEvents(client).send("app-1", BODY)
    assert server.received == []


def _add_header(request: Any, **_: Any) -> None:
    request.headers["X-Added-By-User"] = "yes"


@pytest.mark.parametrize("event", ["before-send", "request-created", "before-sign"])
def test_a_users_handler_keeps_the_clients_own_call_path(server, client, event):
    client.meta.events.register(f"{event}.pinpoint.PutEvents", _add_header)
    raw = RawPutEvents(client)
    raw.send("app-1", BODY)
    assert not raw.direct
    _, _, headers, body = server.received[0]
    assert headers["X-Added-By-User"] == "yes"
    assert body == BODY


def test_a_handler_registered_after_the_sender_is_seen_at_the_first_application(server, client):
    raw = RawPutEvents(client)
    client.meta.events.register(
        "before-call.pinpoint.PutEvents", lambda params, **_: params["headers"].update({"X-Added-By-User": "yes"})
    )
    raw.send("app-1", BODY)
    assert not raw.direct
    assert server.received[0][2]["X-Added-By-User"] == "yes"


def test_a_retrying_client_keeps_its_own_call_path(server):
    client = boto3.client(
        "pinpoint",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )
    server.answers.append(_error(500, "InternalServerErrorException"))
    raw = RawPutEvents(client)
    raw.send("app-1", BODY)
    assert not raw.direct
    assert len(server.received) == 2  # botocore retried the 500 itself


def test_each_application_gets_its_own_url(server, client):
    raw = RawPutEvents(client)
    raw.send("app-1", BODY)
    raw.send("app/2", BODY)
    raw.send("app-1", BODY)
    assert [path for _, path, _, _ in server.received] == [
        "/v1/apps/app-1/events",
        "/v1/apps/app%2F2/events",
        "/v1/apps/app-1/events",
    ]
    assert raw.direct
    for _, path, headers, body in server.received:
        _, signature = _signature_over_received_body(server.url, path, headers, body)
        assert headers["Authorization"].endswith(f"Signature={signature}")


def test_an_airflow_hooks_client_is_sent_to_directly_with_the_same_headers(server, aws_connection, monkeypatch):
    from airflow_provider_pinpoint.hooks.pinpoint import PinpointHook

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.datetime(2026, 3, 4, 5, 6, 7))
    client = PinpointHook(aws_conn_id=aws_connection(endpoint_url=server.url, region_name="us-east-1")).conn
    RawPutEvents(client, direct=False).send("app-1", BODY)
    raw = RawPutEvents(client)
    raw.send("app-1", BODY)
    assert raw.direct
    plain, direct = (headers for _, _, headers, _ in server.received)
    assert "Airflow/" in direct["User-Agent"]
    for headers in (plain, direct):
        headers.pop("amz-sdk-invocation-id")
    assert list(direct.items()) == list(plain.items())
    assert server.received[1][3] == BODY


@pytest.mark.parametrize("token", [None, "a  session token "])
def test_signed_headers_sorting_around_the_date_and_token_are_signed_like_botocore(monkeypatch, token):
    # botocore's own client signs none of these; a header that sorts before, between or after the
    # per-request ones must still land where SigV4Auth puts it in the canonical request.
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from airflow_provider_pinpoint.sinks import direct_send

    fixed = datetime.datetime(2026, 11, 22, 3, 4, 5)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: fixed)
    headers = {"Accept": "x", "Content-Type": "application/json", "X-Amz-Extra": "a  b", "X-Amz-Zeta": "z"}
    url = "https://pinpoint.us-east-1.amazonaws.com/v1/apps/app-1/events"
    probe = AWSRequest(method="POST", url=url, headers=dict(headers))
    probe.context = {}
    target = direct_send._target(probe, list(headers.items()), "mobiletargeting", "us-east-1", "v4")
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, token)
    signer = type("Signer", (), {"_credentials": credentials})()

    sent = dict(direct_send._signed_headers(signer, target, BODY))

    reference = AWSRequest(method="POST", url=url, headers=dict(headers), data=BODY)
    reference.context = {}
    botocore.auth.SigV4Auth(credentials, "mobiletargeting", "us-east-1").add_auth(reference)
    assert sent["Authorization"].decode() == reference.headers["Authorization"]
    assert sent["X-Amz-Date"].decode() == reference.headers["X-Amz-Date"] == "20261122T030405Z"
    assert ("X-Amz-Security-Token" in sent) == (token is not None)

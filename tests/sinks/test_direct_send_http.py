"""The direct path's own HTTP exchange over the client's connection pool, against a scripted loopback server.

The server reads each request as raw bytes and answers as the test scripts it: kept alive, closed
afterwards, cut off mid-answer, late, chunked, or with no length. What botocore's own HTTP session
does for the same script is the reference wherever it can be run (``direct_send`` falls back to it
when the exchange is off for a URL).
"""

from __future__ import annotations

import datetime
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.httpsession
import botocore.parsers
import pytest

from airflow_provider_pinpoint.sinks import http_exchange
from airflow_provider_pinpoint.sinks.raw_body import RawPutEvents
from tests.sinks.test_raw_body import ACCESS_KEY, BODY, SECRET_KEY, _error

pytestmark = pytest.mark.usefixtures("only_botocores_handlers")

SINGLE_ATTEMPT = {"total_max_attempts": 1, "mode": "standard"}
_RESULTS = json.dumps({"Results": {}}).encode()

# What the script does with one request: bytes to answer (None: none), then whether to close the connection.
Script = Callable[[int, bytes], tuple[bytes | None, bool]]


def ok(body: bytes = _RESULTS, extra: bytes = b"") -> bytes:
    """A kept-alive 202 with a Content-Length."""
    return (
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nx-amzn-RequestId: req-1\r\n"
        + extra
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class _Wire:
    """A loopback TCP server that records each request's raw bytes and the connection it came on."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self._tls = tls
        self.requests: list[tuple[int, bytes]] = []  # (connection number, raw request)
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        if self._tls is not None:
            return f"https://localhost:{self._listener.getsockname()[1]}"
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._listener.close()
        for conn in self._open:
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            self._answer(conn, number)
        except OSError:  # closed by close() at the end of the test
            pass

    def _answer(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                request = head + b"\r\n\r\n" + buffer[:length]
                buffer = buffer[length:]
                with self._lock:
                    self.requests.append((number, request))
                    index = len(self.requests) - 1
                answer, close = self.script(index, request)
                if answer:
                    conn.sendall(answer)
                if close:
                    return


@pytest.fixture
def wire() -> Iterator[Callable[[Script], _Wire]]:
    made: list[_Wire] = []

    def make(script: Script, tls: ssl.SSLContext | None = None) -> _Wire:
        made.append(_Wire(script, tls))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _client(url: str, verify: str | None = None, **config: Any) -> Any:
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        verify=verify,
        config=botocore.config.Config(retries=dict(SINGLE_ATTEMPT), **config),
    )


def _lean(raw: RawPutEvents) -> bool:
    """Whether ``raw`` sent through the lean exchange (rather than the HTTP session's send)."""
    exchanges = raw._direct._exchanges  # type: ignore[union-attr]
    return raw.direct and bool(exchanges) and all(exchange is not None for exchange in exchanges.values())


def _botocores(client: Any) -> RawPutEvents:
    """A direct sender that sends through the HTTP session's own ``send`` (the reference)."""
    raw = RawPutEvents(client)
    raw._direct._exchanges = _NoExchange()  # type: ignore[union-attr]
    return raw


class _NoExchange(dict[str, Any]):
    def get(self, key: str, default: Any = None) -> Any:
        return None


_VARYING = re.compile(rb"(?im)^(x-amz-date|authorization|amz-sdk-invocation-id): .*$")


def test_the_request_bytes_are_those_botocores_session_sends(wire):
    server = wire(lambda index, request: (ok(), False))
    client = _client(server.url)
    _botocores(client).send("app-1", BODY)
    lean = RawPutEvents(client)
    lean.send("app-1", BODY)
    assert _lean(lean)
    before, after = (request for _, request in server.requests)
    assert before.startswith(b"POST /v1/apps/app-1/events HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAccept-Encoding: identity\r\n" in before
    assert b"transfer-encoding" not in before.lower()
    assert before.endswith(b"\r\n\r\n" + BODY)
    assert _VARYING.sub(b"", after) == _VARYING.sub(b"", before)
    assert len(_VARYING.findall(after)) == len(_VARYING.findall(before)) == 3


def test_a_kept_alive_connection_is_reused(wire):
    server = wire(lambda index, request: (ok(), False))
    raw = RawPutEvents(_client(server.url))
    answers = [raw.send("app-1", BODY) for _ in range(4)]
    assert _lean(raw)
    assert [answer.status_code for answer in answers] == [202] * 4
    assert [answer.request_id for answer in answers] == ["req-1"] * 4
    assert server.connections == 1
    assert [number for number, _ in server.requests] == [1, 1, 1, 1]


def test_a_connection_the_server_closed_between_requests_is_replaced(wire):
    server = wire(lambda index, request: (ok(), index == 0))
    raw = RawPutEvents(_client(server.url))
    raw.send("app-1", BODY)
    time.sleep(0.2)  # let the close arrive, as it does between two requests of a real load
    assert raw.send("app-1", BODY).status_code == 202
    assert _lean(raw)
    assert [number for number, _ in server.requests] == [1, 2]


def test_connection_close_is_honoured(wire):
    answer = ok(extra=b"Connection: close\r\n")
    server = wire(lambda index, request: (answer, False))  # says close, leaves it to the client
    raw = RawPutEvents(_client(server.url))
    for _ in range(3):
        assert raw.send("app-1", BODY).status_code == 202
    assert _lean(raw)
    assert [number for number, _ in server.requests] == [1, 2, 3]


def test_an_answer_without_length_is_read_to_the_end(wire):
    answer = b"HTTP/1.1 202 Accepted\r\nx-amzn-RequestId: req-eof\r\n\r\n" + _RESULTS
    server = wire(lambda index, request: (answer, True))
    raw = RawPutEvents(_client(server.url))
    for _ in range(2):
        response = raw.send("app-1", BODY)
        assert (response.status_code, response.request_id) == (202, "req-eof")
    assert _lean(raw)
    assert server.connections == 2


def test_a_chunked_answer_is_read(wire):
    half = len(_RESULTS) // 2
    chunks = b"%x;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (
        half,
        _RESULTS[:half],
        len(_RESULTS) - half,
        _RESULTS[half:],
    )
    answer = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nX-Amzn-RequestId: req-c\r\n\r\n" + chunks
    server = wire(lambda index, request: (answer, False))
    client = _client(server.url)
    lean = RawPutEvents(client)
    for _ in range(2):
        answer_ = lean._direct.send(lean._direct.target("app-1", _probe_params("app-1")), BODY)  # type: ignore[union-attr]
        assert (answer_.status_code, answer_.body, answer_.request_id) == (202, _RESULTS, "req-c")
        assert answer_.headers["transfer-encoding"] == "chunked"
    assert _lean(lean)
    assert server.connections == 1


def _probe_params(application_id: str) -> dict[str, Any]:
    from airflow_provider_pinpoint.sinks import raw_body

    return {"ApplicationId": application_id, "EventsRequest": raw_body._PLACEHOLDER}


def _raised(raw: RawPutEvents) -> BaseException:
    with pytest.raises(botocore.exceptions.BotoCoreError) as caught:
        raw.send("app-1", BODY)
    return caught.value


def test_a_server_closing_without_answering_raises_connection_closed_as_botocore(wire):
    server = wire(lambda index, request: (None, True))
    client = _client(server.url)
    lean, plain = RawPutEvents(client), _botocores(client)
    reference, raised = _raised(plain), _raised(lean)
    assert _lean(lean)
    assert type(reference) is type(raised) is botocore.exceptions.ConnectionClosedError
    assert raised.kwargs["endpoint_url"] == reference.kwargs["endpoint_url"]  # type: ignore[attr-defined]
    assert "Authorization" not in str(raised) and SECRET_KEY not in repr(raised)


def test_a_server_closing_mid_answer_raises_connection_closed(wire):
    cut = ok()[:-5]
    server = wire(lambda index, request: (cut, True))
    client = _client(server.url)
    lean, plain = RawPutEvents(client), _botocores(client)
    raised = _raised(lean)
    assert _lean(lean)
    assert type(raised) is botocore.exceptions.ConnectionClosedError
    # botocore's session reads a short body as if whole (urllib3 is told not to enforce Content-Length),
    # so the same cut answer fails there only when the truncated JSON is parsed.
    with pytest.raises(botocore.parsers.ResponseParserError):
        plain.send("app-1", BODY)


def test_a_late_answer_raises_read_timeout_as_botocore(wire):
    def late(index: int, request: bytes) -> tuple[bytes | None, bool]:
        time.sleep(1.5)
        return None, True

    server = wire(late)
    client = _client(server.url, read_timeout=0.3)
    lean, plain = RawPutEvents(client), _botocores(client)
    reference, raised = _raised(plain), _raised(lean)
    assert _lean(lean)
    assert type(reference) is type(raised) is botocore.exceptions.ReadTimeoutError
    assert str(raised) == str(reference)


def test_a_refused_connection_raises_endpoint_connection_error_as_botocore():
    with socket.create_server(("127.0.0.1", 0)) as bound:
        url = f"http://127.0.0.1:{bound.getsockname()[1]}"  # bound then released: nothing listens there
    client = _client(url)
    lean, plain = RawPutEvents(client), _botocores(client)
    reference, raised = _raised(plain), _raised(lean)
    assert _lean(lean)
    assert type(reference) is type(raised) is botocore.exceptions.EndpointConnectionError
    assert str(raised) == str(reference)


@pytest.mark.parametrize(("status", "code"), [(400, "BadRequestException"), (503, "ServiceUnavailable")])
def test_errors_over_the_exchange_are_those_of_a_plain_call(wire, status, code):
    status_, headers, body = _error(status, code)

    def answer(index: int, request: bytes) -> tuple[bytes | None, bool]:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return (
            f"HTTP/1.1 {status_} Whatever\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body,
            False,
        )

    server = wire(answer)
    client = _client(server.url)
    raised = []
    for call in (
        lambda: client.put_events(ApplicationId="app-1", EventsRequest={"BatchItem": {}}),
        lambda: RawPutEvents(client).send("app-1", BODY),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            call()
        raised.append(caught.value)
    plain, direct = raised
    assert type(direct) is type(plain)
    assert str(direct) == str(plain)
    assert direct.response == plain.response
    assert server.connections == 1  # an error answer leaves the connection usable


def test_a_session_of_another_type_is_sent_through_its_own_send(wire):
    class Session(botocore.httpsession.URLLib3Session):
        sent = 0

        def send(self, request: Any) -> Any:
            Session.sent += 1
            return super().send(request)

    server = wire(lambda index, request: (ok(), False))
    client = _client(server.url)
    client._endpoint.http_session = Session()
    raw = RawPutEvents(client)
    raw.send("app-1", BODY)
    raw.send("app-1", BODY)
    assert raw.direct and not _lean(raw)
    assert Session.sent == 2


def test_a_proxy_for_a_plain_http_url_is_sent_through_the_sessions_send(wire, caplog):
    server = wire(lambda index, request: (ok(), False))  # stands for the proxy
    client = _client("http://pinpoint.example.test", proxies={"http": server.url})
    raw = RawPutEvents(client)
    with caplog.at_level("DEBUG", logger=http_exchange.__name__):
        assert raw.send("app-1", BODY).status_code == 202
    assert raw.direct and not _lean(raw)
    assert server.requests[0][1].startswith(b"POST http://pinpoint.example.test/v1/apps/app-1/events HTTP/1.1\r\n")
    assert "absolute-form" in caplog.text
    assert "example" not in caplog.text


def test_internals_laid_out_otherwise_keep_the_sessions_send(wire, monkeypatch, caplog):
    import urllib3.connectionpool

    monkeypatch.delattr(urllib3.connectionpool, "_wrap_proxy_error")  # used by urlopen on errors only
    server = wire(lambda index, request: (ok(), False))
    raw = RawPutEvents(_client(server.url))
    with caplog.at_level("DEBUG", logger=http_exchange.__name__):
        assert raw.send("app-1", BODY).status_code == 202
    assert raw.direct and not _lean(raw)
    assert "internals differ (AttributeError)" in caplog.text


@pytest.mark.parametrize("fault", [{"drop_rate": 0.2}, {"lost_response_rate": 0.2}])
def test_the_loader_loses_no_row_when_connections_are_closed_on_the_exchange(emulator, tmp_path, monkeypatch, fault):
    from airflow_provider_pinpoint import load_events
    from tests.helpers.items import APP, emulator_client
    from tests.test_load import ENDPOINTS, EVENTS, INPUT_ROWS

    exchanged: list[int] = []
    post = http_exchange.PoolExchange.post

    def counted(self: http_exchange.PoolExchange, headers: Any, body: bytes) -> Any:
        exchanged.append(len(body))
        return post(self, headers, body)

    monkeypatch.setattr(http_exchange.PoolExchange, "post", counted)
    emulator.configure(seed=7, **fault)
    report = load_events(
        EVENTS,
        ENDPOINTS,
        application_id=APP,
        results=str(tmp_path / "results.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
        max_attempts=12,
        requests_per_second=40,
    )
    assert exchanged  # the loader's requests went over the exchange
    assert report.summary.failed == 0 and report.summary.retries > 0
    assert len(report.results) == INPUT_ROWS
    assert report.results["status"].isin(["accepted", "rejected"]).all()
    accepted = report.results[(report.results["status"] == "accepted") & (report.results["record_type"] == "event")]
    received = {(e["endpoint_id"], e["event_id"]) for e in emulator.events(APP)}
    assert set(zip(accepted["endpoint_id"], accepted["event_id"], strict=True)) == received


def _self_signed(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for ``localhost`` and the path of its certificate (the client's CA bundle)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)


def test_tls_goes_over_the_exchange_with_the_sessions_verification(wire, tmp_path):
    context, ca_bundle = _self_signed(tmp_path)
    server = wire(lambda index, request: (ok(), False), context)
    trusting = RawPutEvents(_client(server.url, ca_bundle))
    assert trusting.send("app-1", BODY).status_code == 202
    _botocores(_client(server.url, ca_bundle)).send("app-1", BODY)
    assert trusting.send("app-1", BODY).status_code == 202
    assert _lean(trusting)
    (first, lean), (_, before), (second, _) = server.requests
    assert first == second  # the kept-alive TLS connection was reused
    assert before.startswith(b"POST /v1/apps/app-1/events HTTP/1.1\r\nHost: localhost:")
    assert _VARYING.sub(b"", lean) == _VARYING.sub(b"", before)

    distrusting = RawPutEvents(_client(server.url))  # the system's CAs: this certificate is not trusted
    reference = _raised(_botocores(_client(server.url)))
    raised = _raised(distrusting)
    assert _lean(distrusting)
    assert type(reference) is type(raised) is botocore.exceptions.SSLError


def test_a_line_break_inside_a_header_is_refused_as_botocore_refuses_it(wire):
    server = wire(lambda index, request: (ok(), False))
    client = _client(server.url, user_agent_extra="extra\r\nX-Injected: yes")
    lean, plain = RawPutEvents(client), _botocores(client)
    reference, raised = _raised(plain), _raised(lean)
    assert _lean(lean)
    assert type(reference) is type(raised) is botocore.exceptions.HTTPClientError
    assert "X-Injected" not in str(raised)
    assert server.requests == []


def test_an_answer_with_bare_lf_line_ends_is_read_as_http_client_reads_it(wire):
    answer = b"HTTP/1.1 202 Accepted\nx-amzn-RequestId: req-lf\nContent-Length: %d\n\n%s" % (len(_RESULTS), _RESULTS)
    chunked = b"HTTP/1.1 202 Accepted\nTransfer-Encoding: chunked\n\n%x\n%s\n0\n\n" % (len(_RESULTS), _RESULTS)
    server = wire(lambda index, request: ((answer, chunked)[index % 2], False))
    client = _client(server.url, read_timeout=2)
    lean, plain = RawPutEvents(client), _botocores(client)
    for raw in (plain, lean, lean, lean):  # botocore only on the first, Content-Length, answer
        assert raw.send("app-1", BODY).status_code == 202
    assert _lean(lean)
    assert server.connections == 1  # each answer read whole, the connection kept


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n" + ok(),  # a status below 100 is not an interim answer
        ok(extra=b"Content-Length: 5\r\n"),  # two Content-Lengths that disagree
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n0\r\n\r\n",  # a chunk size not hex
    ],
    ids=["status 099", "disagreeing lengths", "negative chunk size"],
)
def test_a_malformed_answer_is_a_retryable_transport_failure_not_a_success(wire, answer):
    server = wire(lambda index, request: (answer, True))
    raw = RawPutEvents(_client(server.url, read_timeout=2))
    raised = _raised(raw)
    assert _lean(raw)
    assert type(raised) is botocore.exceptions.ConnectionClosedError


def test_a_content_length_that_is_not_a_number_reads_to_the_end_as_http_client(wire):
    answer = b"HTTP/1.1 202 Accepted\r\nContent-Length: many\r\n\r\n" + _RESULTS
    server = wire(lambda index, request: (answer, True))
    client = _client(server.url, read_timeout=2)
    lean, plain = RawPutEvents(client), _botocores(client)
    assert lean.send("app-1", BODY).status_code == plain.send("app-1", BODY).status_code == 202
    assert _lean(lean)


_N = len(_RESULTS)


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        (b"HTTP/1.1 202 Accepted\r\nContent-Length: +%d\r\n\r\n%s" % (_N, _RESULTS), True),
        (b"HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\nContent-Length: 0%d\r\n\r\n%s" % (_N, _N, _RESULTS), True),
        (b"HTTP/1.1 0202 Accepted\r\nContent-Length: %d\r\n\r\n%s" % (_N, _RESULTS), True),
        (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n0x%x\r\n%s\r\n0\r\n\r\n" % (_N, _RESULTS), True),
        (
            b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
            b"%x\r\n%s\r\n0\r\n\r\n" % (_N, _RESULTS),
            True,
        ),
        (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n" % (_N, _RESULTS), False),
    ],
    ids=["length +N", "lengths 15 and 015", "status 0202", "chunk size 0x", "chunked with lengths", "chunked cut at 0"],
)
def test_answers_http_client_takes_are_taken_alike(wire, answer, kept):
    # What botocore's session accepts, the exchange accepts: same status and body; the connection is
    # kept unless the server closed it where the answer may end.
    server = wire(lambda index, request: (answer, not kept))
    client = _client(server.url, read_timeout=2)
    lean, plain = RawPutEvents(client), _botocores(client)
    assert plain.send("app-1", BODY).status_code == 202
    for _ in range(2):
        assert lean.send("app-1", BODY).status_code == 202
    assert _lean(lean)
    assert server.connections == (1 if kept else 3)

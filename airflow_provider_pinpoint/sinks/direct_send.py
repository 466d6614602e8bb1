"""Send a pre-built JSON body for one operation through a boto3 client's own signer and HTTP session,
without running botocore's per-call machinery for every request.

Why: with the body already serialised (see :mod:`.raw_body`), what a request still costs the client
is botocore's generic call path: a dozen event emits, endpoint ruleset resolution, building the
request dict and the ``AWSRequest``, the ``User-Agent`` and the response parser. For a given client,
operation and URL all of that comes out the same on every call, except the signature, the
invocation id and the body. :class:`DirectSender` works it out once, with one real call of the
client (the *probe*), and then per request only signs the body, sends it and reads the answer.
The SigV4 signature is computed here, over the headers botocore would sign, because botocore's
``SigV4Auth`` walks generic request objects that cost more than the rest of the request; the tests
check it against ``SigV4Auth`` for the same request and clock.

What stays the client's: the credentials (those of ``client._request_signer``: a refreshable
credential is asked for its current value on every request, as botocore asks it), the region and signing name botocore resolved for
the operation, the endpoint URL its ruleset resolved, the HTTP session (``client._endpoint.http_session``:
TLS verification, proxies, timeouts, connection pool), the ``User-Agent`` and every header botocore
adds. Answers other than 2xx go through the client's own response parser and error factory, so they
raise the very ``ClientError`` subclass, code, message and metadata a plain call raises; transport
failures (``EndpointConnectionError``, ``ReadTimeoutError``, ``ConnectionClosedError``...) are the
exceptions the HTTP session raises for them. The request itself goes over the HTTP session's own
connection pool through :mod:`.http_exchange`, which skips urllib3's generic request and answer
handling; where that exchange cannot reproduce the session exactly it says why at DEBUG and the
session's ``send`` is used.

The probe: the real client method is called once per *target* (for PutEvents, per application id,
which is part of the URL) with a placeholder request. Two handlers of this module, active only for
that call in that thread, copy what botocore built: the request's URL, context and headers right
before signing (``before-sign``), and the headers it went out with (``before-send``), where the
call is stopped before anything is sent. Per request the headers botocore adds after signing are
set again the way it sets them: a fresh ``amz-sdk-invocation-id``, and ``X-Amzn-Trace-Id`` from the
environment (botocore's own function).

When the client is not sent to directly (:attr:`DirectSender.refusal` says why, and the caller
keeps using the client's method): any handler registered on this operation's events that is not
one botocore installs on every client (a user's or a library's, e.g. a Stubber, moto's in-process
mock, adaptive retry mode, a signer override): skipping it could change what is sent; a client that
retries itself (more than one attempt per call: the direct path makes exactly one); a signature
other than SigV4 or credentials chosen per request; a body checksum or compression in the
operation's model; or botocore internals this module relies on that are missing or of another
type. The handlers are checked when the sender is made and again at every probe; a handler
registered on the client in between is not seen.

What botocore would do per call and is left out: its debug log lines and history recorder events,
the retry-quota bookkeeping of a single-attempt client (the quota is only ever drawn by a retry),
and the events of the call, which only botocore's own handlers listen to (checked above).
"""

from __future__ import annotations

import hmac
import logging
import threading
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from hashlib import sha256
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.auth
from botocore.auth import EMPTY_SHA256_HASH, SIGNED_HEADERS_BLACKLIST
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HeadersDict
from botocore.endpoint import convert_to_response_dict
from botocore.exceptions import NoCredentialsError
from botocore.handlers import add_recursion_detection_header
from botocore.utils import normalize_url_path

from airflow_provider_pinpoint.sinks.http_exchange import pool_exchange

log = logging.getLogger(__name__)

_SIGNATURE_VERSION = "v4"
# Set by SigV4 itself, or derived from the body when the request is prepared: never copied from the probe.
_DERIVED_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "content-length"})
# Set per request, after signing, the way botocore sets them.
_INVOCATION_ID = "amz-sdk-invocation-id"
# Headers SigV4 sets or reads itself: a request that already has one is not reproduced here.
_SIGNING_INPUTS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "date", "x-amz-content-sha256"})
_UNSIGNED = frozenset(SIGNED_HEADERS_BLACKLIST)
_TRACE_ID = "x-amzn-trace-id"
# Every event botocore emits for one call of an operation on a client.
_CALL_EVENTS = (
    "provide-client-params",
    "before-parameter-build",
    "before-endpoint-resolution",
    "before-call",
    "request-created",
    "choose-signer",
    "before-sign",
    "before-send",
    "response-received",
    "needs-retry",
    "before-parse",
    "after-call",
    "after-call-error",
)

_probing = threading.local()
_UNSET: Any = object()


class _Probed(Exception):
    """Stops the probe call right before it would be sent."""


@dataclass(frozen=True, slots=True)
class Target:
    """What every request to one URL of the operation shares, as botocore built it for the probe."""

    url: str
    context: dict[str, Any]
    early_headers: tuple[tuple[str, bytes], ...]  # present when botocore signs, User-Agent as finally sent
    late_headers: tuple[tuple[str, bytes], ...]  # added by botocore after signing
    signed: tuple[tuple[str, str], ...]  # (lower-case name, canonical value) of the early headers SigV4 signs
    canonical_path: str
    scope_tail: str  # region/service/aws4_request
    # The canonical request around its per-request values, without and with a session token (see _layout).
    plain: tuple[tuple[str, ...], str]
    with_token: tuple[tuple[str, ...], str]
    invocation_at: int  # where amz-sdk-invocation-id is in late_headers; -1: not there
    length_at: int  # where Content-Length is in early_headers; -1: appended last


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer botocore returns rather than raises (2xx): status, headers (case-insensitive), raw body."""

    status_code: int
    headers: Any
    body: bytes

    @property
    def request_id(self) -> str | None:
        """The request id as botocore's JSON parsers read it."""
        headers = self.headers
        return headers.get("x-amzn-requestid") or headers.get("x-amz-request-id")


class DirectSender:
    """Sends pre-built bodies for ``operation`` straight through ``client``'s signer and HTTP session.

    Check :attr:`refusal` first: when it is not None the client must be called the ordinary way.
    Thread-safe: targets are probed once (a race probes twice, harmlessly) and requests share nothing.
    """

    def __init__(self, client: Any, operation: str, own_handlers: Collection[Callable[..., Any]] = ()) -> None:
        self._client = client
        # The caller's handlers on this operation (they must act only inside the caller's own calls).
        self._own_handlers = set(own_handlers)
        self._operation = operation
        self._targets: dict[Any, Target] = {}
        # Per URL: the lean exchange over the HTTP session's pool, or None to use the session's send.
        self._exchanges: dict[str, Any] = {}
        self.refusal: str | None = self._checked_refusal()
        if self.refusal is None:
            service_id = client.meta.service_model.service_id.hyphenize()
            events = client.meta.events
            events.register(f"before-sign.{service_id}.{operation}", _capture_unsigned, unique_id=f"{__name__}.sign")
            events.register(f"before-send.{service_id}.{operation}", _capture_sent, unique_id=f"{__name__}.send")
        else:
            log.debug("%s goes through the client's own call path: %s", operation, self.refusal)

    def _checked_refusal(self) -> str | None:
        try:
            return self._refusal()
        except Exception as exc:  # a botocore laid out otherwise: stay on the ordinary path
            return f"botocore internals differ ({type(exc).__name__})"

    def _refusal(self) -> str | None:
        import botocore.auth
        import botocore.endpoint
        import botocore.handlers
        import botocore.retries.standard
        import botocore.signers
        import botocore.useragent

        client = self._client
        model = client.meta.service_model.operation_model(self._operation)
        if model.http_checksum or model.request_compression:
            return "the operation's model computes a body checksum or compresses the body"
        if model.has_streaming_input or model.has_streaming_output or model.has_event_stream_output:
            return "the operation streams"
        retries = client.meta.config.retries or {}
        if retries.get("total_max_attempts") != 1:
            return "the client retries requests itself"
        if type(client._endpoint) is not botocore.endpoint.Endpoint:
            return "the client's endpoint is not botocore's"
        if botocore.auth.AUTH_TYPE_MAPS.get(_SIGNATURE_VERSION) is not botocore.auth.SigV4Auth:
            return "SigV4 is not botocore's"
        if type(client._request_signer) is not botocore.signers.RequestSigner:
            return "the client's request signer is not botocore's"
        for attribute in (
            "http_session",
            "prepare_request",
            "_response_parser_factory",
            "_add_modeled_error_fields",
            "_needs_retry",
        ):
            getattr(client._endpoint, attribute)
        known = {
            botocore.handlers.generate_idempotent_uuid,
            botocore.handlers._handle_request_validation_mode_member,
            botocore.handlers.add_recursion_detection_header,
            botocore.handlers.inject_api_version_header_if_needed,
            botocore.handlers.add_retry_headers,
            botocore.handlers.set_operation_specific_signer,
            botocore.handlers._set_auth_scheme_preference_signer,
            _capture_unsigned,
            _capture_sent,
        }
        known_methods = {
            botocore.signers.RequestSigner.handler: client._request_signer,
            botocore.useragent.UserAgentString.rebuild_and_replace_user_agent_handler: client._user_agent_creator,
            botocore.retries.standard.RetryHandler.needs_retry: None,
            botocore.retries.standard.RetryQuotaChecker.release_retry_quota: None,
        }
        known |= self._own_handlers
        emitter = client.meta.events
        emitter = getattr(emitter, "_emitter", emitter)  # boto3/botocore wrap the emitter in an alias layer
        service_id = client.meta.service_model.service_id.hyphenize()
        for event in _CALL_EVENTS:
            for handler in emitter._handlers.prefix_search(f"{event}.{service_id}.{self._operation}"):
                function = getattr(handler, "__func__", None)
                if handler in known:
                    continue
                if function in known_methods and known_methods[function] in (None, handler.__self__):
                    continue
                name = getattr(handler, "__qualname__", type(handler).__name__)
                return f"a handler the client does not have by default is registered on {event!r} ({name})"
        return None

    def target(self, key: Any, params: dict[str, Any]) -> Target | None:
        """The shared parts of requests to ``key``, probed by calling the client's method with ``params``
        (a placeholder request) the first time; None when the client must be called the ordinary way
        (:attr:`refusal` then says why). Raises what that call raises (no credentials...)."""
        target = self._targets.get(key)
        if target is None and self.refusal is None:
            refusal = self._checked_refusal()
            if refusal is None:
                try:
                    target = self._probe(params)
                except _Refused as exc:
                    refusal = str(exc)
            if target is None:
                self.refusal = refusal
                log.debug("%s goes through the client's own call path: %s", self._operation, refusal)
            else:
                self._targets[key] = target
        return target

    def _probe(self, params: dict[str, Any]) -> Target:
        from botocore import xform_name

        probe = _probing.probe = _Probe()
        try:
            getattr(self._client, xform_name(self._operation))(**params)
        except _Probed:
            pass
        finally:
            _probing.probe = None
        if probe.sent_headers is None or probe.unsigned is None:
            raise _Refused("the client's call did not reach the point of sending")
        request, signing_name, region_name, signature_version = probe.unsigned
        return _target(request, probe.sent_headers, signing_name, region_name, signature_version)

    def send(self, target: Target, body: bytes) -> Answer:
        """POST ``body`` to ``target`` once: the 2xx answer, or the exception botocore raises for it."""
        client = self._client
        headers = _signed_headers(client._request_signer, target, body)
        session = client._endpoint.http_session
        exchange = self._exchanges.get(target.url, _UNSET)
        if exchange is _UNSET or (exchange is not None and exchange.session is not session):
            exchange = self._exchanges[target.url] = pool_exchange(session, target.url, target.context)
        if exchange is not None:
            status, answer_headers, answer_body = exchange.post(headers, body)
            if status < 300:
                return Answer(status, answer_headers, answer_body)
            response: Any = AWSResponse(target.url, status, answer_headers.as_urllib3(), _Raw(answer_body))
            raise self._error(self._request(target, headers, body), response)
        request = self._request(target, headers, body)
        response = session.send(request)
        status = response.status_code
        if status < 300:  # what botocore's call returns rather than raises
            return Answer(status, response.headers, response.content)
        raise self._error(request, response)

    @staticmethod
    def _request(target: Target, headers: list[tuple[str, bytes]], body: bytes) -> Any:
        """The request as botocore's HTTP session takes it."""
        request = AWSPreparedRequest("POST", target.url, HeadersDict(headers), body, False)
        # Set, not passed: the constructor takes the context only from botocore 1.43.6x or so on.
        request.context = dict(target.context)
        return request

    def _error(self, request: Any, response: Any) -> Exception:
        """The exception botocore's call raises for the non-2xx ``response``, parsed by the client's parser."""
        client = self._client
        endpoint = client._endpoint
        model = client.meta.service_model.operation_model(self._operation)
        response_dict = convert_to_response_dict(response, model)
        parser = endpoint._response_parser_factory.create_parser(model.service_model.resolved_protocol)
        parsed = parser.parse(response_dict, model.output_shape)
        endpoint._add_modeled_error_fields(response_dict, parsed, model, parser)
        context = dict(request.context, retries={"attempt": 1})
        # The retry handler of a single-attempt client only adds its metadata (MaxAttemptsReached) here.
        endpoint._needs_retry(1, model, {"context": context}, (response, parsed), None)
        if "ResponseMetadata" in parsed:
            parsed["ResponseMetadata"]["RetryAttempts"] = 0
        code = parsed.get("Error", {}).get("Code")
        error: Exception = client.exceptions.from_code(code)(parsed, self._operation)
        return error


class _Refused(Exception):
    """The probe found the operation signed otherwise than this module can reproduce."""


class _Probe:
    __slots__ = ("sent_headers", "unsigned")

    def __init__(self) -> None:
        self.unsigned: tuple[Any, str, str, str] | None = None
        self.sent_headers: list[tuple[str, str]] | None = None


def _capture_unsigned(request: Any, signing_name: str, region_name: str, signature_version: str, **_: Any) -> None:
    probe = getattr(_probing, "probe", None)
    if probe is not None:
        from botocore.awsrequest import AWSRequest

        copy = AWSRequest(method=request.method, url=request.url, headers=dict(request.headers.items()))
        copy.context = dict(request.context)
        probe.unsigned = (copy, signing_name, region_name, signature_version)


def _capture_sent(request: Any, **_: Any) -> None:
    probe = getattr(_probing, "probe", None)
    if probe is not None:
        probe.sent_headers = [
            (name, value.decode("utf-8") if isinstance(value, bytes) else value)
            for name, value in request.headers.items()
        ]
        raise _Probed


def _target(
    request: Any, sent_headers: list[tuple[str, str]], signing_name: str, region_name: str, signature_version: str
) -> Target:
    """What the probe's request tells about every request to its URL; refuses what cannot be reproduced."""
    context = {key: value for key, value in request.context.items() if key not in ("retries", "timestamp")}
    signing = context.get("signing") or {}
    if signature_version != _SIGNATURE_VERSION or signing.get("request_credentials") or "identity_cache" in signing:
        raise _Refused(f"the client signs this operation with {signature_version!r}, not plain SigV4")
    if context.get("checksum") or not context.get("payload_signing_enabled", True):
        raise _Refused("the client does not sign this operation's body with SigV4's plain SHA-256")
    if urlsplit(request.url).query:
        raise _Refused("the operation's URL has a query string")
    early = [(name, value) for name, value in request.headers.items() if name.lower() != _TRACE_ID]
    names = {name.lower() for name, _ in early}
    if len(names) != len(early) or names & _SIGNING_INPUTS:
        raise _Refused("the request has headers SigV4 would combine or replace")
    final = {name.lower(): value for name, value in sent_headers}
    # botocore rebuilds the User-Agent after signing (it is not signed): its final text goes out.
    early = [(name, final.get(name.lower(), value)) for name, value in early]
    late = [
        (name, value)
        for name, value in sent_headers
        if name.lower() not in names and name.lower() not in _DERIVED_HEADERS and name.lower() != _TRACE_ID
    ]
    signed = {name.lower(): " ".join(value.split()) for name, value in early if name.lower() not in _UNSIGNED}
    host_from_url = getattr(botocore.auth, "_host_from_url", None)  # botocore's private helper: refuse without it
    if host_from_url is None:
        raise _Refused("botocore internals differ (no _host_from_url)")
    signed.setdefault("host", host_from_url(request.url))
    region = signing.get("region") or region_name
    service = signing.get("signing_name") or signing_name
    canonical_path = quote(normalize_url_path(urlsplit(request.url).path), safe="/~")
    signed_items = tuple(sorted(signed.items()))
    late_names = [name.lower() for name, _ in late]
    early_names = [name.lower() for name, _ in early]
    return Target(
        url=request.url,
        context=context,
        early_headers=tuple((name, value.encode()) for name, value in early),
        late_headers=tuple((name, value.encode()) for name, value in late),
        signed=signed_items,
        canonical_path=canonical_path,
        scope_tail=f"{region}/{service}/aws4_request",
        plain=_layout(canonical_path, signed_items, ("x-amz-date",)),
        with_token=_layout(canonical_path, signed_items, ("x-amz-date", "x-amz-security-token")),
        invocation_at=late_names.index(_INVOCATION_ID) if _INVOCATION_ID in late_names else -1,
        length_at=early_names.index("content-length") if "content-length" in early_names else -1,
    )


def _layout(
    canonical_path: str, signed: tuple[tuple[str, str], ...], dynamic: tuple[str, ...]
) -> tuple[tuple[str, ...], str]:
    """The canonical request of every request to a target, cut where the values of the ``dynamic``
    headers go (in the order SigV4 sorts them), up to the payload hash; and the signed header names.

    SigV4's canonical request is the method, the path, an empty query, one ``name:value`` line per
    signed header sorted by name, the names joined by ``;`` and the payload's hash. Only the date,
    the session token and the hash change from one request to the next: the rest is joined once
    here, and per request the parts and the values are joined in turn (``_signed_headers``).
    """
    rows = sorted([*signed, *((name, None) for name in dynamic)], key=lambda row: row[0])
    names = ";".join(name for name, _ in rows)
    parts: list[str] = []
    current = f"POST\n{canonical_path}\n\n"
    for name, value in rows:
        if value is None:
            parts.append(f"{current}{name}:")
            current = "\n"
        else:
            current += f"{name}:{value}\n"
    parts.append(f"{current}\n{names}\n")
    return tuple(parts), names


def _signed_headers(signer: Any, target: Target, body: bytes) -> list[tuple[str, bytes]]:
    """The headers botocore sends ``body`` with: its own, SigV4's (over the current credentials), its late ones.

    SigV4 as ``botocore.auth.SigV4Auth.add_auth`` computes it for these headers (the tests compare
    both for the same clock), without building the generic request objects it walks; what is the
    same for every request to the target (the canonical request around the date, token and payload
    hash) was laid out once, by :func:`_layout`.
    """
    credentials = signer._credentials
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    if frozen is None:
        raise NoCredentialsError()
    stamp = _timestamp(botocore.auth.get_current_datetime())
    headers = list(target.early_headers)
    trace: dict[str, str] = {}
    add_recursion_detection_header({"headers": trace})
    if trace:
        headers += [(name, value.encode()) for name, value in trace.items()]
    headers.append(("X-Amz-Date", stamp.encode()))
    payload_hash = sha256(body).hexdigest() if body else EMPTY_SHA256_HASH
    token = frozen.token
    if token:
        headers.append(("X-Amz-Security-Token", token.encode()))
        (before, between, after), names = target.with_token
        canonical = f"{before}{stamp}{between}{' '.join(token.split())}{after}{payload_hash}"
    else:
        (before, after), names = target.plain
        canonical = f"{before}{stamp}{after}{payload_hash}"
    scope = f"{stamp[:8]}/{target.scope_tail}"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(_signing_key(frozen.secret_key, scope), to_sign.encode(), sha256).hexdigest()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    headers.append(("Authorization", authorization.encode()))
    headers += target.late_headers
    if target.invocation_at >= 0:
        at = len(headers) - len(target.late_headers) + target.invocation_at
        headers[at] = (headers[at][0], str(uuid.uuid4()).encode())
    # Where botocore's header dict would put it: in place of one the probe copied, else last.
    length = str(len(body)).encode()
    if target.length_at >= 0:
        headers[target.length_at] = (headers[target.length_at][0], length)
    else:
        headers.append(("Content-Length", length))
    return headers


def _timestamp(now: Any) -> str:
    """``now`` as SigV4's ``X-Amz-Date`` (``SIGV4_TIMESTAMP``), formatted without ``strftime``'s locale work."""
    return f"{now.year:04d}{now.month:02d}{now.day:02d}T{now.hour:02d}{now.minute:02d}{now.second:02d}Z"


class _Raw:
    """An answer body already read, as botocore's ``AWSResponse`` reads its raw stream."""

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self) -> Any:
        yield self._body


# (secret key, scope) -> SigV4 signing key; the last one is kept, it changes once a day per credentials.
_last_key: tuple[str, str, bytes] = ("", "", b"")


def _signing_key(secret: str, scope: str) -> bytes:
    global _last_key
    last = _last_key
    if last[0] == secret and last[1] == scope:
        return last[2]
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), sha256).digest()
    _last_key = (secret, scope, key)
    return key

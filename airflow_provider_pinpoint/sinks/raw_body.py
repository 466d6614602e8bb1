"""PutEvents with a body that is already JSON, through the user's own boto3 client.

Why: the loader serialises every item exactly once, when it reshapes the row (see
``prepare/requests.py``). Handing ``client.put_events`` a ``BatchItem`` dict would make botocore
walk the whole request again with its generic, model-driven serializer, and walk the response with
its generic parser, costing as much as everything else the loader does (measured by
``benchmarks/put_events_cost.py``). Writing our own HTTP client would lose what users rely on the boto3 client for: the
credential chain and its refresh, SigV4, endpoint and region resolution, TLS verification, proxies,
timeouts, retries configuration, the user agent, and every handler a user or a library (e.g.
Airflow's hook) registered on the client.

How: :class:`RawPutEvents` still calls the real ``client.put_events``, with a placeholder request
(``{"BatchItem": {}}``, cheap to validate and serialise), and hooks two events that botocore emits
for this operation on this client only (``client.meta.events``):

- ``before-sign.pinpoint.PutEvents`` (emitted by ``RequestSigner.sign`` right before SigV4 hashes
  the payload, on every attempt including botocore's own retries): the placeholder body of the
  ``AWSRequest`` is replaced by the pre-built bytes. The signature is then computed over the real
  body, and ``Content-Length`` is derived from it afterwards, when the request is prepared.
- ``before-parse.pinpoint.PutEvents`` (emitted by the endpoint after the response arrived and before
  the generic parser runs): for a 2xx answer the raw body is decoded with msgspec and handed back
  through ``customized_response_dict``, which botocore merges into the parsed response; the generic
  parser gets ``{}`` to chew on. A 2xx body that is not a JSON object (a proxy's page, a cut-off
  answer) raises botocore's ``ResponseParserError``. Error answers (4xx/5xx) are left alone, so
  botocore parses them as always and users get the very same ``ClientError`` subclasses
  (``TooManyRequestsException``...) and retry behaviour as with a plain ``put_events`` call.

Faster still, for most clients: when the client can be reproduced exactly (one attempt per call,
nothing but botocore's own handlers on PutEvents, SigV4), :class:`RawPutEvents` sends through
:mod:`.direct_send` instead, which does botocore's per-call work once per application id and then
only signs and sends each request with the client's own signer credentials and HTTP session. Any
other client goes through ``client.put_events`` as described above; :attr:`RawPutEvents.direct`
says which path is taken, and the rule is in :mod:`.direct_send`.

Why it is safe: the handlers act only while :meth:`RawPutEvents.send` is running in the same thread
(the pending body sits in a thread-local), so plain ``put_events`` calls on the same client, from any
thread, are untouched; several threads can share one client and one ``RawPutEvents``. The body swap
would be wrong only if botocore derived something else from the serialised body before signing
(a request checksum or compression); PutEvents has neither trait in the service model, and the
constructor refuses to run if a future model adds one.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec
from botocore.parsers import ResponseParserError

from airflow_provider_pinpoint.sinks.direct_send import DirectSender

_OPERATION = "PutEvents"
_PLACEHOLDER: dict[str, dict[str, Any]] = {"BatchItem": {}}
_decoder = msgspec.json.Decoder()
# The body being sent by this thread, if it is inside RawPutEvents.send. One per thread is enough:
# a thread is inside at most one send at a time, whatever the client.
_pending = threading.local()


class ItemStatus(msgspec.Struct, gc=False):
    """An item's status in an answer read by :data:`_statuses_decoder`: only its code (its message,
    and any other field, is skipped)."""

    StatusCode: int


class EntryStatuses(msgspec.Struct, gc=False):
    """An endpoint's entry in an answer read by :data:`_statuses_decoder`; a field the answer lacks is
    empty, as is an ``EndpointItemResponse`` that is null."""

    EndpointItemResponse: ItemStatus | None = None
    EventsItemResponse: dict[str, ItemStatus] = {}


class _EventsResponse(msgspec.Struct, gc=False):
    Results: dict[str, EntryStatuses] = {}


# The answer's codes, read into typed objects: skips each item's message and makes no dict per item,
# and (no object tracked by the garbage collector) triggers no collections; about a third of the CPU of
# the untyped decode. Any answer of another shape fails it and is read untyped, as it always was.
_statuses_decoder = msgspec.json.Decoder(_EventsResponse)
_STATUSES_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_UNREAD: Any = object()  # a RawResponse's results before they are decoded (they may decode to anything)


class RawResponse:
    """A successful (2xx) PutEvents answer: ``results`` is the ``Results`` map, per endpoint and event.

    An answer from the direct path is kept as its body and read in the cheapest way that can answer
    what is asked: ``statuses`` is the map of codes (:class:`EntryStatuses` per endpoint) when the
    answer has the usual shape (every status present an object with an integer ``StatusCode``), else
    None; ``results``, the whole answer as plain JSON values, is then decoded only when first read.
    """

    __slots__ = ("status_code", "request_id", "statuses", "_results", "_body")

    def __init__(
        self,
        status_code: int,
        request_id: str | None,
        *,
        results: Any = _UNREAD,
        statuses: dict[str, EntryStatuses] | None = None,
        body: bytes = b"",
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self.statuses = statuses
        self._results = results
        self._body = body

    @property
    def results(self) -> dict[str, Any]:
        if self._results is _UNREAD:
            self._results = _decoded(self._body, self.status_code).get("Results", {})
        return self._results


class RawPutEvents:
    """Sends pre-serialised EventsRequest bodies through ``client`` (a boto3 ``pinpoint`` client).

    Thread-safe. Errors are raised exactly as ``client.put_events`` raises them. Creating several
    for one client is harmless: the handlers are registered once per client (fixed unique ids).
    """

    def __init__(self, client: Any, *, direct: bool = True) -> None:
        operation = client.meta.service_model.operation_model(_OPERATION)
        if operation.http_checksum or operation.request_compression:
            raise RuntimeError(
                "This botocore's PutEvents model computes a checksum or compresses the request body; "
                "sending pre-serialised bodies would break it. Send through client.put_events instead."
            )
        self._client = client
        service_id = client.meta.service_model.service_id.hyphenize()
        events = client.meta.events
        events.register(f"before-sign.{service_id}.{_OPERATION}", _swap_body, unique_id=f"{__name__}.sign")
        events.register(f"before-parse.{service_id}.{_OPERATION}", _take_results, unique_id=f"{__name__}.parse")
        _reuse_user_agent(client)
        self._direct = DirectSender(client, _OPERATION, (_swap_body, _take_results)) if direct else None

    @property
    def direct(self) -> bool:
        """Whether requests go straight through the client's signer and HTTP session (see :mod:`.direct_send`)
        rather than through ``client.put_events``; decided when made and when an application is first sent to."""
        return self._direct is not None and self._direct.refusal is None

    def send(self, application_id: str, body: bytes) -> RawResponse:
        """POST ``body`` (the EventsRequest JSON, as ``Request.body()`` builds it) to the application."""
        direct = self._direct
        if direct is not None and direct.refusal is None:
            target = direct.target(application_id, {"ApplicationId": application_id, "EventsRequest": _PLACEHOLDER})
            if target is not None:
                answer = direct.send(target, body)
                return _answer(answer.status_code, answer.body, answer.request_id)
        _pending.body = body
        try:
            response = self._client.put_events(ApplicationId=application_id, EventsRequest=_PLACEHOLDER)
        finally:
            _pending.body = None
        metadata = response["ResponseMetadata"]
        results = response.get("EventsResponse", {}).get("Results", {})
        return RawResponse(metadata["HTTPStatusCode"], metadata.get("RequestId"), results=results)


def _answer(status: int, body: bytes, request_id: str | None) -> RawResponse:
    """A 2xx answer's body as a :class:`RawResponse`: its codes read typed when it has the usual shape,
    else the whole of it read untyped right away (which raises for a body that is not a JSON object)."""
    try:
        statuses = _statuses_decoder.decode(body).Results
    except _STATUSES_ERRORS:
        return RawResponse(status, request_id, results=_decoded(body, status).get("Results", {}))
    return RawResponse(status, request_id, statuses=statuses, body=body)


def _reuse_user_agent(client: Any) -> None:
    """Build the client's User-Agent header once per set of features, not twice per request.

    botocore assembles the header from its parts (SDK, OS, Python, config, the features the call
    used), sanitising every character of each part, once when it serialises the call and again
    right before sending it (to include features registered meanwhile): about a tenth of what a
    request costs the client here. The parts are fixed when the client is made, except the
    features, so the text is kept per (client features, call features) and is the same text
    botocore would build. A botocore without these internals is left as it is.
    """
    creator: Any = getattr(client, "_user_agent_creator", None)
    build = getattr(type(creator), "to_string", None)
    if build is None or "to_string" in getattr(creator, "__dict__", {"to_string": None}):
        return
    try:
        from botocore.context import get_context
    except ImportError:
        return
    built: dict[tuple[frozenset[str], frozenset[str]], str] = {}

    def to_string() -> str:
        context = get_context()
        key = (
            frozenset(getattr(creator, "_client_features", None) or ()),
            frozenset(context.features) if context is not None else frozenset(),
        )
        text = built.get(key)
        if text is None:
            text = built[key] = build(creator)
        return text

    creator.to_string = to_string


def _swap_body(request: Any, **_: Any) -> None:
    body = getattr(_pending, "body", None)
    if body is not None:
        request.data = body


def _take_results(response_dict: dict, customized_response_dict: dict, **_: Any) -> None:
    if getattr(_pending, "body", None) is None or not 200 <= response_dict["status_code"] < 300:
        return
    customized_response_dict["EventsResponse"] = _decoded(response_dict["body"], response_dict["status_code"])
    response_dict["body"] = b"{}"


def _decoded(body: bytes, status: int) -> dict[str, Any]:
    """The EventsResponse object of a 2xx answer."""
    try:
        events_response = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # bytes not UTF-8, or nested too deep
        events_response = None
    if not isinstance(events_response, dict):
        # botocore's parser would return an empty answer for text that is not JSON and crash with an
        # AttributeError on JSON that is not an object; neither says what happened. The body is not
        # quoted: it could be anything a proxy sends back.
        raise ResponseParserError(f"HTTP {status} answer to PutEvents is not a JSON object")
    return events_response

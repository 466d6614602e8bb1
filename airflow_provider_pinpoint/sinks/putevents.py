"""The one place that talks to the service: send one PutEvents request, classify what came back.

Everything above this boundary (retries, splitting, per-item resends, bookkeeping) works on the
classified outcome only, so another sink, or a leaner wire path for the same boto3 client, can be
put in here without touching the engine.

The body goes out as the pre-serialised bytes the packer built, through the boto3 client itself
(:class:`~airflow_provider_pinpoint.sinks.raw_body.RawPutEvents`): credentials, SigV4, endpoint
resolution, TLS and timeouts stay the client's; botocore's generic serializer and parser are
skipped, and for a client that can be reproduced exactly so is its per-call machinery
(:mod:`~airflow_provider_pinpoint.sinks.direct_send`). Both raise what ``client.put_events`` raises.

The errors raised, the answer's interface and the client's settings are the sink-independent
seam in :mod:`airflow_provider_pinpoint.sending`.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from airflow_provider_pinpoint.common.text import one_line, scrubbed, without_userinfo
from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.prepare.requests import ENDPOINT, Item, Request
from airflow_provider_pinpoint.sending.transport import BadRequest, PayloadTooLarge, RetryableError
from airflow_provider_pinpoint.sinks import client_errors
from airflow_provider_pinpoint.sinks.raw_body import EntryStatuses, RawPutEvents, RawResponse


class Response:
    """A request the service answered (HTTP 2xx); ``results`` is its ``Results`` map as decoded.

    Made from the answer as :class:`RawPutEvents` read it, or (tests) from a ``Results`` map.
    """

    __slots__ = ("status", "request_id", "_answer", "_common")

    def __init__(self, status: int, request_id: str | None, results: dict[str, Any] | RawResponse) -> None:
        self.status = status
        self.request_id = request_id
        self._answer = results if isinstance(results, RawResponse) else RawResponse(status, request_id, results=results)
        self._common: tuple[Request, int | None] | None = None  # the last common_success asked, and its answer

    @property
    def results(self) -> dict[str, Any]:
        return self._answer.results

    def common_success(self, request: Request) -> int | None:
        """The one 2xx StatusCode the answer gives every item of ``request``, or None if any item got
        anything else.

        The normal answer accepts everything with one code; the engine then settles the request in
        one go and only walks :meth:`item_statuses` item by item when this says no. An answer of the
        usual shape is read from its typed codes (:attr:`RawResponse.statuses`), without decoding
        it whole; any other from its ``Results`` map, with the same outcome.
        """
        known = self._common
        if known is not None and known[0] is request:
            return known[1]
        statuses = self._answer.statuses
        if statuses is not None:
            code = _common_code(statuses, request)
            self._common = (request, code)
            return code
        results = self.results
        common = None
        try:
            for endpoint_id, event_id in zip(*request.keys(), strict=True):
                entry = results[endpoint_id]
                if event_id is None:
                    code = entry["EndpointItemResponse"]["StatusCode"]
                else:
                    code = entry["EventsItemResponse"][event_id]["StatusCode"]
                if code != common:
                    if common is not None or type(code) is not int or not 200 <= code < 300:
                        return None
                    common = code
        except (KeyError, TypeError):
            return None
        return common

    def item_statuses(self, request: Request) -> list[tuple[int, str]]:
        """(StatusCode, Message) the answer gives each item of ``request``, in order."""
        return [self.item_status(item) for item in request.items]

    def item_status(self, item: Item) -> tuple[int, str]:
        """(StatusCode, Message) the answer gives ``item``; status 0, and a message saying why, when
        it gives none or one that is not an HTTP status (with text, if any, as its message)."""
        try:
            entry = self.results.get(item.endpoint_id)
            status = None
            if entry is not None:
                if item.record_type == ENDPOINT:
                    status = entry.get("EndpointItemResponse")
                else:
                    status = (entry.get("EventsItemResponse") or {}).get(item.event_id)
        except (AttributeError, TypeError):
            return 0, "the answer's entry for this item could not be read"
        if status is None:
            return 0, "the answer had no status for this item"
        if not isinstance(status, dict):
            return 0, f"the answer's status for this item is {_json_kind(status)}, not an object"
        code, message = status.get("StatusCode"), status.get("Message")
        if type(code) is not int or not 100 <= code <= 599:
            return 0, f"the answer's StatusCode for this item is {_json_kind(code)}, not an HTTP status"
        if not 200 <= code < 300 and message is not None and not isinstance(message, str):
            return 0, f"the answer's Message for this item (StatusCode {code}) is {_json_kind(message)}, not text"
        return code, message if isinstance(message, str) else ""


def _common_code(statuses: dict[str, EntryStatuses], request: Request) -> int | None:
    """:meth:`Response.common_success` on typed codes: every status there is an object with an
    integer code (else the answer would not have been read this way); a missing entry, status or
    event, or a null endpoint status, is no common code, as a KeyError or TypeError is on the map.

    Subscripts, not ``dict.get``: a method call per lookup cost more than the lookups, twice per item.
    """
    common = None
    try:
        for endpoint_id, event_id in zip(*request.keys(), strict=True):
            entry = statuses[endpoint_id]
            status = entry.EndpointItemResponse if event_id is None else entry.EventsItemResponse[event_id]
            code = status.StatusCode  # type: ignore[union-attr]  # None (a null status): AttributeError
            if code != common:
                if common is not None or not 200 <= code < 300:
                    return None
                common = code
    except (KeyError, AttributeError):
        return None
    return common


def _json_kind(value: Any) -> str:
    """What a decoded JSON value is, without quoting it (an odd answer may echo anything back)."""
    if value is None:
        return "missing or null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number out of range"
    kinds = {float: "a fraction", str: "text", list: "a list", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)


class PutEventsTransport:
    """Sends a :class:`~airflow_provider_pinpoint.prepare.requests.Request` through a boto3 Pinpoint client.

    The client carries the credentials (and their refresh), SigV4 signing, endpoint and region
    resolution, TLS and timeouts; this class only maps the request in and the answer out.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._raw = RawPutEvents(client)

    def describe_target(self, application_id: str) -> str:
        """Where requests go, for messages: application id, region and endpoint (no credentials)."""
        meta = self.client.meta
        return f"application {application_id!r} in region {meta.region_name!r} at {without_userinfo(meta.endpoint_url)}"

    def send(self, application_id: str, request: Request) -> Response:
        """POST ``request`` once; the answer, or the request-level error it amounts to."""
        try:
            answer = self._raw.send(application_id, request.body())
            response = Response(answer.status_code, answer.request_id, answer)
            if answer.statuses is not None and response.common_success(request) is None:
                # Items will be read one by one, messages included: decode the answer whole here, so
                # that a body the typed reading passed but that is not valid JSON (bad UTF-8, or a
                # number out of range, in a field it skips) is an answer that could not be parsed,
                # retried as such, and not an error later in the engine.
                response.results  # noqa: B018 - read for its check
        except botocore.exceptions.ClientError as exc:
            raise self._classify(application_id, exc) from None
        except client_errors.NOT_ANSWERED as exc:
            raise client_errors.not_answered(exc, lambda: self.describe_target(application_id)) from None
        return response

    def _classify(self, application_id: str, exc: botocore.exceptions.ClientError) -> Exception:
        response = exc.response
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        error = response.get("Error", {})
        # Errors are logged and printed: a service (or a proxy) that quotes what it refused must not put an
        # address there, as it may not in the results table.
        message = scrubbed(one_line(error.get("Message") or error.get("Code") or "no message"))
        target = self.describe_target(application_id)
        if status == 401:
            return FatalServiceError(
                f"Not authenticated (HTTP 401) for {target}: the AWS credentials are invalid or expired. "
                f"Service said: {message}"
            )
        if status == 403:
            return FatalServiceError(
                f"Access denied (HTTP 403) for {target}: check the AWS credentials "
                f"or role, that it may call mobiletargeting:PutEvents, and the region. Service said: {message}"
            )
        if status == 404:
            return FatalServiceError(
                f"Not found (HTTP 404): {target}: check the application id, "
                f"the region and the endpoint URL. Service said: {message}"
            )
        if status == 407:
            return FatalServiceError(
                f"A proxy asked for authentication (HTTP 407) on the way to {target}: check the proxy settings."
            )
        if status is not None and 300 <= status < 400:
            return FatalServiceError(
                f"Redirected (HTTP {status}) by {target}: requests are not followed elsewhere; check the endpoint "
                "URL (scheme, host and region)."
            )
        if status == 413:
            return PayloadTooLarge(message, status, request_id)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return BadRequest(message, status, request_id)
        return RetryableError(message, status, request_id)

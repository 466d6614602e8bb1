"""The seam between the engine and a sink: what a transport sends, what its answer must tell, how it fails.

The engine knows nothing of any service's wire format. A sink (PutEvents today) implements
:class:`Transport`: it sends one :class:`~airflow_provider_pinpoint.prepare.requests.Request` and
returns an :class:`Answer` that gives a status for each item of that request, in request order, or
raises one of the errors below for the request as a whole. Sinks whose answers list per-record
results in request order (Kinesis ``PutRecords``, Firehose ``PutRecordBatch``) fit as they are.
"""

from __future__ import annotations

from typing import Protocol

from airflow_provider_pinpoint.prepare.requests import Request

# Per-item status codes that say the item itself is invalid: the only ones that make it final
# (``rejected``). Any other non-2xx item status is resent, then ``failed``.
ITEM_INVALID = frozenset({400, 413})


class Answer(Protocol):
    """A request the service answered as a whole (HTTP 2xx); each item may still have its own status."""

    @property
    def request_id(self) -> str | None:
        """The service's id for the request, if it gave one."""
        ...

    def common_success(self, request: Request) -> int | None:
        """The one 2xx status every item of ``request`` got, or None if any got anything else.

        The normal answer accepts everything with one code: the engine then settles the request
        from its columns and walks :meth:`item_statuses` only when this says no.
        """
        ...

    def item_statuses(self, request: Request) -> list[tuple[int, str]]:
        """(status code, message) for each item of ``request``, in order; code 0 when the answer gives
        none or none that can be read (the message then says which)."""
        ...


class Transport(Protocol):
    """Sends requests to one service; thread-safe (the engine's workers share it)."""

    def describe_target(self, application_id: str) -> str:
        """Where requests go, for messages: no credentials, no userinfo."""
        ...

    def send(self, application_id: str, request: Request) -> Answer:
        """Send ``request`` once. Raises a :class:`TransportError` subclass when the request as a whole
        failed, or :class:`~airflow_provider_pinpoint.errors.FatalServiceError` when no request of the
        run can succeed (credentials, permissions, an unknown target)."""
        ...


class TransportError(Exception):
    """The whole request failed; ``status`` is the HTTP status, or None when no answer came back."""

    def __init__(self, message: str, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id


class RetryableError(TransportError):
    """429, 408, 5xx, a timeout or a broken connection: the same request may be sent again."""

    @property
    def throttled(self) -> bool:
        """The service asked for a slower rate (429)."""
        return self.status == 429


class PayloadTooLarge(TransportError):
    """413: the request must be split before it is sent again."""


class BadRequest(TransportError):
    """A 400 (or another 4xx with no meaning of its own) for the request as a whole.

    Sending the same request again would get the same answer, so it is not retried in this run;
    but the answer is about the request, not about any one item, so its items are not known to be
    invalid: they are recorded ``failed`` (a later run sends them again), never ``rejected``."""

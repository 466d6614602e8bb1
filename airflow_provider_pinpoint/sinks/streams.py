"""What the Kinesis and Firehose transports share: the answer with a status per record, the budget of
records and bytes per second, and how a refused request is classified.

Both services answer a batch put with HTTP 200 and a status per record, in request order
(Kinesis ``Records[i]``, Firehose ``RequestResponses[i]``): a record with an ``ErrorCode`` was not
stored and is resent alone by the engine (a throttling code counts as a 429, anything else as a
500). A request refused as a whole is classified by the error code both services put in the
answer (they send their 4xx as HTTP 400 with a code that says what happened): a stream or key
that does not exist, or no permission, stops the run at once; throttling is retried and slows
the budget; the rest follows the HTTP status as for PutEvents.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from airflow_provider_pinpoint.common.text import one_line, scrubbed, without_userinfo
from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.prepare.record_packing import RecordLimits, request_bytes
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.sending.ratelimit import RateLimiter, shared_limiter
from airflow_provider_pinpoint.sending.transport import BadRequest, PayloadTooLarge, RetryableError
from airflow_provider_pinpoint.sinks import client_errors
from airflow_provider_pinpoint.sinks.raw_records import RawRecords

# A per-record error code that means "too fast": counted as 429, so the engine resends the record
# and slows down when most of a request was throttled.
THROTTLED_STATUS = 429
FAILED_STATUS = 500
# Request-level error codes that say the service is being asked too fast.
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "TooManyRequestsException",
        "KMSThrottlingException",
        "ServiceUnavailableException",
    }
)
# Request-level error codes no other request of the run can get past.
_NOT_FOUND = frozenset({"ResourceNotFoundException", "KMSNotFoundException"})
_DENIED = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "ExpiredTokenException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSOptInRequired",
        "InvalidKMSResourceException",
        "InvalidSourceException",
    }
)


class Throttled(RetryableError):
    """The service asked for a slower rate, whatever HTTP status it came with (Kinesis sends its
    ProvisionedThroughputExceeded as a 400): retried, and the rate is cut."""

    @property
    def throttled(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class RecordsAnswer:
    """A batch put the service answered with HTTP 200: a (status, message) per record, in request order."""

    request_id: str | None
    statuses: list[tuple[int, str]]
    all_stored: bool

    @classmethod
    def of(cls, entries: Any, sent: int, request_id: str | None, success_key: str) -> RecordsAnswer:
        """From the answer's per-record list (``Records`` / ``RequestResponses``): a record with
        ``success_key`` (``SequenceNumber`` / ``RecordId``) was stored, one with an ``ErrorCode`` was not."""
        if not isinstance(entries, list) or len(entries) != sent:
            got = len(entries) if isinstance(entries, list) else 0
            message = f"the answer listed {got} records for the {sent} sent"
            return cls(request_id, [(0, message)] * sent, False)
        statuses: list[tuple[int, str]] = []
        stored = 0
        for entry in entries:
            code = entry.get("ErrorCode") if isinstance(entry, dict) else None
            if code is None and isinstance(entry, dict) and entry.get(success_key) is not None:
                statuses.append((200, ""))
                stored += 1
            elif code is None:
                statuses.append((0, f"the answer had neither {success_key} nor ErrorCode for this record"))
            else:
                status = THROTTLED_STATUS if code in THROTTLING_CODES else FAILED_STATUS
                # The code is the service's own word; only the message may quote what it refused.
                text = f"{code}: {scrubbed(one_line(str(entry.get('ErrorMessage') or 'no message')))}"
                statuses.append((status, text))
        return cls(request_id, statuses, stored == sent)

    @property
    def throttled(self) -> int:
        """How many records were refused for going too fast."""
        return sum(1 for code, _ in self.statuses if code == THROTTLED_STATUS)

    def common_success(self, request: Request) -> int | None:
        return 200 if self.all_stored and len(self.statuses) == len(request) else None

    def item_statuses(self, request: Request) -> list[tuple[int, str]]:
        return list(self.statuses)


class Budget:
    """Records and bytes per second for one stream, shared by the engine's workers (and by loads into
    the same stream in one process); both are cut when the service throttles."""

    def __init__(self, records: RateLimiter, octets: RateLimiter) -> None:
        self.records = records
        self.bytes = octets

    @classmethod
    def unlimited(cls) -> Budget:
        """A budget that never waits (for calls that only describe the stream)."""
        return cls(RateLimiter(float("inf")), RateLimiter(float("inf")))

    def take(self, records: int, size: int, stopped: Callable[[], bool] | None = None) -> bool:
        """Wait until ``records`` records of ``size`` bytes may go; False if the run stopped meanwhile."""
        return self.records.acquire(stopped, cost=records) and self.bytes.acquire(stopped, cost=size)

    def throttled(self) -> None:
        self.records.throttled()
        self.bytes.throttled()


@contextmanager
def shared_budget(target: str, records_per_second: float, bytes_per_second: float) -> Iterator[Budget]:
    """The process's budget for ``target`` (endpoint URL and stream), for the ``with`` block."""
    with ExitStack() as stack:
        records = stack.enter_context(shared_limiter(f"{target}#records", records_per_second))
        octets = stack.enter_context(shared_limiter(f"{target}#bytes", bytes_per_second))
        yield Budget(records, octets)


class StreamTransport:
    """The send path both sinks share: check the request against the quotas, wait for the budget,
    stamp each record's arrival time, call the service once and classify what came back.

    Subclasses name the service, its batch put and the members of its request and answer, and may
    reshape the records first (:meth:`_payload`)."""

    service = ""  # "Kinesis" or "Firehose", for messages
    what = ""  # "stream" or "delivery stream"
    flag = ""  # the option that names it
    permission = ""  # the IAM action the call needs
    operation = ""  # the batch put: "PutRecords" or "PutRecordBatch"
    name_member = ""  # the request member that names the stream
    results_member = ""  # the answer's list of per-record results
    id_member = ""  # what a stored record's result carries

    def __init__(self, client: Any, stream: str, limits: RecordLimits, budget: Budget) -> None:
        self.client = client
        self.stream = stream
        self.limits = limits
        self.budget = budget
        self.stopped: Callable[[], bool] | None = None  # the engine's stop, when the load sets it
        self._raw = RawRecords(client, self.operation, self.name_member, stream)

    def describe_target(self, application_id: str) -> str:
        """Where records go, for messages: the stream, region and endpoint (no credentials)."""
        meta = self.client.meta
        return (
            f"{self.service} {self.what} {self.stream!r} in region {meta.region_name!r} at "
            f"{without_userinfo(meta.endpoint_url)}"
        )

    def send(self, application_id: str, request: Request) -> RecordsAnswer:
        """Put ``request``'s records once; the answer, or the request-level error it amounts to."""
        columns = request.columns
        size = request_bytes(request, self.limits)
        if len(request) > self.limits.max_records or size > self.limits.max_request_bytes:
            # A resend packed by the engine's own (PutEvents) packing may come out a little larger.
            raise PayloadTooLarge(
                f"{len(request)} records of {size:,} bytes are over the {self.service} quota of "
                f"{self.limits.max_records} records and {self.limits.max_request_bytes:,} bytes per request",
                413,
            )
        self.budget.take(len(request), size, self.stopped)
        bodies = columns.column("body").to_pylist()
        keys = columns.column("endpoint_id").to_pylist()
        prefix = b'{"arrival_timestamp":%d,' % (time.time_ns() // 1_000_000)
        try:
            answer = self._put([prefix + body.encode()[1:] for body in bodies], keys)
        except botocore.exceptions.ClientError as exc:
            error = self.classify(application_id, exc)
            if isinstance(error, Throttled):
                self.budget.throttled()
            raise error from None
        except client_errors.NOT_ANSWERED as exc:
            raise client_errors.not_answered(exc, lambda: self.describe_target(application_id)) from None
        if answer.throttled * 2 > len(request):
            self.budget.throttled()
        return answer

    def _put(self, records: Sequence[bytes], keys: Sequence[str]) -> RecordsAnswer:
        response = self._raw.send(*self._payload(records, keys))
        return RecordsAnswer.of(
            response.get(self.results_member), len(records), request_id_of(response), self.id_member
        )

    def _payload(self, records: Sequence[bytes], keys: Sequence[str]) -> tuple[Sequence[bytes], Sequence[str] | None]:
        """The records and partition keys as the service takes them."""
        return records, keys

    def classify(self, application_id: str, exc: botocore.exceptions.ClientError) -> Exception:
        response = exc.response
        metadata = response.get("ResponseMetadata", {})
        status, request_id = metadata.get("HTTPStatusCode"), metadata.get("RequestId")
        error = response.get("Error", {})
        code = str(error.get("Code") or "")
        message = scrubbed(one_line(error.get("Message") or code or "no message"))
        target = self.describe_target(application_id)
        if code in _NOT_FOUND:
            return FatalServiceError(
                f"Not found: {target} ({code}): check {self.flag}, the region and the endpoint URL. "
                f"Service said: {message}"
            )
        if code in _DENIED or status in (401, 403):
            return FatalServiceError(
                f"Access denied for {target} ({code or f'HTTP {status}'}): check the AWS credentials or role, "
                f"that it may call {self.permission}, and the region. Service said: {message}"
            )
        if status == 407:
            return FatalServiceError(
                f"A proxy asked for authentication (HTTP 407) on the way to {target}: check the proxy settings."
            )
        if status is not None and 300 <= status < 400:
            return FatalServiceError(
                f"Redirected (HTTP {status}) by {target}: requests are not followed elsewhere; check the endpoint URL."
            )
        if code in THROTTLING_CODES:
            return Throttled(f"{code}: {message}", status, request_id)
        if status == 413:
            return PayloadTooLarge(message, status, request_id)
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            return BadRequest(f"{code}: {message}" if code else message, status, request_id)
        return RetryableError(message, status, request_id)


def request_id_of(response: dict[str, Any]) -> str | None:
    return response.get("ResponseMetadata", {}).get("RequestId")

"""What travels over HTTP: PutEvents request decoding and the answers boto3 parses.

botocore's rest-json parser takes the error code from the ``x-amzn-ErrorType`` header and the
message from the body's ``Message``; the request id comes from ``x-amzn-RequestId``. Getting these
three right is what turns an answer into ``client.exceptions.BadRequestException`` and friends.

Event bodies are decoded as :class:`msgspec.Raw` slices: recording needs the bytes, and decoding
them into Python objects is only worth it when validation is on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import msgspec

ACCEPTED = {"StatusCode": 202, "Message": "Accepted"}

# Request-level errors of the PutEvents operation: status code and the exception class boto3 raises.
BAD_REQUEST = (400, "BadRequestException")
FORBIDDEN = (403, "ForbiddenException")
NOT_FOUND = (404, "NotFoundException")
METHOD_NOT_ALLOWED = (405, "MethodNotAllowedException")
PAYLOAD_TOO_LARGE = (413, "PayloadTooLargeException")
TOO_MANY_REQUESTS = (429, "TooManyRequestsException")
INTERNAL_SERVER_ERROR = (500, "InternalServerErrorException")

REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# gc=False: these hold no cycles, and leaving them out of the collector's sight keeps it quick.
class EventsBatch(msgspec.Struct, gc=False):
    Endpoint: dict
    Events: dict[str, msgspec.Raw]


class EventsRequest(msgspec.Struct, gc=False):
    BatchItem: dict[str, EventsBatch]


_request_decoder = msgspec.json.Decoder(EventsRequest)
_encoder = msgspec.json.Encoder()

encode = _encoder.encode
decode = msgspec.json.decode


class MalformedRequest(ValueError):
    """The body is not an EventsRequest at all: answered 400 for the whole request."""


def decode_events_request(body: bytes) -> dict[str, EventsBatch]:
    """The BatchItem map of a PutEvents body, with each event left as raw JSON."""
    try:
        return _request_decoder.decode(body).BatchItem
    except msgspec.ValidationError as exc:
        raise MalformedRequest(f"Invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"Request body is not valid JSON: {exc}") from None


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class Answer:
    """An HTTP answer, or a decision not to answer (``close`` without ``status``)."""

    status: int | None
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay_s: float = 0.0
    close: bool = False
    content_type: str = "application/json"


def json_answer(status: int, payload: object, request_id: str | None = None) -> Answer:
    headers = [("x-amzn-RequestId", request_id or new_request_id())]
    return Answer(status, encode(payload), headers)


def error_answer(error: tuple[int, str], message: str, request_id: str | None = None) -> Answer:
    """A request-level error in the shape botocore maps onto the modeled exception class."""
    status, error_type = error
    request_id = request_id or new_request_id()
    answer = json_answer(status, {"Message": message, "RequestID": request_id}, request_id)
    answer.headers.append(("x-amzn-ErrorType", error_type))
    return answer


def item_result(status_code: int, message: str) -> dict:
    return {"StatusCode": status_code, "Message": message}


def serialise_head(answer: Answer, keep_alive: bool) -> bytes:
    """Status line and headers of ``answer``, which must have a status (a close is not sent)."""
    status = answer.status
    if status is None:
        raise ValueError("an answer without a status closes the connection; it has no head to send")
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines.append(f"Content-Type: {answer.content_type}")
    lines.append(f"Content-Length: {len(answer.body)}")
    lines.extend(f"{name}: {value}" for name, value in answer.headers)
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

"""The JSON 1.1 wire of Kinesis and Firehose: request bodies in, answers botocore parses out.

botocore's JSON parser takes an error's code from the body's ``__type`` and its message from
``message``; base64 blobs and epoch-second timestamps are what its serialiser sends and expects.
"""

from __future__ import annotations

import binascii

import msgspec

from airflow_provider_pinpoint.emulator import wire

CONTENT_TYPE = "application/x-amz-json-1.1"
# The largest body a stream call may have: 5 MiB of records grows by a third in base64, plus JSON.
STREAM_MAX_BODY = 8 * 1024 * 1024
ACCOUNT = "123456789012"
REGION = "us-east-1"


class ServiceError(Exception):
    """A request-level error: HTTP status, the service's error code and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def validation_error(message: str) -> ServiceError:
    return ServiceError(400, "ValidationException", f"1 validation error detected: {message}")


def invalid_argument(message: str) -> ServiceError:
    return ServiceError(400, "InvalidArgumentException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError(400, "ResourceNotFoundException", message)


def record_failure() -> ServiceError:
    """The per-record internal failure both services report inside a 200."""
    return ServiceError(500, "InternalFailure", "Internal service failure.")


def batch_entries(payload: dict, most: int) -> list:
    """The request's ``Records``, a list of 1 to ``most`` entries (both services' model check)."""
    entries = payload.get("Records")
    if not isinstance(entries, list) or not 1 <= len(entries) <= most:
        count = len(entries) if isinstance(entries, list) else 0
        raise validation_error(
            f"Value at 'records' failed to satisfy constraint: Member must have length less than or equal to "
            f"{most} and greater than or equal to 1 (it has {count})"
        )
    return entries


def answer(payload: object) -> wire.Answer:
    return wire.Answer(
        200, wire.encode(payload), [("x-amzn-RequestId", wire.new_request_id())], content_type=CONTENT_TYPE
    )


def error_answer(error: ServiceError) -> wire.Answer:
    body = wire.encode({"__type": error.code, "message": error.message})
    headers = [("x-amzn-RequestId", wire.new_request_id()), ("x-amzn-ErrorType", error.code)]
    return wire.Answer(error.status, body, headers, content_type=CONTENT_TYPE)


def decode_body(body: bytes) -> dict:
    """The request's JSON object; anything else is the service's SerializationException."""
    try:
        payload = msgspec.json.decode(body) if body else {}
    except msgspec.DecodeError:
        raise ServiceError(400, "SerializationException", "The request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ServiceError(400, "SerializationException", "The request body must be a JSON object")
    return payload


def blob(value: object, member: str) -> bytes:
    """A base64 member (``Data``) decoded; a malformed one is refused as the service does."""
    if not isinstance(value, str):
        raise ServiceError(400, "SerializationException", f"{member} must be a base64 string")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error:
        raise ServiceError(400, "SerializationException", f"{member} is not valid base64") from None


def encode_blob(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def required_name(payload: dict, member: str) -> str:
    value = payload.get(member)
    if not isinstance(value, str) or not value:
        raise validation_error(f"Value at '{_camel(member)}' failed to satisfy constraint: Member must not be null")
    return value


def _camel(member: str) -> str:
    return member[:1].lower() + member[1:]

"""Kinesis ``PutRecords`` and Firehose ``PutRecordBatch`` with a body built by the loader, through the
user's own boto3 client: the technique of :mod:`.raw_body` (PutEvents), for the stream sinks.

Why: handed 500 record dicts, botocore validates each, base64-encodes each ``Data`` in Python, walks
its generic serializer over all of them and its generic parser over the 500 answers: per record,
several times what building the record's JSON costs. Here the request body is joined from the
base64 of each record (one C call a record) and the answer is decoded with msgspec, while the
client still does everything users rely on it for (credentials and their refresh, SigV4, endpoint
and region resolution, TLS, proxies, timeouts, user agent, registered handlers).

How: the real ``client.put_records`` / ``client.put_record_batch`` is called with one placeholder
record; ``before-sign`` swaps the placeholder body for the built one (so SigV4 signs the real body),
and ``before-parse`` decodes a 2xx answer itself and hands it back through
``customized_response_dict``. Error answers are left to botocore, so the same ``ClientError`` codes
come out as from a plain call. The handlers act only while :meth:`RawRecords.send` runs in the same
thread (the pending body sits in a thread-local); plain calls on the same client are untouched. The
constructor refuses a service model whose operation computes a checksum or compresses the body.

For a client that can be reproduced exactly (one attempt per call, only botocore's own handlers on
the operation, SigV4), the body goes through :mod:`.direct_send` instead: botocore's per-call work
is done once, then each request is only signed and sent with the client's own credentials and HTTP
session; the same exceptions come out. :attr:`RawRecords.direct` says which path is taken.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Sequence
from typing import Any

import msgspec
from botocore import xform_name
from botocore.parsers import ResponseParserError

from airflow_provider_pinpoint.sinks.direct_send import DirectSender

_decoder = msgspec.json.Decoder()
_pending = threading.local()
# The characters a JSON string must escape: partition keys holding one are quoted by msgspec.
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')


class RawRecords:
    """Sends pre-serialised records through ``client`` (a boto3 ``kinesis`` or ``firehose`` client)."""

    def __init__(self, client: Any, operation: str, stream_field: str, stream: str, *, direct: bool = True) -> None:
        model = client.meta.service_model.operation_model(operation)
        if model.http_checksum or model.request_compression:
            raise RuntimeError(
                f"This botocore's {operation} model computes a checksum or compresses the request body; "
                "sending pre-built bodies would break it."
            )
        self._client = client
        self._call = getattr(client, xform_name(operation))
        self._stream_field = stream_field
        self._head = b'{"%b":%b,"Records":[' % (stream_field.encode(), msgspec.json.encode(stream))
        service_id = client.meta.service_model.service_id.hyphenize()
        events = client.meta.events
        events.register(f"before-sign.{service_id}.{operation}", _swap_body, unique_id=f"{__name__}.sign.{operation}")
        events.register(
            f"before-parse.{service_id}.{operation}", _take_answer, unique_id=f"{__name__}.parse.{operation}"
        )
        self._direct = DirectSender(client, operation, (_swap_body, _take_answer)) if direct else None

    @property
    def direct(self) -> bool:
        """Whether requests go straight through the client's signer and HTTP session (:mod:`.direct_send`)."""
        return self._direct is not None and self._direct.refusal is None

    def send(self, records: Sequence[bytes], keys: Sequence[str] | None) -> dict[str, Any]:
        """Put ``records`` (with a partition key each, for Kinesis) in one request; the decoded answer."""
        if keys is None:
            entries = [b'{"Data":"%b"}' % base64.b64encode(data) for data in records]
            placeholder: dict[str, Any] = {"Data": b""}
        else:
            entries = [
                b'{"Data":"%b","PartitionKey":%b}' % (base64.b64encode(data), _quoted(key))
                for data, key in zip(records, keys, strict=True)
            ]
            placeholder = {"Data": b"", "PartitionKey": "-"}
        body = self._head + b",".join(entries) + b"]}"
        params = {self._stream_field: "-", "Records": [placeholder]}
        direct = self._direct
        if direct is not None and direct.refusal is None:
            target = direct.target(None, params)  # the stream is named in the body: one URL for all
            if target is not None:
                answer = direct.send(target, body)
                decoded = _decoded(answer.body, answer.status_code)
                # What botocore's JSON parser puts there (not the retry handler's MaxAttemptsReached).
                decoded["ResponseMetadata"] = {
                    "RequestId": answer.headers.get("x-amzn-requestid"),
                    "HTTPStatusCode": answer.status_code,
                    "HTTPHeaders": {name.lower(): value for name, value in answer.headers.items()},
                    "RetryAttempts": 0,
                }
                return decoded
        _pending.body = body
        try:
            return dict(self._call(**params))
        finally:
            _pending.body = None


def _quoted(key: str) -> bytes:
    if _NEEDS_ESCAPE.search(key) is None:
        return b'"%b"' % key.encode()
    return msgspec.json.encode(key)


def _swap_body(request: Any, **_: Any) -> None:
    body = getattr(_pending, "body", None)
    if body is not None:
        request.data = body


def _take_answer(response_dict: dict, customized_response_dict: dict, **_: Any) -> None:
    if getattr(_pending, "body", None) is None or not 200 <= response_dict["status_code"] < 300:
        return
    customized_response_dict.update(_decoded(response_dict["body"], response_dict["status_code"]))
    response_dict["body"] = b"{}"


def _decoded(body: bytes, status: int) -> dict[str, Any]:
    try:
        answer = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        answer = None
    if not isinstance(answer, dict):
        raise ResponseParserError(f"HTTP {status} answer to a batch put is not a JSON object")
    return answer

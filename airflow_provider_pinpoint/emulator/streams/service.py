"""Routing a stream call to Kinesis or Firehose, with the faults a write meets, in a fixed order.

Order of decisions for a write (PutRecords, PutRecord, PutRecordBatch): drop; credentials; size;
the body; the stream (ResourceNotFoundException); whole-request throttling, 500 and 503; the
request quotas; per record, InternalFailure and then the shard's (or delivery stream's) budget;
lost response. Latency delays every answer that is given. Other calls (creating, describing and
reading streams) meet no faults, so a test's set-up and its read-back are never what fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from airflow_provider_pinpoint.emulator import faults as fault_kinds
from airflow_provider_pinpoint.emulator import wire
from airflow_provider_pinpoint.emulator.faults import Faults, Settings
from airflow_provider_pinpoint.emulator.streams import firehose, kinesis, protocol
from airflow_provider_pinpoint.emulator.streams.context import Call, empty_stats
from airflow_provider_pinpoint.emulator.streams.protocol import ServiceError


class _Api(Protocol):
    operations: dict[str, Callable[[dict, Call], dict]]

    def throttled(self, name: str) -> ServiceError: ...
    def internal_error(self) -> ServiceError: ...
    def unavailable(self) -> ServiceError: ...
    def stream(self, payload: dict) -> object: ...
    def dump(self, name: str) -> list[dict]: ...


class Streams:
    """The Kinesis streams and Firehose delivery streams of the emulated account, and their counters."""

    def __init__(self) -> None:
        self.kinesis = kinesis.Kinesis()
        self.firehose = firehose.Firehose()
        self.stats = empty_stats()

    def reset(self) -> None:
        """Forget every stream, delivery stream, record and counter."""
        self.kinesis = kinesis.Kinesis()
        self.firehose = firehose.Firehose()
        self.stats = empty_stats()

    def handle(
        self, target: str, auth_problem: str | None, body: bytes, too_large: bool, faults: Faults, settings: Settings
    ) -> wire.Answer:
        api: _Api
        if target.startswith(kinesis.TARGET_PREFIX):
            api, writes = self.kinesis, kinesis.WRITES
        elif target.startswith(firehose.TARGET_PREFIX):
            api, writes = self.firehose, firehose.WRITES
        else:
            return protocol.error_answer(
                ServiceError(400, "UnknownOperationException", f"Unknown target {target[:80]}")
            )
        operation = target.partition(".")[2]
        handler = api.operations.get(operation)
        if handler is None:
            return protocol.error_answer(
                ServiceError(400, "UnknownOperationException", f"Operation {operation[:80]} is not supported")
            )
        call = Call(time.time(), faults, settings, self.stats)
        if operation not in writes:
            try:
                return protocol.answer(handler(protocol.decode_body(body), call))
            except ServiceError as error:
                return protocol.error_answer(error)
        self.stats["requests"] += 1
        if faults.drop():
            call.count_fault(fault_kinds.DROP)
            return wire.Answer(None, close=True)
        answer = self._write(api, handler, auth_problem, body, too_large, call)
        if settings.latency_ms and answer.status is not None:
            call.count_fault(fault_kinds.LATENCY)
            answer.delay_s = faults.latency_s()
        return answer

    def _write(
        self,
        api: _Api,
        handler: Callable[[dict, Call], dict],
        auth_problem: str | None,
        body: bytes,
        too_large: bool,
        call: Call,
    ) -> wire.Answer:
        faults = call.faults
        try:
            if auth_problem:
                raise ServiceError(400, "UnrecognizedClientException", auth_problem)
            if too_large:
                raise ServiceError(
                    413, "RequestEntityTooLargeException", f"Request body exceeds {protocol.STREAM_MAX_BODY} bytes"
                )
            payload = protocol.decode_body(body)
            api.stream(payload)
            if faults.throttle_stream():
                call.count_fault(fault_kinds.THROTTLE)
                raise api.throttled(str(payload.get("StreamName") or payload.get("DeliveryStreamName")))
            if faults.error():
                call.count_fault(fault_kinds.ERROR)
                raise api.internal_error()
            if faults.unavailable():
                call.count_fault(fault_kinds.UNAVAILABLE)
                raise api.unavailable()
            written = call.stats["records_accepted"]
            result = handler(payload, call)
        except ServiceError as error:
            return protocol.error_answer(error)
        if faults.lose_response():
            call.count_fault(fault_kinds.LOST_RESPONSE)
            call.stats["records_unanswered"] += call.stats["records_accepted"] - written
            return wire.Answer(None, close=True, delay_s=call.settings.lost_response_delay_ms / 1000.0)
        return protocol.answer(result)

    # -- inspection ------------------------------------------------------------------------------

    def inspect(self, parts: list[str]) -> wire.Answer | None:
        """``GET /_emulator/streams[/{kinesis|firehose}/{name}/records]``; None if no such resource."""
        if parts == ["streams"]:
            return wire.json_answer(
                200, {"stats": self.stats, "kinesis": self.kinesis.overview(), "firehose": self.firehose.overview()}
            )
        if len(parts) == 4 and parts[0] == "streams" and parts[3] == "records":
            apis: dict[str, _Api] = {"kinesis": self.kinesis, "firehose": self.firehose}
            api = apis.get(parts[1])
            if api is None:
                return None
            try:
                return wire.json_answer(200, api.dump(parts[2]))
            except ServiceError as error:
                return wire.json_answer(404, {"Message": error.message})
        return None

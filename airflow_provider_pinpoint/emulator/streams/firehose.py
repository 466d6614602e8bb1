"""Amazon Data Firehose: delivery streams that keep what they are given, in order, under a write budget.

Request quotas (from the PutRecordBatch reference): 1 to 500 records and a record at most
1,000 KiB (ValidationException, the model's checks), the request's records at most 4 MiB
(InvalidArgumentException). A delivery stream's throughput quota depends on the region, so its
budget is a setting (records/s and bytes/s, unlimited by default); a record beyond it is failed
alone with ``ServiceUnavailableException`` inside the 200. Records are kept in memory as
delivered, not written to a destination: ``/_emulator/streams/firehose/{name}/records`` reads them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_pinpoint.emulator import faults as fault_kinds
from airflow_provider_pinpoint.emulator.streams import budget as budgets
from airflow_provider_pinpoint.emulator.streams import protocol
from airflow_provider_pinpoint.emulator.streams.budget import Budget
from airflow_provider_pinpoint.emulator.streams.context import Call
from airflow_provider_pinpoint.emulator.streams.protocol import ServiceError, invalid_argument, validation_error

TARGET_PREFIX = "Firehose_20150804."
MAX_RECORDS = 500
MAX_RECORD_BYTES = 1000 * 1024
MAX_REQUEST_BYTES = 4 * 1024 * 1024
WRITES = frozenset({"PutRecordBatch", "PutRecord"})


@dataclass(slots=True)
class DeliveryStream:
    name: str
    kind: str
    created: float
    # (record id, data), in order of arrival.
    records: list[tuple[str, bytes]] = field(default_factory=list)
    budget: Budget | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:firehose:{protocol.REGION}:{protocol.ACCOUNT}:deliverystream/{self.name}"


class Firehose:
    """Every delivery stream of the emulated account, by name."""

    def __init__(self) -> None:
        self.streams: dict[str, DeliveryStream] = {}
        self.operations: dict[str, Callable[[dict, Call], dict]] = {
            "CreateDeliveryStream": self.create,
            "DeleteDeliveryStream": self.delete,
            "DescribeDeliveryStream": self.describe,
            "ListDeliveryStreams": self.list_streams,
            "PutRecordBatch": self.put_record_batch,
            "PutRecord": self.put_record,
        }

    # -- the errors a write can meet as a whole --------------------------------------------------

    @staticmethod
    def throttled(name: str) -> ServiceError:
        return ServiceError(503, "ServiceUnavailableException", "Slow down.")

    @staticmethod
    def internal_error() -> ServiceError:
        return ServiceError(500, "InternalFailure", "Internal service failure.")

    @staticmethod
    def unavailable() -> ServiceError:
        return ServiceError(503, "ServiceUnavailableException", "The service is unavailable. Back off and retry.")

    # -- delivery streams ------------------------------------------------------------------------

    def stream(self, payload: dict) -> DeliveryStream:
        name = protocol.required_name(payload, "DeliveryStreamName")
        stream = self.streams.get(name)
        if stream is None:
            raise protocol.not_found(f"Firehose {name} under account {protocol.ACCOUNT} not found.")
        return stream

    def create(self, payload: dict, call: Call) -> dict:
        name = protocol.required_name(payload, "DeliveryStreamName")
        if name in self.streams:
            raise ServiceError(
                400, "ResourceInUseException", f"Firehose {name} under account {protocol.ACCOUNT} already exists."
            )
        stream = self.streams[name] = DeliveryStream(name, payload.get("DeliveryStreamType", "DirectPut"), time.time())
        return {"DeliveryStreamARN": stream.arn}

    def delete(self, payload: dict, call: Call) -> dict:
        del self.streams[self.stream(payload).name]
        return {}

    def describe(self, payload: dict, call: Call) -> dict:
        stream = self.stream(payload)
        return {
            "DeliveryStreamDescription": {
                "DeliveryStreamName": stream.name,
                "DeliveryStreamARN": stream.arn,
                "DeliveryStreamStatus": "ACTIVE",
                "DeliveryStreamType": stream.kind,
                "VersionId": "1",
                "CreateTimestamp": stream.created,
                "Destinations": [{"DestinationId": "destinationId-000000000001"}],
                "HasMoreDestinations": False,
            }
        }

    def list_streams(self, payload: dict, call: Call) -> dict:
        return {"DeliveryStreamNames": sorted(self.streams), "HasMoreDeliveryStreams": False}

    # -- writes ----------------------------------------------------------------------------------

    def put_record_batch(self, payload: dict, call: Call) -> dict:
        stream = self.stream(payload)
        entries = protocol.batch_entries(payload, MAX_RECORDS)
        records = [_data(entry, i) for i, entry in enumerate(entries)]
        _check_total(records)
        responses = []
        failed = 0
        for data in records:
            problem = self._admit(stream, len(data), call)
            if problem is not None:
                failed += 1
                responses.append({"ErrorCode": problem.code, "ErrorMessage": problem.message})
                continue
            responses.append({"RecordId": _append(stream, data)})
        call.count_records(len(records) - failed, failed)
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}

    def put_record(self, payload: dict, call: Call) -> dict:
        stream = self.stream(payload)
        data = _data(payload.get("Record"), None)
        _check_total([data])
        problem = self._admit(stream, len(data), call)
        if problem is not None:
            call.count_records(0, 1)
            raise self.internal_error() if problem.code == "InternalFailure" else self.throttled(stream.name)
        call.count_records(1, 0)
        return {"RecordId": _append(stream, data), "Encrypted": False}

    def _admit(self, stream: DeliveryStream, size: int, call: Call) -> ServiceError | None:
        if call.record_error():
            return protocol.record_failure()
        settings = call.settings
        limits = (settings.firehose_records_per_second, settings.firehose_bytes_per_second)
        if limits == (None, None):
            return None
        budget = stream.budget = budgets.current(stream.budget, limits, call.now)
        if not budget.take(size):
            call.count_fault(fault_kinds.OVER_BUDGET)
            return ServiceError(503, "ServiceUnavailableException", "Slow down.")
        return None

    # -- inspection ------------------------------------------------------------------------------

    def overview(self) -> dict:
        return {name: {"records": len(stream.records)} for name, stream in self.streams.items()}

    def dump(self, name: str) -> list[dict]:
        """Every record delivered to a stream, in order of arrival, data in base64."""
        stream = self.stream({"DeliveryStreamName": name})
        return [{"record_id": record_id, "data": protocol.encode_blob(data)} for record_id, data in stream.records]


def _append(stream: DeliveryStream, data: bytes) -> str:
    record_id = uuid.uuid4().hex * 2
    stream.records.append((record_id, data))
    return record_id


def _data(entry: object, index: int | None) -> bytes:
    if not isinstance(entry, dict):
        raise ServiceError(400, "SerializationException", "Each record must be a JSON object with Data")
    data = protocol.blob(entry.get("Data"), "Data")
    if len(data) > MAX_RECORD_BYTES:
        where = "record.data" if index is None else f"records.{index + 1}.member.data"
        raise validation_error(
            f"Value at '{where}' failed to satisfy constraint: Member must have length less than or equal to "
            f"{MAX_RECORD_BYTES} (it has {len(data)})"
        )
    return data


def _check_total(records: list[bytes]) -> None:
    total = sum(len(data) for data in records)
    if total > MAX_REQUEST_BYTES:
        raise invalid_argument(
            f"Records size exceeds {MAX_REQUEST_BYTES // (1024 * 1024)} MiB limit: the request has {total} bytes"
        )

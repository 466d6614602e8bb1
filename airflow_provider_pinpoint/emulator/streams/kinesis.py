"""Kinesis Data Streams: streams of evenly split shards, PutRecords with per-shard budgets, reading back.

Request quotas (from the PutRecords reference): 1 to 500 records, a partition key of 1 to 256
characters (ValidationException, as the service's model checks say); a record's data and
partition key together at most 1 MiB, the request's records at most 5 MiB
(InvalidArgumentException). Each shard takes 1,000 records and 1 MiB a second by default (both
settable); a record beyond its shard's budget is failed alone with
``ProvisionedThroughputExceededException`` inside the 200, as the service does.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from airflow_provider_pinpoint.emulator import faults as fault_kinds
from airflow_provider_pinpoint.emulator.streams import budget as budgets
from airflow_provider_pinpoint.emulator.streams import protocol
from airflow_provider_pinpoint.emulator.streams.context import Call
from airflow_provider_pinpoint.emulator.streams.protocol import ServiceError, invalid_argument, validation_error
from airflow_provider_pinpoint.emulator.streams.shards import HASH_KEY_LIMIT, Shard, ShardMap, hash_key

TARGET_PREFIX = "Kinesis_20131202."
MAX_RECORDS = 500
MAX_RECORD_BYTES = 1024 * 1024
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_PARTITION_KEY = 256
MAX_SHARDS = 1000  # keeps a careless CreateStream from costing the emulator much memory
ON_DEMAND_SHARDS = 4  # what an on-demand stream starts with
MAX_GET_RECORDS = 10_000
# Sequence numbers look like the service's (decimal strings of 56 digits) and grow across the stream.
_FIRST_SEQUENCE = 49_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000
WRITES = frozenset({"PutRecords", "PutRecord"})


@dataclass(slots=True)
class Stream:
    name: str
    created: float
    shards: ShardMap
    mode: str
    next_sequence: int = _FIRST_SEQUENCE

    @property
    def arn(self) -> str:
        return f"arn:aws:kinesis:{protocol.REGION}:{protocol.ACCOUNT}:stream/{self.name}"


class Kinesis:
    """Every stream of the emulated account, by name."""

    def __init__(self) -> None:
        self.streams: dict[str, Stream] = {}
        self.operations: dict[str, Callable[[dict, Call], dict]] = {
            "CreateStream": self.create_stream,
            "DeleteStream": self.delete_stream,
            "DescribeStream": self.describe_stream,
            "DescribeStreamSummary": self.describe_stream_summary,
            "ListStreams": self.list_streams,
            "ListShards": self.list_shards,
            "PutRecords": self.put_records,
            "PutRecord": self.put_record,
            "GetShardIterator": self.get_shard_iterator,
            "GetRecords": self.get_records,
        }

    # -- the errors a write can meet as a whole --------------------------------------------------

    @staticmethod
    def throttled(name: str) -> ServiceError:
        return ServiceError(
            400,
            "ProvisionedThroughputExceededException",
            f"Rate exceeded for stream {name} under account {protocol.ACCOUNT}.",
        )

    @staticmethod
    def internal_error() -> ServiceError:
        return ServiceError(500, "InternalFailureException", "Internal service failure.")

    @staticmethod
    def unavailable() -> ServiceError:
        return ServiceError(503, "ServiceUnavailable", "Service Unavailable")

    # -- streams ---------------------------------------------------------------------------------

    def stream(self, payload: dict) -> Stream:
        """The stream a call names by ``StreamName`` or ``StreamARN``; ResourceNotFoundException if none."""
        name = payload.get("StreamName")
        arn = payload.get("StreamARN")
        if not name and isinstance(arn, str):
            name = arn.rpartition(":stream/")[2]
        if not isinstance(name, str) or not name:
            raise validation_error("Value at 'streamName' failed to satisfy constraint: Member must not be null")
        stream = self.streams.get(name)
        if stream is None:
            raise protocol.not_found(f"Stream {name} under account {protocol.ACCOUNT} not found.")
        return stream

    def create_stream(self, payload: dict, call: Call) -> dict:
        name = protocol.required_name(payload, "StreamName")
        mode = (payload.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
        count = payload.get("ShardCount")
        if count is None and mode == "ON_DEMAND":
            count = ON_DEMAND_SHARDS
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_SHARDS:
            raise invalid_argument(f"ShardCount must be an integer from 1 to {MAX_SHARDS}, not {count!r}")
        if name in self.streams:
            raise ServiceError(
                400, "ResourceInUseException", f"Stream {name} under account {protocol.ACCOUNT} already exists."
            )
        self.streams[name] = Stream(name, time.time(), ShardMap(count, _FIRST_SEQUENCE), mode)
        return {}

    def delete_stream(self, payload: dict, call: Call) -> dict:
        del self.streams[self.stream(payload).name]
        return {}

    def _summary(self, stream: Stream) -> dict:
        return {
            "StreamName": stream.name,
            "StreamARN": stream.arn,
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": {"StreamMode": stream.mode},
            "RetentionPeriodHours": 24,
            "StreamCreationTimestamp": stream.created,
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
        }

    def describe_stream_summary(self, payload: dict, call: Call) -> dict:
        stream = self.stream(payload)
        summary = self._summary(stream) | {"OpenShardCount": len(stream.shards.shards), "ConsumerCount": 0}
        return {"StreamDescriptionSummary": summary}

    def describe_stream(self, payload: dict, call: Call) -> dict:
        stream = self.stream(payload)
        description = self._summary(stream) | {"Shards": self._shards(stream), "HasMoreShards": False}
        return {"StreamDescription": description}

    def list_streams(self, payload: dict, call: Call) -> dict:
        names = sorted(self.streams)
        summaries = [
            {
                "StreamName": name,
                "StreamARN": self.streams[name].arn,
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": {"StreamMode": self.streams[name].mode},
                "StreamCreationTimestamp": self.streams[name].created,
            }
            for name in names
        ]
        return {"StreamNames": names, "HasMoreStreams": False, "StreamSummaries": summaries}

    def list_shards(self, payload: dict, call: Call) -> dict:
        return {"Shards": self._shards(self.stream(payload))}

    @staticmethod
    def _shards(stream: Stream) -> list[dict]:
        return [
            {
                "ShardId": shard.shard_id,
                "HashKeyRange": {"StartingHashKey": str(shard.start), "EndingHashKey": str(shard.end)},
                "SequenceNumberRange": {"StartingSequenceNumber": str(shard.starting_sequence)},
            }
            for shard in stream.shards.shards
        ]

    # -- writes ----------------------------------------------------------------------------------

    def put_records(self, payload: dict, call: Call) -> dict:
        stream = self.stream(payload)
        entries = protocol.batch_entries(payload, MAX_RECORDS)
        records = [_record(entry, i) for i, entry in enumerate(entries)]
        _check_sizes(records)
        results = []
        failed = 0
        for partition_key, explicit, data, size in records:
            shard = stream.shards.for_hash_key(explicit if explicit is not None else hash_key(partition_key))
            problem = self._admit(stream, shard, size, call)
            if problem is not None:
                failed += 1
                results.append({"ErrorCode": problem.code, "ErrorMessage": problem.message})
                continue
            results.append(
                {
                    "SequenceNumber": self._append(stream, shard, partition_key, data, call.now),
                    "ShardId": shard.shard_id,
                }
            )
        call.count_records(len(records) - failed, failed)
        return {"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"}

    def put_record(self, payload: dict, call: Call) -> dict:
        stream = self.stream(payload)
        partition_key, explicit, data, size = _record(payload, None)
        _check_sizes([(partition_key, explicit, data, size)])
        shard = stream.shards.for_hash_key(explicit if explicit is not None else hash_key(partition_key))
        problem = self._admit(stream, shard, size, call)
        if problem is not None:
            call.count_records(0, 1)
            if problem.code == "InternalFailure":
                raise self.internal_error()
            raise ServiceError(400, problem.code, problem.message)
        call.count_records(1, 0)
        sequence = self._append(stream, shard, partition_key, data, call.now)
        return {"ShardId": shard.shard_id, "SequenceNumber": sequence, "EncryptionType": "NONE"}

    def _admit(self, stream: Stream, shard: Shard, size: int, call: Call) -> ServiceError | None:
        """None if the record may be written now, else the per-record error it fails with."""
        if call.record_error():
            return protocol.record_failure()
        settings = call.settings
        limits = (settings.shard_records_per_second, settings.shard_bytes_per_second)
        budget = shard.budget = budgets.current(shard.budget, limits, call.now)
        if not budget.take(size):
            call.count_fault(fault_kinds.OVER_BUDGET)
            return ServiceError(
                400,
                "ProvisionedThroughputExceededException",
                f"Rate exceeded for shard {shard.shard_id} in stream {stream.name} under account {protocol.ACCOUNT}.",
            )
        return None

    @staticmethod
    def _append(stream: Stream, shard: Shard, partition_key: str, data: bytes, now: float) -> str:
        sequence = stream.next_sequence
        stream.next_sequence += 1
        shard.records.append((sequence, now, partition_key, data))
        return str(sequence)

    # -- reads -----------------------------------------------------------------------------------

    def get_shard_iterator(self, payload: dict, call: Call) -> dict:
        stream = self.stream(payload)
        wanted = payload.get("ShardId")
        shard = stream.shards.by_id(wanted) if isinstance(wanted, str) else None
        if shard is None:
            raise protocol.not_found(
                f"Shard {wanted} in stream {stream.name} under account {protocol.ACCOUNT} not found."
            )
        kind = payload.get("ShardIteratorType")
        sequences = [record[0] for record in shard.records]
        if kind == "TRIM_HORIZON":
            position = 0
        elif kind == "LATEST":
            position = len(shard.records)
        elif kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            number = _sequence(payload.get("StartingSequenceNumber"))
            find = bisect.bisect_left if kind == "AT_SEQUENCE_NUMBER" else bisect.bisect_right
            position = find(sequences, number)
        elif kind == "AT_TIMESTAMP":
            timestamp = payload.get("Timestamp")
            if not isinstance(timestamp, int | float):
                raise invalid_argument("AT_TIMESTAMP needs a Timestamp")
            position = next((i for i, record in enumerate(shard.records) if record[1] >= timestamp), len(sequences))
        else:
            raise validation_error(
                f"Value '{kind}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set"
            )
        return {"ShardIterator": _iterator(stream.name, shard.shard_id, position)}

    def get_records(self, payload: dict, call: Call) -> dict:
        name, wanted, position = _read_iterator(payload.get("ShardIterator"))
        stream = self.stream({"StreamName": name})
        shard = stream.shards.by_id(wanted)
        if shard is None:
            raise protocol.not_found(f"Shard {wanted} in stream {name} under account {protocol.ACCOUNT} not found.")
        limit = payload.get("Limit", MAX_GET_RECORDS)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_GET_RECORDS:
            raise validation_error(f"Value '{limit}' at 'limit' failed to satisfy constraint: 1 to {MAX_GET_RECORDS}")
        batch = shard.records[position : position + limit]
        end = position + len(batch)
        behind = 0 if end >= len(shard.records) else int((call.now - shard.records[end][1]) * 1000)
        return {
            "Records": [
                {
                    "SequenceNumber": str(sequence),
                    "ApproximateArrivalTimestamp": arrival,
                    "Data": protocol.encode_blob(data),
                    "PartitionKey": partition_key,
                }
                for sequence, arrival, partition_key, data in batch
            ],
            "NextShardIterator": _iterator(name, wanted, end),
            "MillisBehindLatest": max(0, behind),
        }

    # -- inspection ------------------------------------------------------------------------------

    def overview(self) -> dict:
        return {
            name: {"shards": {shard.shard_id: len(shard.records) for shard in stream.shards.shards}}
            for name, stream in self.streams.items()
        }

    def dump(self, name: str) -> list[dict]:
        """Every record of a stream, shard by shard in order of arrival, data in base64."""
        stream = self.stream({"StreamName": name})
        return [
            {
                "shard_id": shard.shard_id,
                "sequence_number": str(sequence),
                "partition_key": partition_key,
                "arrival": arrival,
                "data": protocol.encode_blob(data),
            }
            for shard in stream.shards.shards
            for sequence, arrival, partition_key, data in shard.records
        ]


def _record(entry: object, index: int | None) -> tuple[str, int | None, bytes, int]:
    """(partition key, explicit hash key, data, size counted against the quotas) of one entry."""
    where = "partitionKey" if index is None else f"records.{index + 1}.member.partitionKey"
    if not isinstance(entry, dict):
        raise protocol.ServiceError(400, "SerializationException", "Each record must be a JSON object")
    partition_key = entry.get("PartitionKey")
    if not isinstance(partition_key, str) or not 1 <= len(partition_key) <= MAX_PARTITION_KEY:
        raise validation_error(
            f"Value at '{where}' failed to satisfy constraint: Member must have length less than or equal to "
            f"{MAX_PARTITION_KEY} and greater than or equal to 1"
        )
    data = protocol.blob(entry.get("Data"), "Data")
    explicit = entry.get("ExplicitHashKey")
    explicit_key = None
    if explicit is not None:
        if not isinstance(explicit, str) or not explicit.isdigit() or int(explicit) >= HASH_KEY_LIMIT:
            raise invalid_argument(f"ExplicitHashKey {str(explicit)[:50]!r} is not a hash key (0 to 2^128 - 1)")
        explicit_key = int(explicit)
    return partition_key, explicit_key, data, len(data) + len(partition_key.encode("utf-8"))


def _check_sizes(records: list[tuple[str, int | None, bytes, int]]) -> None:
    total = 0
    for i, (_, _, _, size) in enumerate(records):
        if size > MAX_RECORD_BYTES:
            raise invalid_argument(
                f"Record {i} has {size} bytes of data and partition key; the maximum is {MAX_RECORD_BYTES}"
            )
        total += size
    if total > MAX_REQUEST_BYTES:
        raise invalid_argument(
            f"Records size exceeds {MAX_REQUEST_BYTES // (1024 * 1024)} MB limit: the request has {total} bytes "
            "of data and partition keys"
        )


def _sequence(value: object) -> int:
    if not isinstance(value, str) or not value.isdigit():
        raise invalid_argument(f"StartingSequenceNumber {str(value)[:60]!r} is not a sequence number")
    return int(value)


def _iterator(name: str, shard_id: str, position: int) -> str:
    return protocol.encode_blob(msgspec.json.encode([name, shard_id, position]))


def _read_iterator(value: object) -> tuple[str, str, int]:
    try:
        name, wanted, position = msgspec.json.decode(protocol.blob(value, "ShardIterator"))
    except (ServiceError, msgspec.DecodeError, TypeError, ValueError):
        raise invalid_argument("Invalid ShardIterator.") from None
    if not (isinstance(name, str) and isinstance(wanted, str) and isinstance(position, int)):
        raise invalid_argument("Invalid ShardIterator.")
    return name, wanted, position

"""Kinesis shards: the 128-bit hash-key space split evenly, and which shard a partition key lands on.

The service hashes a partition key with MD5 and reads the digest as a big-endian 128-bit integer;
a record goes to the shard whose hash-key range holds that integer (or holds ``ExplicitHashKey``
when one is given). A new stream's N shards split the space into N contiguous ranges of equal size.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field

from airflow_provider_pinpoint.emulator.streams.budget import Budget

HASH_KEY_LIMIT = 2**128  # hash keys are 0 .. 2**128 - 1


def hash_key(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def even_ranges(count: int) -> list[tuple[int, int]]:
    """``count`` contiguous (start, end) ranges, inclusive, covering the whole hash-key space."""
    step = HASH_KEY_LIMIT // count
    starts = [i * step for i in range(count)]
    ends = [start - 1 for start in starts[1:]] + [HASH_KEY_LIMIT - 1]
    return list(zip(starts, ends, strict=True))


def shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


@dataclass(slots=True)
class Shard:
    """One shard: its range, its records in arrival order, and its write budget."""

    shard_id: str
    start: int
    end: int
    starting_sequence: int
    # (sequence number, arrival time in epoch seconds, partition key, data), in order of arrival.
    records: list[tuple[int, float, str, bytes]] = field(default_factory=list)
    budget: Budget | None = None


class ShardMap:
    """The shards of one stream and the lookup from hash key to shard."""

    def __init__(self, count: int, first_sequence: int) -> None:
        self.shards = [
            Shard(shard_id(i), start, end, first_sequence) for i, (start, end) in enumerate(even_ranges(count))
        ]
        self._starts = [shard.start for shard in self.shards]

    def for_hash_key(self, key: int) -> Shard:
        return self.shards[bisect.bisect_right(self._starts, key) - 1]

    def by_id(self, wanted: str) -> Shard | None:
        return next((shard for shard in self.shards if shard.shard_id == wanted), None)

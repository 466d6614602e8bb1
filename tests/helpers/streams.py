"""boto3's Kinesis and Firehose clients for the emulator, and partition keys chosen by the shard they land on."""

from __future__ import annotations

import hashlib

import boto3
from botocore.config import Config


def stream_client(service: str, url: str, *, read_timeout: float = 10, attempts: int = 1):
    """A real ``kinesis`` or ``firehose`` client at ``url``; botocore retries off unless ``attempts`` says."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": attempts}, connect_timeout=5, read_timeout=read_timeout),
    )


def md5_hash_key(partition_key: str) -> int:
    """What Kinesis documents: the MD5 of the key as a 128-bit big-endian integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


def shard_of(shards: list[dict], partition_key: str) -> str:
    """The id of the shard (from ListShards) whose hash-key range holds the key's hash."""
    key = md5_hash_key(partition_key)
    for shard in shards:
        hash_range = shard["HashKeyRange"]
        if int(hash_range["StartingHashKey"]) <= key <= int(hash_range["EndingHashKey"]):
            return shard["ShardId"]
    raise AssertionError(f"no shard holds the hash key of {partition_key!r}")


def keys_on(shards: list[dict], shard_id: str, count: int, prefix: str = "k") -> list[str]:
    """``count`` distinct partition keys that land on ``shard_id``."""
    keys: list[str] = []
    n = 0
    while len(keys) < count:
        key = f"{prefix}-{n}"
        if shard_of(shards, key) == shard_id:
            keys.append(key)
        n += 1
    return keys

"""Seeded synthetic endpoints and events tables, in the import-job column convention, as Parquet.

The same seed gives the same bytes, so two runs of the harness (and the two contenders within a run)
work on identical data. Every endpoint has at least one event, so that a contender which sends only
events still delivers every endpoint, and events come in random endpoint order, as they would from an
event log: grouping them by endpoint is part of the work being measured.

Addresses are synthetic (``example.com`` mailboxes and ``+1555`` numbers), never real ones.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_CHUNK_ROWS = 500_000
_BASE_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_EVENT_TYPES = np.array(["view", "click", "add_to_cart", "purchase", "signup"])
_WORDS = np.array(["red", "green", "blue", "alpha", "beta", "gamma", "north", "south", "east", "west"])
_LOCALES = np.array(["en_US", "de_DE", "fr_FR", "es_ES", "ja_JP"])
_COUNTRIES = np.array(["US", "DE", "FR", "ES", "JP"])
_PLATFORMS = np.array(["ios", "android", "web"])


@dataclass(frozen=True)
class Dataset:
    events: Path
    endpoints: Path
    event_count: int
    endpoint_count: int
    head: Path | None = None  # the first ``head_count`` events, for a contender that runs on a prefix
    head_count: int = 0


def _ids(prefix: str, start: int, stop: int, width: int) -> pa.Array:
    numbers = pc.utf8_lpad(pa.array(np.arange(start, stop)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, numbers, "")


def _pick(rng: np.random.Generator, values: np.ndarray, n: int) -> pa.Array:
    return pa.array(values[rng.integers(0, len(values), n)])


def _endpoints_table(rng: np.random.Generator, n: int, attributes: int) -> pa.Table:
    email = rng.random(n) < 0.7
    numbers = pa.array(np.arange(n)).cast(pa.string())
    address = np.where(
        email,
        pc.binary_join_element_wise("user", numbers, "@example.com", "").to_numpy(zero_copy_only=False),
        pc.binary_join_element_wise("+1555", pc.utf8_lpad(numbers, 7, "0"), "").to_numpy(zero_copy_only=False),
    )
    columns = {
        "Id": _ids("ep-", 0, n, 9),
        "ChannelType": pa.array(np.where(email, "EMAIL", "SMS")),
        "Address": pa.array(address),
        "OptOut": pa.array(np.full(n, "NONE")),
        "Demographic.Locale": _pick(rng, _LOCALES, n),
        "Demographic.Platform": _pick(rng, _PLATFORMS, n),
        "Location.Country": _pick(rng, _COUNTRIES, n),
        "User.UserId": _ids("user-", 0, n, 9),
        "Metrics.lifetime_value": pa.array(np.round(rng.gamma(2.0, 50.0, n), 2)),
    }
    for a in range(attributes):
        sizes = rng.integers(1, 3, n)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
        values = _pick(rng, _WORDS, int(offsets[-1]))
        columns[f"Attributes.interest_{a}"] = pa.ListArray.from_arrays(pa.array(offsets), values)
    return pa.table(columns)


def _events_table(
    rng: np.random.Generator, start: int, endpoint_index: np.ndarray, attributes: int, metrics: int
) -> pa.Table:
    n = len(endpoint_index)
    timestamps = _BASE_TIME_MS + rng.integers(0, 30 * 86_400_000, n)
    session_start = timestamps - rng.integers(0, 1_800_000, n)
    event_type = _EVENT_TYPES[rng.integers(0, len(_EVENT_TYPES), n)]
    columns = {
        "EndpointId": pc.binary_join_element_wise(
            "ep-", pc.utf8_lpad(pa.array(endpoint_index).cast(pa.string()), 9, "0"), ""
        ),
        "EventId": _ids("ev-", start, start + n, 11),
        "EventType": pa.array(event_type),
        "Timestamp": pa.array(timestamps, pa.timestamp("ms", tz="UTC")),
        "Session.Id": _ids("s-", start, start + n, 11),
        "Session.StartTimestamp": pa.array(session_start, pa.timestamp("ms", tz="UTC")),
    }
    for a in range(attributes):
        values = _WORDS[rng.integers(0, len(_WORDS), n)]
        columns[f"Attributes.tag_{a}"] = pa.array(values, mask=rng.random(n) < 0.1)
    for m in range(metrics):
        columns[f"Metrics.amount_{m}"] = pa.array(np.round(rng.random(n) * 100, 2), mask=event_type != "purchase")
    return pa.table(columns)


def generate(
    directory: Path,
    *,
    events: int,
    endpoints: int,
    event_attributes: int = 3,
    event_metrics: int = 1,
    endpoint_attributes: int = 2,
    head: int = 0,
    seed: int = 0,
) -> Dataset:
    """Write ``endpoints.parquet`` and ``events.parquet`` (and ``events_head.parquet`` if ``head``) to ``directory``."""
    if events < endpoints:
        raise ValueError("need at least one event per endpoint")
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    endpoints_path = directory / "endpoints.parquet"
    pq.write_table(_endpoints_table(rng, endpoints, endpoint_attributes), endpoints_path)

    owner = np.concatenate([np.arange(endpoints), rng.integers(0, endpoints, events - endpoints)])
    rng.shuffle(owner)
    events_path = directory / "events.parquet"
    head_path = directory / "events_head.parquet" if head else None
    writer = None
    try:
        for start in range(0, events, _CHUNK_ROWS):
            chunk = _events_table(rng, start, owner[start : start + _CHUNK_ROWS], event_attributes, event_metrics)
            if writer is None:
                writer = pq.ParquetWriter(events_path, chunk.schema)
                if head_path is not None:
                    pq.write_table(chunk.slice(0, head), head_path)
            writer.write_table(chunk)
    finally:
        if writer is not None:
            writer.close()
    return Dataset(events_path, endpoints_path, events, endpoints, head_path, min(head, events) if head else 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    dataset = generate(args.directory, events=args.events, endpoints=args.endpoints, seed=args.seed)
    print(f"wrote {dataset.events} and {dataset.endpoints}")


if __name__ == "__main__":
    main()

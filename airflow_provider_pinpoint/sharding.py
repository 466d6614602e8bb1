"""Cut a large load into self-contained shards that can run anywhere.

A backfill too big for one worker is hash-partitioned by endpoint id into N shards. Every endpoint
row and every event of that endpoint land in the same shard, so a shard can be loaded on its own:
the loader joins events to endpoints inside one shard and never needs another. Shards are Parquet
part files in a staging location (a local directory or any fsspec URL), written while the input is
streamed, so planning holds one input batch in memory and loading holds one shard.

The ``_source``/``_source_row`` columns of the original input travel with the rows, so each
shard's results still name the user's file and row, not the shard file.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import SOURCE
from airflow_provider_pinpoint.prepare.read import check_mapping, describe_source, read_batches
from airflow_provider_pinpoint.progress import duration

log = logging.getLogger(__name__)

# How often a long plan logs how far it got.
PROGRESS_EVERY_S = 10.0

Kind = Literal["events", "endpoints"]

# The column holding the endpoint id in each table (import-job convention).
ENDPOINT_ID_COLUMN: dict[Kind, str] = {"endpoints": "Id", "events": "EndpointId"}

# What describe_source calls the inputs that have no file name of their own.
_IN_MEMORY = ("DataFrame", "Arrow table")

# Counters that add up across shards; anything else in a summary is handled by name below.
_ADDITIVE = (
    "input_rows",
    "accepted",
    "rejected",
    "failed",
    "skipped",
    "requests",
    "retries",
    "events_accepted",
    "unchanged",
    "already_sent",
)


def shard_of(endpoint_id: str | None, shards: int) -> int:
    """The shard an endpoint id belongs to: stable across processes and runs, case-insensitive.

    Python's ``hash()`` is salted per process, so a keyed digest is used instead. Rows without an
    endpoint id go to shard 0, where validation rejects them with their original source row.
    """
    if endpoint_id is None:
        return 0
    digest = hashlib.blake2b(endpoint_id.lower().encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def plan_shards(
    events: Any = None,
    endpoints: Any = None,
    *,
    staging: str,
    shards: int,
    column_mapping: Mapping[str, Any] | None = None,
    csv_list_delimiter: str | None = None,
    batch_rows: int = 65_536,
) -> list[dict[str, Any]]:
    """Hash-partition the tables by endpoint id into ``shards`` Parquet shards under ``staging``.

    The shard paths are spelled like ``staging`` (a relative path stays relative, a URL keeps its
    scheme), so the descriptors mean the same on every worker that sees the same storage.

    ``events`` and ``endpoints`` take what the loader takes (path, directory, glob, URL, DataFrame),
    or a list of those, e.g. one date partition per day of a backfill.

    Returns one descriptor per non-empty shard, in shard order::

        {"shard": 3, "events": "<staging>/shard=00003/events", "events_rows": 1200,
         "endpoints": "<staging>/shard=00003/endpoints", "endpoints_rows": 40, "rows": 1240}

    In a list, a DataFrame or Arrow table at position ``i`` is named ``events[i]`` (``endpoints[i]``)
    in ``_source``: two of them would otherwise both be ``events`` with rows counted from 1, and
    their results would name the same rows.

    ``events``/``endpoints`` are ``None`` when the shard has no rows of that kind. The paths are
    directories of part files that the loader reads as they are, with no ``column_mapping`` (the
    mapping and ``csv_list_delimiter`` are applied here). Shard directories left in ``staging`` by
    an earlier attempt are removed first, so a retried plan never mixes two partitionings.
    """
    if events is None and endpoints is None:
        raise InputError("plan_shards needs events, endpoints or both; got neither.")
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}.")
    # A shared mapping may name a column of either table: only both inputs together tell a stale
    # entry from one meant for the other table (per-table mappings are checked file by file).
    check_mapping(column_mapping, events=_first(events), endpoints=_first(endpoints))
    fs, root = fsspec.core.url_to_fs(staging)
    root = root.rstrip("/")
    _clear_old_shards(fs, root)

    counts: dict[Kind, np.ndarray] = {}
    inputs: tuple[tuple[Kind, Any], ...] = (("endpoints", endpoints), ("events", events))
    for kind, source in inputs:
        if source is None:
            continue
        batches = _read_all(
            source, kind, column_mapping=column_mapping, csv_list_delimiter=csv_list_delimiter, batch_rows=batch_rows
        )
        counts[kind] = _partition(batches, kind=kind, fs=fs, root=root, shards=shards)

    descriptors = []
    for shard in range(shards):
        rows = {kind: int(counts[kind][shard]) if kind in counts else 0 for kind in ("events", "endpoints")}
        if not any(rows.values()):
            continue
        descriptors.append(
            {
                "shard": shard,
                "events": _shard_dir(staging.rstrip("/"), shard, "events") if rows["events"] else None,
                "events_rows": rows["events"],
                "endpoints": _shard_dir(staging.rstrip("/"), shard, "endpoints") if rows["endpoints"] else None,
                "endpoints_rows": rows["endpoints"],
                "rows": rows["events"] + rows["endpoints"],
            }
        )
    return descriptors


def sum_summaries(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up the load summaries (``LoadSummary.to_dict()``, as XCom holds them) of the shards of one backfill.

    Counts, requests and accepted events add up. ``duration_s`` is the wall-clock span from the
    first shard's start to the last one's end, whether the shards ran side by side or one after
    another (the sum of their durations if a summary lacks its times), and ``events_per_s`` is the
    accepted events over that span. ``results`` lists every shard's results location; ``run_id`` is
    kept when all shards share it.
    """
    summaries = list(summaries)
    total: dict[str, Any] = dict.fromkeys(_ADDITIVE, 0)
    total["results"] = []
    total["shards"] = len(summaries)
    run_ids = set()
    for summary in summaries:
        for key in _ADDITIVE:
            total[key] += summary.get(key) or 0
        if "events_accepted" not in summary:
            total["events_accepted"] += round((summary.get("events_per_s") or 0) * (summary.get("duration_s") or 0))
        if summary.get("results"):
            total["results"].append(summary["results"])
        if summary.get("run_id"):
            run_ids.add(summary["run_id"])
    duration = _span_s(summaries)
    total["duration_s"] = round(duration, 3)
    total["events_per_s"] = round(total["events_accepted"] / duration, 1) if duration > 0 else 0.0
    total["run_id"] = run_ids.pop() if len(run_ids) == 1 else None
    return total


def _span_s(summaries: list[Mapping[str, Any]]) -> float:
    """Seconds from the first start to the last end; the sum of the durations when a summary's times are
    missing or unreadable (a naive time is UTC, as the loader writes them)."""
    starts = [moment for summary in summaries if (moment := _instant(summary.get("started_at")))]
    ends = [moment for summary in summaries if (moment := _instant(summary.get("finished_at")))]
    if summaries and len(starts) == len(ends) == len(summaries):
        return (max(ends) - min(starts)).total_seconds()
    return float(sum(summary.get("duration_s") or 0.0 for summary in summaries))


def _instant(text: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime; None if it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _read_all(source: Any, kind: Kind, **options: Any) -> Iterator[pa.RecordBatch]:
    """The batches of ``source``, or of each source of a list in turn, in-memory ones named by their position."""
    listed = isinstance(source, list | tuple)
    for index, one in enumerate(source if listed else [source]):
        batches = read_batches(one, kind=kind, **options)
        if listed and describe_source(one) in _IN_MEMORY:
            batches = (_renamed(batch, kind, f"{kind}[{index}]") for batch in batches)
        yield from batches


def _renamed(batch: pa.RecordBatch, old: str, new: str) -> pa.RecordBatch:
    """``batch`` with the ``_source`` value ``old`` replaced (a DataFrame carrying its own ``_source`` keeps it)."""
    position = batch.schema.get_field_index(SOURCE)
    sources = batch.column(position)
    renamed = pc.if_else(pc.equal(sources, old), pa.scalar(new, sources.type), sources)
    return batch.set_column(position, SOURCE, renamed)


def _first(source: Any) -> Any:
    return source[0] if isinstance(source, list | tuple) and source else source


def _shard_dir(root: str, shard: int, kind: Kind) -> str:
    return f"{root}/shard={shard:05d}/{kind}"


def _clear_old_shards(fs: fsspec.AbstractFileSystem, root: str) -> None:
    if not fs.exists(root):
        return
    for path in fs.glob(f"{root}/shard=*"):
        fs.rm(path, recursive=True)


def _partition(
    batches: Iterable[pa.RecordBatch], *, kind: Kind, fs: fsspec.AbstractFileSystem, root: str, shards: int
) -> np.ndarray:
    """Stream ``batches`` into per-shard part files; return the row count of each shard."""
    writers = _ShardWriters(fs, root, kind)
    counts = np.zeros(shards, dtype=np.int64)
    column = ENDPOINT_ID_COLUMN[kind]
    started = shown = time.monotonic()
    try:
        for batch in batches:
            now = time.monotonic()
            if now - shown >= PROGRESS_EVERY_S:  # a long plan must not look like a hang in the task log
                shown = now
                done = int(counts.sum())
                log.info(
                    "planning shards: %s rows of %s partitioned (%s rows/s)",
                    f"{done:,}",
                    kind,
                    f"{done / (now - started):,.0f}",
                )
            if column not in batch.schema.names:
                source = batch.column("_source")[0].as_py() if batch.num_rows else kind
                raise InputError(
                    f"{source}: the {kind} table has no {column!r} column, so it cannot be sharded by endpoint id; "
                    f"map your id column onto it with column_mapping."
                )
            shard_ids = _shard_ids(batch.column(column), shards)
            per_shard = np.bincount(shard_ids, minlength=shards)
            ordered = batch.take(pa.array(np.argsort(shard_ids, kind="stable")))
            offset = 0
            for shard in np.flatnonzero(per_shard):
                rows = int(per_shard[shard])
                writers.write(int(shard), ordered.slice(offset, rows))
                offset += rows
            counts += per_shard
    finally:
        writers.close()
    log.info(
        "planning shards: %s rows of %s in %s shards, in %s",
        f"{int(counts.sum()):,}",
        kind,
        int(np.count_nonzero(counts)),
        duration(time.monotonic() - started),
    )
    return counts


def _shard_ids(ids: pa.Array, shards: int) -> np.ndarray:
    """The shard of every row, hashing each distinct (lower-cased) id once."""
    lowered = pc.utf8_lower(ids.cast(pa.string()))
    distinct = pc.unique(lowered)
    shard_of_distinct = pa.array([shard_of(value, shards) for value in distinct.to_pylist()], pa.int64())
    positions = pc.index_in(lowered, value_set=distinct)
    return pc.take(shard_of_distinct, positions).to_numpy(zero_copy_only=False)


class _ShardWriters:
    """One open Parquet writer per shard; a batch whose schema differs starts a new part file.

    Part files of one input file share a schema; different input files (e.g. CSV with different
    inferred types) get their own parts, which the loader reads one by one.
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, kind: Kind) -> None:
        self._fs = fs
        self._root = root
        self._kind = kind
        self._open: dict[int, tuple[pq.ParquetWriter, Any]] = {}
        self._parts: dict[int, int] = {}

    def write(self, shard: int, batch: pa.RecordBatch) -> None:
        current = self._open.get(shard)
        if current is not None and not current[0].schema.equals(batch.schema):
            self._close(shard)
            current = None
        if current is None:
            current = self._start_part(shard, batch.schema)
        current[0].write_batch(batch)

    def close(self) -> None:
        for shard in list(self._open):
            self._close(shard)

    def _start_part(self, shard: int, schema: pa.Schema) -> tuple[pq.ParquetWriter, Any]:
        part = self._parts.get(shard, 0)
        self._parts[shard] = part + 1
        directory = _shard_dir(self._root, shard, self._kind)
        self._fs.makedirs(directory, exist_ok=True)
        handle = self._fs.open(f"{directory}/part-{part:05d}.parquet", "wb")
        writer = pq.ParquetWriter(handle, schema)
        self._open[shard] = (writer, handle)
        return writer, handle

    def _close(self, shard: int) -> None:
        writer, handle = self._open.pop(shard)
        writer.close()
        handle.close()

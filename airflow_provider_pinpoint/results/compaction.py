"""Compaction: the earlier table and every journal become one row per input row.

A row may be recorded more than once (a failure, then a resend; a rerun after a kill). Within one
input row, a final decision (accepted or rejected) beats a failure and a later row beats an earlier
one. Rows are keyed by one int64 each, so finding whether any repeats is one pass (sorted only when
one does, or when the keys are too spread out for that), and the table is written in a second
streaming pass: memory stays at about two int64 per row plus one batch. (A small run's rows, up to
a few tens of MB, are kept from the first pass for the second instead of being read again: see
``ResultsStore.compact``.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.errors import PinpointLoaderError
from airflow_provider_pinpoint.prepare.columns import MAX_SOURCE_ROW
from airflow_provider_pinpoint.prepare.requests import EVENT
from airflow_provider_pinpoint.results.rows import FINAL_STATUSES, single_value

# A key's fields, low to high: the row number, the source's code, the record type.
_ROW_WIDTH = MAX_SOURCE_ROW.bit_length()
_ROW_BITS = MAX_SOURCE_ROW
_SOURCE_WIDTH = 22
_SOURCE_BITS = (1 << _SOURCE_WIDTH) - 1
_TYPE_SHIFT = _ROW_WIDTH + _SOURCE_WIDTH


class KeyCodes:
    """Folds (record_type, source, source_row) into one int64 per row, batch after batch.

    Sources get codes in the order they first appear (22 bits), rows keep their number (40 bits),
    the record type takes the top bit: numpy then finds repeated rows in one pass (:func:`_repeats`).
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def __call__(self, batch: pa.RecordBatch) -> np.ndarray:
        sources = self._sources(batch.column("source"))
        rows = batch.column("source_row").to_numpy(zero_copy_only=False).astype(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() > MAX_SOURCE_ROW or len(self._codes) >= 1 << 21):
            raise ValueError("results key out of range (source_row >= 2^40 or over 2M sources)")
        return (_is_event(batch.column("record_type")) << _TYPE_SHIFT) | (sources << _ROW_WIDTH) | rows

    def _sources(self, column: pa.Array) -> np.ndarray | np.int64:
        """The sources' codes, one per row, or the one code of a batch from one source."""
        single = single_value(column)
        if single is not None:
            return np.int64(self._codes.setdefault(single[0].as_py(), len(self._codes)))
        sources = pc.dictionary_encode(column)
        mapping = np.array(
            [self._codes.setdefault(name, len(self._codes)) for name in sources.dictionary.to_pylist()], dtype=np.int64
        )
        return mapping[sources.indices.to_numpy(zero_copy_only=False)]


def _is_event(column: pa.Array) -> np.ndarray | np.int64:
    """1 where a row is an event's, else 0 (one number for a batch of one record type)."""
    single = single_value(column)
    if single is not None:
        return np.int64(single[0].as_py() == EVENT)
    return pc.equal(column, EVENT).to_numpy(zero_copy_only=False).astype(np.int64)


def is_final(batch: pa.RecordBatch) -> np.ndarray:
    """Where a row's status is final (accepted or rejected), as a numpy mask."""
    single = single_value(batch.column("status"))
    if single is not None:
        return np.full(batch.num_rows, single[0].as_py() in FINAL_STATUSES)
    return pc.is_in(batch.column("status"), pa.array(FINAL_STATUSES)).to_numpy(zero_copy_only=False)


def keep_mask(key: np.ndarray, final: np.ndarray) -> np.ndarray | None:
    """Which rows survive, or None when no row repeats (keep them all).

    Sorted by (key, final, order), the last row of each key wins.
    """
    n = len(key)
    if n < 2 or not _repeats(key):
        return None
    order = np.lexsort((np.arange(n), final, key))
    ordered = key[order]
    keep = np.zeros(n, dtype=bool)
    keep[order[np.append(ordered[1:] != ordered[:-1], True)]] = True
    return keep


def _repeats(key: np.ndarray) -> bool:
    """Whether any key (:class:`KeyCodes`) comes twice.

    Rows are numbered from 1 in each source, so the keys of most tables, spread out as (record type,
    source) * (largest row + 1) + row, fit in a table of at most 4 booleans per row: marking it takes
    one pass, where sorting a million keys took four times as long (compaction sorts only when a row
    repeats). The keys are taken a chunk at a time, so that besides that table this holds one chunk's
    temporaries, not several copies of the keys. Keys too spread out for that are sorted, as before.
    """
    n = len(key)
    span = groups = 0
    for start in range(0, n, _CHUNK):
        part = key[start : start + _CHUNK]
        if int(part.min()) < 0:  # not a key KeyCodes makes
            return _sorted_repeats(key)
        span = max(span, int((part & _ROW_BITS).max()) + 1)
        groups = max(groups, int(_group(part).max()) + 1)
    size = groups * span
    if size > 4 * n + (1 << 16):
        return _sorted_repeats(key)
    seen = np.zeros(size, dtype=bool)
    marked = 0
    for start in range(0, n, _CHUNK):
        part = key[start : start + _CHUNK]
        at = _group(part)
        at *= span
        at += part & _ROW_BITS
        seen[at] = True
        marked += len(part)
    return int(np.count_nonzero(seen)) != marked


def _group(keys: np.ndarray) -> np.ndarray:
    """(source << 1) | record type: a small number for each of the key's (record type, source)."""
    high = keys >> _ROW_WIDTH  # (record type << _SOURCE_WIDTH) | source
    group = high & _SOURCE_BITS
    group <<= 1
    high >>= _SOURCE_WIDTH
    group |= high
    return group


def _sorted_repeats(key: np.ndarray) -> bool:
    ordered = np.sort(key)
    return bool((ordered[1:] == ordered[:-1]).any())


_CHUNK = 1 << 20


class ResultsChanged(PinpointLoaderError):
    """The rows read for compaction changed between its two passes: the keep mask no longer fits them."""


def survivors(batches: Iterable[pa.RecordBatch]) -> tuple[np.ndarray | None, int]:
    """The first pass: :func:`keep_mask` over every row of ``batches``, in the order given, and how
    many rows that was (the second pass must meet exactly as many).

    The per-batch keys are joined and dropped before the sort: at 5 million rows each copy of the
    keys is 40 MB, and compaction runs at the end of a load, on top of what it held.
    """
    codes = KeyCodes()
    keys: list[np.ndarray] = []
    finals: list[np.ndarray] = []
    for batch in batches:
        keys.append(codes(batch))
        finals.append(is_final(batch))
    key = np.concatenate(keys) if keys else np.empty(0, dtype=np.int64)
    del keys
    return keep_mask(key, np.concatenate(finals) if finals else np.empty(0, dtype=bool)), len(key)


def write_survivors(
    batches: Iterable[pa.RecordBatch], keep: np.ndarray | None, rows: int, writer: Any
) -> dict[str, int]:
    """The second pass: write the rows ``keep`` marks (all when None); return them counted by status.

    ``rows``: how many the first pass read. Meeting another number (a journal grew, shrank or went
    between the passes) is :class:`ResultsChanged`: the mask would keep the wrong rows.
    """
    counts: dict[str, int] = {}
    offset = 0
    for batch in batches:
        n = batch.num_rows
        if offset + n > rows:
            raise changed()
        if keep is not None:
            batch = batch.filter(pa.array(keep[offset : offset + n]))
        offset += n
        writer.write_batch(batch)
        add_counts(counts, batch)
    if offset != rows:
        raise changed()
    return counts


def changed() -> ResultsChanged:
    """The error for rows that changed between compaction's two passes."""
    return ResultsChanged(
        "the results journals changed while they were compacted (is another run writing to the same results "
        "location?); nothing was removed: rerun with the same results location once that run has ended"
    )


def latest(table: pa.Table) -> pa.Table:
    """One row per input row, in the order written (the in-memory form of compaction)."""
    keep, _ = survivors(table.to_batches())
    return table if keep is None else table.filter(pa.array(keep))


def add_counts(counts: dict[str, int], batch: pa.RecordBatch) -> None:
    """Add ``batch``'s rows to ``counts``, by status."""
    single = single_value(batch.column("status"))
    if single is not None:
        status = single[0].as_py()
        counts[status] = counts.get(status, 0) + batch.num_rows
        return
    for entry in pc.value_counts(batch.column("status")).to_pylist():
        counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]

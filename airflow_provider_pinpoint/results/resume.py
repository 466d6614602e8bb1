"""Resume: which input rows an earlier run on the same results location settled, and dropping them.

A results table (with any journals a killed run left) says which rows were accepted or rejected;
a rerun skips exactly those rows, after checking that they are the rows the table was written for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import SOURCE, SOURCE_ROW


class DoneRows(AbstractSet):
    """The settled ``source_row`` numbers of one source (a set of ints), with the ids recorded for each.

    Kept as sorted arrays rather than Python ints: a resumed run over millions of rows holds one
    int64 and two strings per row. Where a row was recorded more than once, the latest word counts.
    """

    def __init__(self, table: pa.Table, location: str) -> None:
        rows = table.column("source_row").to_numpy()
        # Latest first, then a stable sort by row: the first of each run of equal rows is the latest.
        latest = np.arange(len(rows))[::-1]
        order = latest[np.argsort(rows[latest], kind="stable")]
        ordered = rows[order]
        first = np.append(True, ordered[1:] != ordered[:-1]) if len(ordered) else np.zeros(0, dtype=bool)
        keep = pa.array(order[first])
        self.rows = ordered[first]
        self.endpoint_ids = table.column("endpoint_id").take(keep).combine_chunks()
        self.event_ids = table.column("event_id").take(keep).combine_chunks()
        self.location = location

    def __contains__(self, row: object) -> bool:
        if not isinstance(row, int | np.integer):
            return False
        i = int(np.searchsorted(self.rows, row))
        return i < len(self.rows) and self.rows[i] == row

    def __iter__(self) -> Iterator[int]:
        return iter(self.rows.tolist())

    def __len__(self) -> int:
        return len(self.rows)


class SkipDone:
    """Drops the rows ``skip`` names, with the value sets built once rather than per batch.

    When ``skip`` came from a results table (:class:`DoneRows`,
    which carries the ids recorded for each row), every dropped row's endpoint id, and event id where
    the input gives one, must be the one recorded: a source name and row number alone cannot tell a
    rerun on the same input from one on a different input, whose rows would be skipped unsent.
    """

    def __init__(self, skip: Mapping[str, Collection[int]] | None) -> None:
        self._rows = {source: rows for source, rows in (skip or {}).items() if rows}
        self._sets: dict[str, pa.Array] = {}

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self._rows:
            return batch
        sources = batch.column(SOURCE)
        rows = pc.cast(batch.column(SOURCE_ROW), pa.int64())
        drop = None
        for source in pc.unique(sources).to_pylist():
            if source not in self._rows:
                continue
            done = self._rows[source]
            if source not in self._sets:
                rows_done = getattr(done, "rows", None)
                self._sets[source] = pa.array(sorted(done) if rows_done is None else rows_done, pa.int64())
            hit = pc.fill_null(pc.and_(pc.equal(sources, source), pc.is_in(rows, value_set=self._sets[source])), False)
            if hasattr(done, "endpoint_ids"):
                _check_same_input(batch, rows, hit, source, done)
            drop = hit if drop is None else pc.or_(drop, hit)
        return batch if drop is None else batch.filter(pc.invert(drop))


def _check_same_input(batch: pa.RecordBatch, rows: pa.Array, hit: pa.Array, source: str, done: Any) -> None:
    """Raise InputError when a skipped row's ids are not the ones the results recorded for it."""
    at = np.flatnonzero(np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool))
    if len(at) == 0:
        return
    taken = pa.array(at)
    recorded_at = pa.array(np.searchsorted(done.rows, rows.take(taken).to_numpy(zero_copy_only=False)))
    id_column = "EndpointId" if "EndpointId" in batch.schema.names else "Id"
    checks = [(id_column, done.endpoint_ids, "endpoint id", True), ("EventId", done.event_ids, "event id", False)]
    for name, recorded, what, null_is_a_value in checks:
        if name in batch.schema.names:
            given = _id_text(batch.column(name).take(taken))
        elif null_is_a_value:
            given = pa.nulls(len(at), pa.string())
        else:
            continue
        want = recorded.take(recorded_at)
        same = pc.fill_null(pc.equal(given, want), False)
        absent = pc.is_null(given)
        same = pc.or_(same, pc.and_(absent, pc.is_null(want)) if null_is_a_value else absent)
        differs = np.flatnonzero(~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool))
        if len(differs):
            row = rows[int(at[differs[0]])].as_py()
            raise InputError(
                f"{source} row {row}: the results at {done.location} were written for a different input "
                f"({what} differs); use a new results location"
            )


def _id_text(values: pa.Array) -> pa.Array:
    """Ids as the validation step reads them: text (numbers by their digits), empty as absent."""
    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)

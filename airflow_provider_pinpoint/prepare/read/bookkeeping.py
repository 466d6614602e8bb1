"""Inputs that bring their own ``_source``/``_source_row`` (shard files do): checked to name each row once.

Results, resume and derived event ids know a row by that pair; two rows sharing one would share a
results row, and one of them would drop out of the accounting while its event was still sent.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.common.arrow import as_mask, repeats, valid_mask
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.coerce import is_text
from airflow_provider_pinpoint.prepare.columns import MAX_SOURCE_ROW, SOURCE, SOURCE_ROW
from airflow_provider_pinpoint.prepare.validation.state import HashSet, hashed

_WHAT_TO_DO = (
    f"{SOURCE} and {SOURCE_ROW} are the loader's bookkeeping and must name each row once; "
    f"drop them with column_mapping={{{SOURCE!r}: None, {SOURCE_ROW!r}: None}} or rename them"
)


class CarriedRows:
    """The (``_source``, ``_source_row``) pairs met so far in one input, as 64-bit hashes."""

    def __init__(self) -> None:
        self._seen = HashSet()
        self._names: set[str] = set()  # the _source values the input brought
        self._generated: dict[str, int] = {}  # the _source names the loader gave files of the input: rows so far

    def generated(self, batch: pa.RecordBatch, where: str, rows_before: int, source: str) -> None:
        """A batch of a file of the same input without its own bookkeeping, named ``source`` by the
        loader: its rows must not be named by the input's own pairs either (a directory of shard
        files and plain ones)."""
        if source in self._names:
            self.check(batch, where, rows_before)
        self._generated[source] = rows_before + batch.num_rows

    def check(self, batch: pa.RecordBatch, where: str, rows_before: int) -> None:
        """Raise InputError naming the column and data row where the pairs stop naming each row once."""
        sources, rows = batch.column(SOURCE), batch.column(SOURCE_ROW)
        if pa.types.is_dictionary(sources.type):
            sources = sources.dictionary_decode()
        if not is_text(sources.type):
            raise InputError(f"{where}: column {SOURCE} holds {sources.type} values, not text; {_WHAT_TO_DO}")
        sources = sources.cast(pa.string())  # pandas writes large_string, which the join below does not take
        if not pa.types.is_integer(rows.type):
            raise InputError(f"{where}: column {SOURCE_ROW} holds {rows.type} values, not whole numbers; {_WHAT_TO_DO}")
        for name, column in ((SOURCE, sources), (SOURCE_ROW, rows)):
            empty = ~valid_mask(column)
            if empty.any():
                raise InputError(
                    f"{where}: column {name} is empty in data row {self._row(empty, rows_before)}; {_WHAT_TO_DO}"
                )
        below = as_mask(pc.less(rows, 1))
        if below.any():
            raise InputError(
                f"{where}: column {SOURCE_ROW} is below 1 in data row {self._row(below, rows_before)}; {_WHAT_TO_DO}"
            )
        above = as_mask(pc.greater(rows, MAX_SOURCE_ROW))
        if above.any():  # the results table keys a row by 40 bits of its number: it could not be recorded
            raise InputError(
                f"{where}: column {SOURCE_ROW} is above {MAX_SOURCE_ROW:,} in data row "
                f"{self._row(above, rows_before)}; {_WHAT_TO_DO}"
            )
        names = set(pc.unique(sources).to_pylist()) - self._names
        for name in names & self._generated.keys():
            taken = as_mask(pc.and_(pc.equal(sources, name), pc.less_equal(rows, self._generated[name])))
            if taken.any():
                raise InputError(
                    f"{where}: data row {self._row(taken, rows_before)} has the {SOURCE} and {SOURCE_ROW} the loader "
                    f"gave a row of another file of this input; {_WHAT_TO_DO}"
                )
        self._names |= names
        keys = pc.binary_join_element_wise(sources, pc.cast(rows, pa.string()), "\x1f")
        hashes = hashed(keys)
        repeated = repeats(keys) | self._seen.contains(hashes)
        if repeated.any():
            raise InputError(
                f"{where}: data row {self._row(repeated, rows_before)} repeats the {SOURCE} and {SOURCE_ROW} "
                f"of an earlier row; {_WHAT_TO_DO}"
            )
        self._seen.add(hashes)

    @staticmethod
    def _row(mask: np.ndarray, rows_before: int) -> int:
        return rows_before + int(np.flatnonzero(mask)[0]) + 1

"""Repairs between pyarrow's CSV batches and the rows handed on: ragged rows put back, unclosed quotes caught.

A row with the wrong number of fields spoils only itself: it comes back in its place with null
values and a ``_read_error`` column, which validation turns into that row's rejection. A quote
never closed would swallow the rest of the file silently; it becomes an InputError naming its row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import READ_ERROR
from airflow_provider_pinpoint.prepare.read.csv_scan import FieldCounts, unclosed_quote_row, unlocated
from airflow_provider_pinpoint.prepare.read.files import File


def with_ragged_rows(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, file: File, width: int, skipped: list[int]
) -> Iterator[pa.RecordBatch]:
    """The read batches with the rows pyarrow skipped for their number of fields put back in their places.

    A put-back row has null values and a ``_read_error`` column saying what is wrong with it, so
    one ragged row costs that row only and every other row keeps its ``_source_row``. pyarrow
    reports a skipped row but not where it was (with values that may span lines it cannot count
    rows), so once it has skipped one the file is parsed again alongside with Python's csv module,
    which tells every data row's number of fields. A row is parsed before the batch holding it is
    delivered, so the scan always starts before the first ragged row.
    """
    with contextlib.ExitStack() as stack:
        scan: FieldCounts | None = None
        delivered = 0

        def started() -> FieldCounts:
            scan = stack.enter_context(contextlib.closing(FieldCounts(file, width)))
            if scan.take(delivered):
                raise unlocated(file)
            return scan

        for batch in batches:
            if scan is None and not skipped:
                delivered += batch.num_rows
                yield batch
                continue
            scan = scan or started()
            yield _put_back(batch, scan.take(batch.num_rows), width)
        if skipped:
            scan = scan or started()
            tail = scan.rest()
            if scan.ragged != len(skipped):
                raise unlocated(file)
            yield _put_back(pa.RecordBatch.from_pylist([], schema=schema), tail, width)


def _put_back(batch: pa.RecordBatch, ragged: list[tuple[int, int]], width: int) -> pa.RecordBatch:
    """``batch`` with a null row at each ragged position, and the ``_read_error`` column saying why."""
    length = batch.num_rows + len(ragged)
    is_ragged = np.zeros(length, dtype=bool)
    messages = np.full(length, None, dtype=object)
    for position, fields in ragged:
        is_ragged[position] = True
        messages[position] = (
            f"has {fields} field{'s' if fields != 1 else ''}, the header has {width}; "
            "quote values that contain commas or line breaks"
        )
    taken = batch.take(pa.array(np.cumsum(~is_ragged) - 1, mask=is_ragged)) if ragged else batch
    return taken.append_column(READ_ERROR, pa.array(messages, pa.string()))


def rebatched(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``rows`` rows (the last one may be shorter), from batches of any size."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == rows:
                yield _concatenated(pending)
                pending, count = [], 0
    if pending:
        yield _concatenated(pending)


def _concatenated(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    """One batch of the rows of ``batches``; those read before a ragged row lack its ``_read_error`` column."""
    if len(batches) == 1:
        return batches[0]
    if all(batch.schema.equals(batches[0].schema) for batch in batches):
        return pa.concat_batches(batches)
    tables = [pa.Table.from_batches([batch]) for batch in batches]
    return pa.concat_tables(tables, promote_options="default").combine_chunks().to_batches()[0]


def closed_quotes(batches: Iterable[pa.RecordBatch], file: File) -> Iterator[pa.RecordBatch]:
    """The batches, the last one held back until the file is known not to end inside a quoted value.

    A quote that is never closed turns every later line into part of one value, which pyarrow
    accepts at the end of the file: the rows after it would vanish without a word. Such a file ends
    with the row holding that value, so only when the last row has a value spanning lines, or the
    wrong number of fields, is the file scanned again, by Python's csv module, which knows an
    unclosed quote at the end of the data when it meets one.
    """
    last = None
    for batch in batches:
        if last is not None:
            yield last
        last = batch
    if last is None:
        return
    if _may_end_in_quote(last) and (row := unclosed_quote_row(file)) is not None:
        raise InputError(
            f"{file.source}: data row {row} opens a quoted value that is never closed, so every line after it was "
            "read into that value; close the quote (a quote inside a quoted value is written twice)"
        )
    yield last


def _may_end_in_quote(batch: pa.RecordBatch) -> bool:
    """Whether the batch's last row has a value with a line break in it, or is a ragged row."""
    tail = batch.slice(batch.num_rows - 1)
    for name, column in zip(tail.schema.names, tail.columns, strict=True):
        value = column[0].as_py()
        if name == READ_ERROR and value is not None:
            return True
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            return True
    return False

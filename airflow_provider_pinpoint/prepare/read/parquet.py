"""Parquet files, streamed row group by row group."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_pinpoint.common.text import first_line, scrubbed
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.read.column_plan import ReadOptions, plan
from airflow_provider_pinpoint.prepare.read.files import READ_ERRORS, File, guarded
from airflow_provider_pinpoint.prepare.read.parquet_dictionary import dictionary_leaves, plain_batches


def _unreadable(file: File, exc: BaseException) -> InputError:
    return InputError(f"{file.source}: not a readable Parquet file ({scrubbed(first_line(exc, 160))})")


@contextlib.contextmanager
def parquet_file(file: File) -> Iterator[pq.ParquetFile]:
    """The open file (its footer read), or an InputError naming it."""
    with contextlib.ExitStack() as stack:
        yield _open(file, _handle(file, stack), stack)


def read_parquet(file: File, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """The file's rows in the convention, reading only the columns the plan uses (text columns of few
    values through their dictionaries, see :mod:`.parquet_dictionary`)."""

    def unreadable(exc: BaseException) -> InputError:
        return _unreadable(file, exc)

    with contextlib.ExitStack() as stack:
        handle = _handle(file, stack)
        parquet = _open(file, handle, stack)
        names = parquet.schema_arrow.names
        if len(set(names)) < len(names):
            yield from _with_repeated_names(parquet, names, options, file, unreadable)
            return
        columns = plan(names, names, options, where=file.source, source=file.source, csv=False)
        wanted = columns.inputs()
        selected = None if len(wanted) == len(names) else wanted
        try:
            leaves = dictionary_leaves(parquet, wanted)
        except READ_ERRORS:
            leaves = {}  # a footer the choice cannot read: the plain read, which names the file if it must
        if leaves:
            # The same handle and footer, this time with those columns' dictionaries kept.
            parquet = _open(file, handle, stack, metadata=parquet.metadata, read_dictionary=list(leaves))
            batches = plain_batches(parquet, leaves.values(), selected, options.batch_rows)
        else:
            batches = parquet.iter_batches(batch_size=options.batch_rows, columns=selected)
        row = 0
        for batch in guarded(batches, unreadable):
            yield columns.apply(batch.select(wanted), file.source, row)
            row += batch.num_rows


def _with_repeated_names(
    parquet: pq.ParquetFile,
    names: list[str],
    options: ReadOptions,
    file: File,
    unreadable: Callable[[BaseException], InputError],
) -> Iterator[pa.RecordBatch]:
    """A file that repeats a column name (a multi-valued attribute spread over several columns, as a
    CSV header may repeat one): a name no longer says which column, so columns are addressed by
    position, and read plainly.

    Asked for a name, pyarrow gives every column of that name, in file order, where the name was
    asked: the columns the plan uses are read by their names, and each is found at its place among
    them. A reader that lays them out otherwise is noticed at the first batch, and the file is then
    read whole (every column, by its position in the file)."""
    by_position = plan(names, list(range(len(names))), options, where=file.source, source=file.source, csv=False)
    used = set(by_position.inputs())
    wanted = list(dict.fromkeys(names[i] for i in sorted(used)))
    layout = [i for name in wanted for i in range(len(names)) if names[i] == name]
    place = {position: at for at, position in enumerate(layout)}
    keys = [place.get(i, i) for i in range(len(names))]
    columns = plan(names, keys, options, where=file.source, source=file.source, csv=False)
    batches = guarded(parquet.iter_batches(batch_size=options.batch_rows, columns=wanted), unreadable)
    first = next(batches, None)
    if first is not None and first.schema.names != [names[i] for i in layout]:
        columns, first = by_position, None
        batches = guarded(parquet.iter_batches(batch_size=options.batch_rows), unreadable)
    row = 0
    for batch in itertools.chain(() if first is None else (first,), batches):
        yield columns.apply(batch, file.source, row)
        row += batch.num_rows


def _handle(file: File, stack: contextlib.ExitStack) -> str | IO[bytes]:
    """What pyarrow opens: the local path, or the object storage file (closed with ``stack``)."""
    if file.local:
        return file.path
    try:
        return stack.enter_context(file.fs.open(file.path, "rb"))
    except READ_ERRORS as exc:
        raise _unreadable(file, exc) from None


def _open(file: File, handle: str | IO[bytes], stack: contextlib.ExitStack, **options: Any) -> pq.ParquetFile:
    try:
        # Without pre-buffering: the reader keeps every row group it pre-buffered until the file
        # is closed (apache/arrow#39808), so streaming a large file would hold most of it.
        # int96 timestamps (Spark, Hive, Impala) as milliseconds: read as nanoseconds, the default,
        # those outside 1677 to 2262 would wrap silently into other dates.
        parquet = pq.ParquetFile(handle, pre_buffer=False, coerce_int96_timestamp_unit="ms", **options)
    except READ_ERRORS as exc:
        raise _unreadable(file, exc) from None
    return stack.enter_context(parquet)

"""In-memory inputs, sliced into batches in the convention: a pandas DataFrame, a pyarrow Table, or
any object exporting an Arrow C stream (``__arrow_c_stream__``: polars DataFrames, DuckDB relations),
read batch by batch without importing the library that made it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from airflow_provider_pinpoint.common.text import first_line, scrubbed
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import looks_like_data
from airflow_provider_pinpoint.prepare.read.column_plan import ReadOptions, plan


def is_dataframe(source: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas for path inputs."""
    return type(source).__name__ == "DataFrame" and type(source).__module__.startswith("pandas")


def is_arrow_stream(source: Any) -> bool:
    """An object exporting an Arrow C stream (the PyCapsule interface), other than a path."""
    return hasattr(type(source), "__arrow_c_stream__") and not isinstance(source, str | os.PathLike)


def in_memory_name(source: Any) -> str:
    """What messages call an in-memory input: a DataFrame (pandas, polars, ...) or Arrow data."""
    return "DataFrame" if type(source).__name__.endswith("DataFrame") else "Arrow table"


@contextlib.contextmanager
def arrow_stream(source: Any) -> Iterator[pa.RecordBatchReader]:
    """A new stream of the object's batches, closed on leaving.

    A load reads its inputs more than once (column checks, ``on_invalid="fail"``), so each read asks
    the object for a new stream; a RecordBatchReader has only one, and would read as empty the second time.
    """
    if isinstance(source, pa.RecordBatchReader):
        raise InputError(
            "a RecordBatchReader can be read only once, and a load may read its input more than once; "
            "pass a table instead (reader.read_all())"
        )
    reader = pa.RecordBatchReader.from_stream(source)
    try:
        yield reader
    finally:
        reader.close()


def _unconvertible(frame: Any, options: ReadOptions, exc: BaseException) -> InputError:
    """Which column Arrow could not convert and the kinds of value it mixes, never a value (it may be an address)."""
    where = f"DataFrame ({options.kind})"
    for name in frame.columns:
        try:
            pa.array(frame[name], from_pandas=True)
        except (pa.ArrowException, ValueError, TypeError) as column_error:
            kinds = ", ".join(sorted({type(value).__name__ for value in frame[name].dropna()}))
            shown = "a column that looks like data" if looks_like_data(str(name)) else f"column {str(name)!r}"
            if isinstance(column_error, UnicodeError):  # one kind, text, yet not convertible: say why
                return InputError(
                    f"{where}: {shown} holds text that is not valid Unicode (a lone surrogate, as from bytes "
                    "decoded with errors='surrogateescape'); decode it properly or drop those values"
                )
            return InputError(
                f"{where}: {shown} mixes values Arrow cannot convert to one type ({kinds}); give it one type"
            )
    return InputError(f"{where}: cannot convert to Arrow ({scrubbed(first_line(exc, 160))})")


def read_in_memory(source: Any, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """The rows of a DataFrame (a pandas named index becomes columns), an Arrow table or an Arrow
    stream; ``_source`` is the kind."""
    if not (isinstance(source, pa.Table) or is_dataframe(source)):
        yield from _read_stream(source, options)
        return
    if isinstance(source, pa.Table):
        table = source
    else:
        named_index = any(name is not None for name in source.index.names)
        frame = source.reset_index() if named_index else source
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise _unconvertible(frame, options, exc) from None
    names = [str(name) for name in table.column_names]
    where = f"DataFrame ({options.kind})"
    columns = plan(names, list(range(len(names))), options, where=where, source=options.kind, csv=False)
    row = 0
    for batch in table.to_batches(max_chunksize=options.batch_rows):
        yield columns.apply(batch, where, row)
        row += batch.num_rows


def _read_stream(source: Any, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    where = f"{in_memory_name(source)} ({options.kind})"
    with arrow_stream(source) as reader:
        names = reader.schema.names
        columns = plan(names, list(range(len(names))), options, where=where, source=options.kind, csv=False)
        row = 0
        for batch in reader:
            for start in range(0, batch.num_rows, options.batch_rows):
                piece = batch.slice(start, options.batch_rows)
                yield columns.apply(piece, where, row)
                row += piece.num_rows

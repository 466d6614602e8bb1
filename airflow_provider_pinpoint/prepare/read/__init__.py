"""Reading input tables as a stream of Arrow record batches named in the column convention.

Events tables can be far larger than memory, so nothing here holds a whole file: Parquet is read
row group by row group (:mod:`.parquet`), CSV through pyarrow's streaming reader
(:mod:`.csv_files`, repaired by :mod:`.csv_repair`) and JSON Lines in chunks of whole lines
(:mod:`.json_lines`). Each batch leaves with its columns renamed to
the convention (:mod:`.column_plan`) and two bookkeeping columns, ``_source`` (the file's name,
:mod:`.files`) and ``_source_row`` (1-based data row within that source; a CSV header is not a
data row), which follow the row all the way into the results table. Memory held while streaming:
the batch being processed, plus a Parquet row group, or for CSV the reader's read-ahead of 1 MB
blocks and one batch held back (a file's last batch goes only once no quote is left open at its end).

Types, decided here and relied on by validation:

- Parquet, DataFrames, Arrow tables and Arrow streams (``__arrow_c_stream__``): columns arrive as
  stored. Validation coerces.
- JSON Lines: values with the types pyarrow infers from each chunk's lines (numbers, strings, ISO
  timestamps, lists); nested objects flattened to dotted names. Validation coerces.
- CSV: every column is read as a string (``null`` when the cell is empty); only a ``_source_row``
  column (shard files) is read as int64.
- Multi-valued endpoint attributes (``Attributes.*``, ``User.UserAttributes.*``): a CSV header
  repeated once per value (the import-job rule), or a ``csv_list_delimiter``, or several columns
  mapped onto one name, become ``list<string>`` with null and empty values dropped (a row with no
  values is null). Parquet list columns arrive as stored; Parquet columns repeating one name are
  combined as a repeated CSV header is.

Different files of one directory or glob may differ in their columns; each batch carries its own
schema. Errors that make an input unusable raise :class:`~airflow_provider_pinpoint.errors.InputError`
with one line naming the file; messages never quote cell contents (which may hold addresses).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import pyarrow as pa

from airflow_provider_pinpoint.common.files import is_json_lines, is_parquet
from airflow_provider_pinpoint.common.locations import filesystem, is_object_path, location_text
from airflow_provider_pinpoint.common.text import first_line, without_userinfo
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import KINDS, Kind, table_mapping
from airflow_provider_pinpoint.prepare.read.column_plan import ReadOptions
from airflow_provider_pinpoint.prepare.read.csv_files import read_csv
from airflow_provider_pinpoint.prepare.read.csv_scan import csv_header
from airflow_provider_pinpoint.prepare.read.files import File, expand, spelled
from airflow_provider_pinpoint.prepare.read.frames import (
    arrow_stream,
    in_memory_name,
    is_arrow_stream,
    is_dataframe,
    read_in_memory,
)
from airflow_provider_pinpoint.prepare.read.json_lines import json_lines_names, read_json_lines
from airflow_provider_pinpoint.prepare.read.parquet import parquet_file, read_parquet
from airflow_provider_pinpoint.results.resume import SkipDone

__all__ = ["check_mapping", "describe_source", "read_batches", "read_table"]


def describe_source(source: Any) -> str:
    """The name of an input for people and lineage: the path or URL as given (without userinfo), or the object's kind."""
    if isinstance(source, pa.Table):
        return "Arrow table"
    if is_dataframe(source):
        return "DataFrame"
    if is_object_path(source):
        return without_userinfo(location_text(source))
    if isinstance(source, str | os.PathLike):
        return without_userinfo(os.fspath(source))
    if is_arrow_stream(source):
        return in_memory_name(source)
    return type(source).__name__


def read_batches(
    source: Any,
    *,
    kind: Kind,
    column_mapping: Mapping[str, Any] | None = None,
    csv_list_delimiter: str | None = None,
    batch_rows: int = 65_536,
    skip: Mapping[str, Collection[int]] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the input's rows as record batches of at most ``batch_rows`` rows, in input order.

    ``skip`` maps a ``_source`` to ``_source_row`` numbers to leave out (rows a previous run
    already settled). Batches left empty by ``skip`` are not yielded.
    """
    for batch in _batches(source, kind, column_mapping, csv_list_delimiter, batch_rows, skip):
        if batch.num_rows:
            yield batch


def read_table(
    source: Any,
    *,
    kind: Kind,
    column_mapping: Mapping[str, Any] | None = None,
    csv_list_delimiter: str | None = None,
    batch_rows: int = 65_536,
    skip: Mapping[str, Collection[int]] | None = None,
) -> pa.Table:
    """The whole input as one table (for endpoints, which are joined rather than streamed).

    Files with different columns are unified: a column missing from one file is null there, and
    types are widened where Arrow can (int -> float, string -> large_string); other disagreements
    (a timestamp in one file, a string in another) are an InputError.
    """
    tables = [
        pa.Table.from_batches([batch])
        for batch in _batches(source, kind, column_mapping, csv_list_delimiter, batch_rows, skip)
    ]
    return unified(tables, source)


def unified(tables: list[pa.Table], source: Any) -> pa.Table:
    """Parts of ``source`` read as tables, as one table: columns one part lacks are null there, types
    widened where Arrow can; other disagreements are an InputError naming the input."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise InputError(
            f"{describe_source(source)}: its files disagree on column types ({first_line(exc, 160)}); "
            "write every part with the same schema"
        ) from None


def check_mapping(column_mapping: Mapping[str, Any] | None, *, events: Any = None, endpoints: Any = None) -> None:
    """Raise InputError when a shared ``column_mapping`` names a column that none of the inputs has.

    A per-table mapping is checked as each file is read (every name it maps must be in that table),
    but one dict for both tables may name a column of either, so only the two inputs together can
    tell a misspelt or stale entry from one meant for the other table. Only CSV headers and Parquet
    footers are read, and only until every mapped name has been seen.
    """
    mapping, per_table = table_mapping(column_mapping, "events")
    given: tuple[tuple[Kind, Any], ...] = (("events", events), ("endpoints", endpoints))
    inputs = {kind: source for kind, source in given if source is not None}
    if per_table or not mapping or not inputs:
        return
    unseen = set(mapping)
    for kind, source in inputs.items():
        for names in _column_names(source, kind):
            unseen.difference_update(names)
            if not unseen:
                return
    missing = ", ".join(repr(name) for name in mapping if name in unseen)
    where = ", ".join(describe_source(source) for source in inputs.values())
    which = (
        "neither the events nor the endpoints input has"
        if len(inputs) == 2
        else f"the {next(iter(inputs))} input does not have"
    )
    raise InputError(f"{where}: column_mapping names {missing}, which {which}; correct the name or remove the entry")


def _batches(
    source: Any,
    kind: Kind,
    column_mapping: Mapping[str, Any] | None,
    csv_list_delimiter: str | None,
    batch_rows: int,
    skip: Mapping[str, Collection[int]] | None,
) -> Iterator[pa.RecordBatch]:
    """Every batch read, after ``skip`` (possibly empty); raises InputError when the input has no rows."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    if csv_list_delimiter == "":
        raise ValueError("csv_list_delimiter must be a non-empty string or None")
    skipper = SkipDone(skip)
    rows = 0
    options = ReadOptions(kind, column_mapping, csv_list_delimiter, batch_rows)
    for batch in _read_source(source, options):
        rows += batch.num_rows
        yield skipper(batch)
    if rows == 0:
        raise InputError(f"{describe_source(source)}: the {kind} input has no rows")


def _read_source(source: Any, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    if isinstance(source, pa.Table) or is_dataframe(source) or is_arrow_stream(source):
        yield from read_in_memory(source, options)
        return
    for file in _files(source, options.kind):
        if is_parquet(file.path):
            yield from read_parquet(file, options)
        elif is_json_lines(file.path):
            yield from read_json_lines(file, options)
        else:
            yield from read_csv(file, options)


def _column_names(source: Any, kind: Kind) -> Iterator[list[str]]:
    """The column names of each file of an input, from headers and footers only."""
    if isinstance(source, pa.Table):
        yield [str(name) for name in source.column_names]
    elif is_dataframe(source):
        yield [str(name) for name in source.columns] + [str(name) for name in source.index.names if name is not None]
    elif is_arrow_stream(source):
        with arrow_stream(source) as reader:
            yield reader.schema.names
    else:
        for file in _files(source, kind):
            if is_parquet(file.path):
                with parquet_file(file) as parquet:
                    yield parquet.schema_arrow.names
            elif is_json_lines(file.path):
                yield from json_lines_names(file)
            else:
                yield csv_header(file)


def _files(source: Any, kind: Kind) -> list[File]:
    if is_object_path(source):
        return expand(spelled(location_text(source)), *filesystem(source))
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        return expand(spelled(text), url=text if without_userinfo(text) != text else None)
    raise InputError(
        f"cannot read a {type(source).__name__} as the {kind} input; "
        "give a path, a URL, an ObjectStoragePath, a pandas or polars DataFrame, a pyarrow Table, "
        "or an object with __arrow_c_stream__"
    )

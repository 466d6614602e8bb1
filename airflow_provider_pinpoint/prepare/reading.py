"""Reading input tables as a stream of Arrow record batches named in the column convention.

Events tables can be far larger than memory, so nothing here holds a whole file: Parquet is read
row group by row group (``ParquetFile.iter_batches``) and CSV through pyarrow's streaming reader
(``pyarrow.csv.open_csv``). Each batch leaves with its columns renamed to the convention
(:mod:`airflow_provider_pinpoint.prepare.columns`) and two bookkeeping columns, ``_source`` and
``_source_row`` (1-based data row within that source; a CSV header is not a data row), which follow
the row all the way into the results table. Memory held while streaming: the batch being
processed, plus a Parquet row group, or for CSV the reader's read-ahead of 1 MB blocks and one
batch held back (a file's last batch goes only once no quote is left open at its end).

Types, decided here and relied on by validation/reshaping:

- Parquet, DataFrames and Arrow tables: columns arrive as stored. Validation coerces.
- CSV: every column is read as a string (``null`` when the cell is empty), numbers and timestamps
  included. pyarrow would otherwise turn ``00123`` (an endpoint id, a postal code) into 123, and
  its streaming reader fixes a column's type from the first block, so one bad number further down
  would abort the whole file instead of rejecting one row. Turning ``Metrics.*``,
  ``Location.Latitude``/``Longitude`` and ``Session.Duration`` strings into numbers, and timestamp
  strings into instants, is validation's job, row by row. Only a ``_source_row`` column (shard
  files) is read as int64.
- Multi-valued endpoint attributes (``Attributes.*``, ``User.UserAttributes.*``): a CSV header
  repeated once per value (the import-job rule), or a ``csv_list_delimiter``, or several columns
  mapped onto one name, become ``list<string>`` with null and empty values dropped (a row with no
  values is null). Parquet list columns arrive as stored.

Different files of one directory or glob may differ in their columns; each batch carries its own
schema. Errors that make an input unusable raise :class:`~airflow_provider_pinpoint.errors.InputError`
with one line naming the file; messages never quote cell contents (which may hold addresses).
A CSV row with the wrong number of fields spoils only itself: it arrives in its place with null
values and a ``_read_error`` column saying what is wrong (only batches of such files carry the
column), which validation turns into that row's rejection.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_pinpoint.common.files import CSV_SUFFIXES, PARQUET_SUFFIXES
from airflow_provider_pinpoint.common.locations import filesystem, is_object_path
from airflow_provider_pinpoint.common.text import first_line
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import (
    BOOKKEEPING,
    KINDS,
    READ_ERROR,
    SOURCE,
    SOURCE_ROW,
    Kind,
    apply_mapping,
    classify,
    table_mapping,
)
from airflow_provider_pinpoint.results.resume import SkipDone

# What pyarrow and fsspec raise for unreadable bytes, missing objects and broken streams.
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError)

_GLOB_CHARACTERS = re.compile(r"[*?\[]")
# Bytes that were not UTF-8, as ``surrogateescape`` decoding keeps them.
_UNDECODED = re.compile("[\udc80-\udcff]")
_TO_UTF8 = (
    "the loader reads CSV as UTF-8: save the file as UTF-8 (from Latin-1: iconv -f latin1 -t utf-8 in.csv > out.csv)"
)


def describe_source(source: Any) -> str:
    """The name of an input for people and lineage: the path or URL as given, or the object's kind."""
    if isinstance(source, pa.Table):
        return "Arrow table"
    if _is_dataframe(source):
        return "DataFrame"
    if is_object_path(source):
        return str(source)
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
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
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise InputError(
            f"{describe_source(source)}: its files disagree on column types ({first_line(exc, 160)}); "
            "write every part with the same schema"
        ) from None


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
    options = _Options(kind, column_mapping, csv_list_delimiter, batch_rows)
    for batch in _read_source(source, options):
        rows += batch.num_rows
        yield skipper(batch)
    if rows == 0:
        raise InputError(f"{describe_source(source)}: the {kind} input has no rows")


@dataclass(frozen=True, slots=True)
class _Options:
    kind: Kind
    column_mapping: Mapping[str, Any] | None
    csv_list_delimiter: str | None
    batch_rows: int


def check_mapping(column_mapping: Mapping[str, Any] | None, *, events: Any = None, endpoints: Any = None) -> None:
    """Raise InputError when a shared ``column_mapping`` names a column that none of the inputs has.

    A per-table mapping is checked as each file is read (every name it maps must be in that table),
    but one dict for both tables may name a column of either, so only the two inputs together can
    tell a misspelt or stale entry from one meant for the other table. Only CSV headers and Parquet
    footers are read, and only until every mapped name has been seen.
    """
    mapping, per_table = table_mapping(column_mapping, "events")
    inputs = {kind: source for kind, source in (("events", events), ("endpoints", endpoints)) if source is not None}
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


def _column_names(source: Any, kind: Kind) -> Iterator[list[str]]:
    """The column names of each file of an input, from headers and footers only."""
    if isinstance(source, pa.Table):
        yield [str(name) for name in source.column_names]
    elif _is_dataframe(source):
        yield [str(name) for name in source.columns] + [str(name) for name in source.index.names if name is not None]
    else:
        for file in _files(source, kind):
            if file.path.lower().endswith(PARQUET_SUFFIXES):
                with _parquet_file(file) as parquet:
                    yield parquet.schema_arrow.names
            else:
                yield _csv_header(file)


def _read_source(source: Any, options: _Options) -> Iterator[pa.RecordBatch]:
    if isinstance(source, pa.Table) or _is_dataframe(source):
        yield from _read_in_memory(source, options)
        return
    for file in _files(source, options.kind):
        if file.path.lower().endswith(PARQUET_SUFFIXES):
            yield from _read_parquet(file, options)
        else:
            yield from _read_csv(file, options)


def _files(source: Any, kind: Kind) -> list[_File]:
    if is_object_path(source):
        return _expand(str(source), *filesystem(source))
    if isinstance(source, str | os.PathLike):
        return _expand(_spelled(os.fspath(source)))
    raise InputError(
        f"cannot read a {type(source).__name__} as the {kind} input; "
        "give a path, a URL, an ObjectStoragePath, a pandas DataFrame or a pyarrow Table"
    )


# --- locating files ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _File:
    fs: fsspec.AbstractFileSystem
    path: str  # as the filesystem wants it
    source: str  # the stable name that goes into ``_source``

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)


def _expand(text: str, fs: fsspec.AbstractFileSystem | None = None, path: str | None = None) -> list[_File]:
    """The files a path, directory, glob or URL stands for, in a stable (sorted) order.

    ``fs``/``path`` come with an ObjectStoragePath, whose filesystem carries its connection's credentials.
    """
    try:
        if fs is None or path is None:
            fs, path = fsspec.core.url_to_fs(text)
    except ImportError as exc:
        protocol = text.split("://", 1)[0]
        hint = "pip install s3fs" if protocol in ("s3", "s3a") else f"install the fsspec backend for {protocol}://"
        raise InputError(f"{text}: cannot open {protocol}:// URLs here ({exc}); {hint}") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{text}: cannot open ({first_line(exc, 160)})") from None
    try:
        if _GLOB_CHARACTERS.search(path) and not fs.exists(path):
            given_base, path_base = _glob_base(text), _glob_base(path)
            matches = sorted(fs.glob(path))
            found = [p for match in matches for p in (_files_under(fs, match) if fs.isdir(match) else [match])]
            what = "matches"
        elif fs.isdir(path):
            given_base, path_base = text, path
            found = _files_under(fs, path)
            what = "directory contains"
        elif fs.isfile(path):
            if not path.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES):
                raise InputError(f"{text}: unknown file format; name it *.parquet, *.pq, *.csv or *.csv.gz")
            return [_File(fs, path, text)]
        else:
            raise InputError(f"{text}: no such file or directory")
    except OSError as exc:
        raise InputError(f"{text}: cannot list ({first_line(exc, 160)})") from None
    files = [
        _File(fs, p, _source_name(given_base, path_base, p, fs))
        for p in found
        if p.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES) and not _hidden(p[len(path_base) :])
    ]
    if not files:
        raise InputError(f"{text}: {what} no .parquet, .pq, .csv or .csv.gz files")
    return sorted(files, key=lambda file: file.path)


def _spelled(text: str) -> str:
    """The one spelling of a path or URL that names its files in ``_source``.

    ``_source`` feeds the derived event ids and resume, so ``ev.csv``, ``./ev.csv`` and
    ``logs/../ev.csv`` must give the same name: local paths are normalised (a relative path stays
    relative, so the name does not depend on where the loader runs). A URL keeps its text apart
    from a trailing slash.
    """
    if "://" not in text:
        return os.path.normpath(text)
    stripped = text.rstrip("/")
    return stripped if not stripped.endswith(":") else text


def _files_under(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    return sorted(fs.find(path))


def _glob_base(path: str) -> str:
    """The directory part of a glob before its first wildcard."""
    head = path[: _GLOB_CHARACTERS.search(path).start()]
    return head[: head.rfind("/") + 1] if "/" in head else ""


def _hidden(relative: str) -> bool:
    """Marker and temporary files of Spark/Hive writers (``_SUCCESS``, ``.part.crc``, ``_temporary/``)."""
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _source_name(given_base: str, path_base: str, path: str, fs: fsspec.AbstractFileSystem) -> str:
    """The name of an expanded file, spelled like the path the user gave, so it is stable across runs."""
    if path_base and path.startswith(path_base):
        relative = path[len(path_base) :].lstrip("/")
        return given_base.rstrip("/") + "/" + relative if given_base else relative
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


# --- reading formats -----------------------------------------------------------------------------


def _read_in_memory(source: Any, options: _Options) -> Iterator[pa.RecordBatch]:
    if isinstance(source, pa.Table):
        table = source
    else:
        try:
            named_index = any(name is not None for name in source.index.names)
            table = pa.Table.from_pandas(source.reset_index() if named_index else source, preserve_index=False)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise InputError(f"DataFrame ({options.kind}): cannot convert to Arrow ({first_line(exc, 160)})") from None
    names = [str(name) for name in table.column_names]
    where = f"DataFrame ({options.kind})"
    plan = _plan(names, list(range(len(names))), options, where=where, source=options.kind, csv=False)
    row = 0
    for batch in table.to_batches(max_chunksize=options.batch_rows):
        yield plan.apply(batch, where, row)
        row += batch.num_rows


def _parquet_unreadable(file: _File, exc: BaseException) -> InputError:
    return InputError(f"{file.source}: not a readable Parquet file ({first_line(exc, 160)})")


@contextlib.contextmanager
def _parquet_file(file: _File) -> Iterator[pq.ParquetFile]:
    """The open file (its footer read), or an InputError naming it."""
    with contextlib.ExitStack() as stack:
        try:
            handle = file.path if file.local else stack.enter_context(file.fs.open(file.path, "rb"))
            # Without pre-buffering: the reader keeps every row group it pre-buffered until the file
            # is closed (apache/arrow#39808), so streaming a 5,000,000-row file would hold most of it.
            parquet = stack.enter_context(pq.ParquetFile(handle, pre_buffer=False))
        except _READ_ERRORS as exc:
            raise _parquet_unreadable(file, exc) from None
        yield parquet


def _read_parquet(file: _File, options: _Options) -> Iterator[pa.RecordBatch]:
    def unreadable(exc: BaseException) -> InputError:
        return _parquet_unreadable(file, exc)

    with _parquet_file(file) as parquet:
        names = parquet.schema_arrow.names
        plan = _plan(names, names, options, where=file.source, source=file.source, csv=False)
        wanted = plan.inputs()
        columns = None if len(wanted) == len(names) else wanted
        row = 0
        batches = parquet.iter_batches(batch_size=options.batch_rows, columns=columns)
        for batch in _guarded(batches, unreadable):
            yield plan.apply(batch.select(wanted), file.source, row)
            row += batch.num_rows


def _read_csv(file: _File, options: _Options) -> Iterator[pa.RecordBatch]:
    header = _csv_header(file)
    keys = [f"c{i}" for i in range(len(header))]  # unique names: pyarrow would rename repeated headers
    plan = _plan(header, keys, options, where=file.source, source=file.source, csv=True)
    wanted = plan.inputs()
    types = {key: (pa.int64() if name == SOURCE_ROW else pa.string()) for key, name in zip(keys, header, strict=True)}
    skipped: list[int] = []  # how many rows pyarrow left out for their number of fields (never their text)

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        skipped.append(row.actual_columns)
        return "skip"

    def unreadable(exc: BaseException) -> InputError:
        return _csv_error(file, exc)

    with contextlib.ExitStack() as stack:
        try:
            handle = (
                file.path if file.local else stack.enter_context(file.fs.open(file.path, "rb", compression="infer"))
            )
            reader = pacsv.open_csv(
                handle,
                # pyarrow's default 1 MB blocks: the reader reads ahead by many blocks, so larger ones
                # would hold hundreds of MB of a big file in memory; _rebatched makes full batches.
                read_options=pacsv.ReadOptions(column_names=keys, skip_rows=1),
                # Quoted values may span lines; the reader then cannot cut blocks at any newline.
                parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    include_columns=wanted,
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except _READ_ERRORS as exc:
            raise unreadable(exc) from None
        stack.callback(reader.close)
        batches = _with_ragged_rows(_guarded(reader, unreadable), reader.schema, file, len(header), skipped)
        row = 0
        for batch in _closed_quotes(_rebatched(batches, options.batch_rows), file):
            out = plan.apply(batch, file.source, row)
            if READ_ERROR in batch.schema.names:
                out = out.append_column(READ_ERROR, batch.column(READ_ERROR))
            yield out
            row += batch.num_rows


def _with_ragged_rows(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, file: _File, width: int, skipped: list[int]
) -> Iterator[pa.RecordBatch]:
    """The read batches with the rows pyarrow skipped for their number of fields put back in their places.

    A put-back row has null values and a ``_read_error`` column saying what is wrong with it, which
    validation turns into that row's rejection, so one ragged row costs that row only and every
    other row keeps its ``_source_row``. pyarrow reports a skipped row but not where it was (with
    values that may span lines it cannot count rows), so once it has skipped one the file is parsed
    again alongside with Python's csv module, which tells every data row's number of fields. A row is
    parsed before the batch holding it is delivered, so the scan always starts before the first
    ragged row.
    """
    with contextlib.ExitStack() as stack:
        scan: _FieldCounts | None = None
        delivered = 0

        def started() -> _FieldCounts:
            scan = stack.enter_context(contextlib.closing(_FieldCounts(file, width)))
            if scan.take(delivered):
                raise _unlocated(file)
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
                raise _unlocated(file)
            yield _put_back(pa.RecordBatch.from_pylist([], schema=schema), tail, width)


class _FieldCounts:
    """Walks the data rows of a CSV with Python's csv module, telling where the ragged ones are."""

    def __init__(self, file: _File, width: int) -> None:
        self._file = file
        self._records = _csv_records(file)
        self._next()  # the header line
        self._width = width
        self.ragged = 0

    def _next(self) -> list[str] | None:
        try:
            return next(self._records, None)
        except (OSError, EOFError, csv.Error):
            raise _unlocated(self._file) from None

    def take(self, good: int) -> list[tuple[int, int]]:
        """Advance past ``good`` rows of the header's width: (position, fields) of the ragged rows among them.

        Positions count every row passed, ragged ones included.
        """
        ragged: list[tuple[int, int]] = []
        position = 0
        while good:
            record = self._next()
            if record is None:
                raise _unlocated(self._file)
            fields = len(record)
            if fields == self._width:
                good -= 1
            else:
                ragged.append((position, fields))
            position += 1
        self.ragged += len(ragged)
        return ragged

    def rest(self) -> list[tuple[int, int]]:
        """The ragged rows after the last row of the header's width."""
        ragged = []
        while (record := self._next()) is not None:
            ragged.append((len(ragged), len(record)))
        if any(fields == self._width for _, fields in ragged):
            raise _unlocated(self._file)
        self.ragged += len(ragged)
        return ragged

    def close(self) -> None:
        self._records.close()


def _unlocated(file: _File) -> InputError:
    """Python's csv module and pyarrow disagree on the rows (a quoting neither reads the same way)."""
    return InputError(
        f"{file.source}: some rows have a different number of fields than the header and cannot be located; "
        "quote values that contain commas, quotes or line breaks"
    )


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


def _rebatched(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
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


def _closed_quotes(batches: Iterable[pa.RecordBatch], file: _File) -> Iterator[pa.RecordBatch]:
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
    if _may_end_in_quote(last) and (row := _unclosed_quote_row(file)) is not None:
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


def _unclosed_quote_row(file: _File) -> int | None:
    """The data row whose quoted value runs to the end of the file, or None when every quote is closed."""
    rows = 0
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # the swallowed value may be most of the file
    try:
        with contextlib.closing(_csv_records(file, strict=True)) as records:
            next(records, None)
            for _ in records:
                rows += 1
    except csv.Error as exc:
        return rows + 1 if "unexpected end of data" in str(exc) else None
    except (OSError, EOFError):
        return None
    finally:
        csv.field_size_limit(limit)
    return None


def _csv_records(file: _File, *, strict: bool = False) -> Iterator[list[str]]:
    """The CSV's records as Python's csv module parses them: the header line, then every non-blank record.

    Bytes that are not UTF-8 survive as lone surrogates (``surrogateescape``), so reading the header
    does not trip over a bad byte further on, and the row holding it can be found. Records are
    counted as ``_source_row`` counts them: blank lines are not rows. ``strict`` makes the csv module
    raise where it would guess, among others at the end of the data inside a quoted value.
    """
    with file.fs.open(file.path, "rb", compression="infer") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text, strict=strict)
        yield next(reader, [])
        yield from (fields for fields in reader if fields)


def _csv_header(file: _File) -> list[str]:
    """The header line, parsed here because pyarrow and pandas rename repeated names."""
    try:
        with contextlib.closing(_csv_records(file)) as records:
            header = next(records)
    except (OSError, EOFError, csv.Error) as exc:
        raise InputError(f"{file.source}: cannot read the CSV header ({first_line(exc, 160)})") from None
    if not header:
        raise InputError(f"{file.source}: empty file; a CSV input needs a header line naming its columns")
    if any(_UNDECODED.search(name) for name in header):
        raise InputError(f"{file.source}: the header line is not UTF-8 text; {_TO_UTF8}")
    return header


def _csv_error(file: _File, exc: BaseException) -> InputError:
    if "UTF8" in str(exc):
        return InputError(f"{file.source}: {_first_undecodable_row(file)} is not UTF-8 text; {_TO_UTF8}")
    return InputError(f"{file.source}: not a readable CSV file ({first_line(exc, 160)})")


def _first_undecodable_row(file: _File) -> str:
    """Which data row holds the first byte that is not UTF-8 (pyarrow does not say); rescans the file."""
    try:
        with contextlib.closing(_csv_records(file)) as records:
            for number, fields in enumerate(records):
                if number and any(_UNDECODED.search(value) for value in fields):
                    return f"data row {number}"
    except (OSError, EOFError, csv.Error):
        pass
    return "a row"


def _guarded(
    batches: Iterable[pa.RecordBatch], unreadable: Callable[[BaseException], InputError]
) -> Iterator[pa.RecordBatch]:
    """Turn a read failure half way through a file (truncated, corrupt page, bad bytes) into an InputError."""
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except _READ_ERRORS as exc:
            raise unreadable(exc) from None
        yield batch


# --- renaming, combining, bookkeeping ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """How the columns of one input become convention columns (computed once per file)."""

    outputs: tuple[tuple[str, tuple[Any, ...]], ...]  # convention name -> input columns (several: a list)
    split: frozenset[str]  # convention names whose strings are split by the delimiter
    delimiter: str | None
    source: str | None  # None: the input brings its own _source/_source_row

    def inputs(self) -> list[Any]:
        return [key for _, keys in self.outputs for key in keys]

    def apply(self, batch: pa.RecordBatch, where: str, rows_before: int) -> pa.RecordBatch:
        names, arrays = [], []
        for name, keys in self.outputs:
            columns = [batch.column(key) for key in keys]
            if len(columns) > 1 or name in self.split:
                arrays.append(_combine(columns, self.delimiter if name in self.split else None, where, name))
            else:
                arrays.append(columns[0])
            names.append(name)
        if self.source is not None:
            names += [SOURCE, SOURCE_ROW]
            arrays += [
                pa.repeat(pa.scalar(self.source, pa.string()), batch.num_rows),
                pa.array(np.arange(rows_before + 1, rows_before + batch.num_rows + 1, dtype=np.int64)),
            ]
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _plan(names: list[str], keys: list[Any], options: _Options, *, where: str, source: str, csv: bool) -> _Plan:
    """Map, check and group the input's columns; ``keys`` address the columns in the read batches."""
    targets = apply_mapping(names, options.kind, options.column_mapping, where=where)
    grouped: dict[str, list[Any]] = {}
    originals: dict[str, list[str]] = {}
    for name, key, target in zip(names, keys, targets, strict=True):
        if target is not None:
            grouped.setdefault(target, []).append(key)
            originals.setdefault(target, []).append(name)
    for target, sources in originals.items():
        column = classify(target, options.kind)
        if len(sources) > 1 and not (column is not None and column.multi_valued):
            spelled = target if set(sources) == {target} else f"{target} (from {', '.join(map(repr, sources))})"
            raise InputError(
                f"{where}: column {spelled} appears {len(sources)} times; only multi-valued endpoint attributes "
                "(Attributes.*, User.UserAttributes.*) may repeat"
            )
    bookkeeping = [name for name in BOOKKEEPING if name in grouped]
    if len(bookkeeping) == 1:
        raise InputError(f"{where}: has {bookkeeping[0]} without {(set(BOOKKEEPING) - set(bookkeeping)).pop()}")
    split = frozenset()
    if csv and options.csv_list_delimiter is not None:
        split = frozenset(t for t in grouped if (c := classify(t, options.kind)) is not None and c.multi_valued)
    return _Plan(
        outputs=tuple((target, tuple(keys)) for target, keys in grouped.items()),
        split=split,
        delimiter=options.csv_list_delimiter,
        source=None if bookkeeping else source,
    )


def _combine(columns: list[pa.Array], delimiter: str | None, where: str, name: str) -> pa.Array:
    """Row-wise concatenation of several columns' values into one list<string>, without null/empty values."""
    length = len(columns[0])
    values, parents = [], []
    for column in columns:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            flat, parent = pc.list_flatten(column), pc.list_parent_indices(column)
        elif delimiter is not None:
            lists = pc.split_pattern(_to_string(column, where, name), delimiter)
            flat, parent = pc.utf8_trim_whitespace(pc.list_flatten(lists)), pc.list_parent_indices(lists)
        else:
            flat, parent = column, pa.array(np.arange(length, dtype=np.int64))
        flat = _to_string(flat, where, name)
        keep = pc.fill_null(pc.not_equal(flat, ""), False)
        values.append(flat.filter(keep))
        parents.append(pc.cast(parent.filter(keep), pa.int64()).to_numpy(zero_copy_only=False))
    parent_rows = np.concatenate(parents)
    order = np.argsort(parent_rows, kind="stable")
    counts = np.bincount(parent_rows, minlength=length)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(
        pa.array(offsets), pa.concat_arrays(values).take(pa.array(order)), mask=pa.array(counts == 0)
    )


def _to_string(array: pa.Array, where: str, name: str) -> pa.Array:
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowException, ValueError):
        raise InputError(f"{where}: column {name} holds {array.type} values; attributes are strings") from None


def _is_dataframe(source: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas for path inputs."""
    return type(source).__name__ == "DataFrame" and type(source).__module__.startswith("pandas")

"""The results table's two file formats, Parquet and CSV (picked by the location's extension):
writing the one clean table, and reading it back in batches."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airflow_provider_pinpoint.common.files import is_parquet
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.results.rows import COLUMNS, RESULTS_SCHEMA, single_value

# Rows per batch when the table is read back (bounds the memory of resume and compaction).
CHUNK_ROWS = 65_536


# The CSV reader's first block size, and its last (Arrow's limit): a row must fit in one block.
_CSV_BLOCK = 1 << 20
_CSV_MAX_BLOCK = 1 << 30

# Values may hold line breaks (an endpoint id can): without newlines_in_values the reader splits
# rows wherever a 1 MB read block ends inside one. The writer quotes every text value and leaves
# nulls bare, so only a bare empty field is null and "" stays empty text.
_CSV_PARSE = pacsv.ParseOptions(newlines_in_values=True)
_CSV_CONVERT = pacsv.ConvertOptions(
    column_types=RESULTS_SCHEMA, strings_can_be_null=True, quoted_strings_can_be_null=False
)


def _csv_batches(f: BinaryIO) -> Iterator[pa.RecordBatch]:
    """A CSV table's batches. A row longer than the reader's block (an id of a rejected row can be
    any length) cannot be parsed in it: the file is read again in larger blocks from the row after
    the last one given, until the block holds the row."""
    block = _CSV_BLOCK
    given = 0
    while True:
        f.seek(0)
        try:
            seen = 0
            options = pacsv.ReadOptions(block_size=block)
            for batch in pacsv.open_csv(
                f, read_options=options, parse_options=_CSV_PARSE, convert_options=_CSV_CONVERT
            ):
                start, seen = seen, seen + batch.num_rows
                if seen <= given:
                    continue
                if start < given:
                    batch = batch.slice(given - start)
                given = seen
                yield batch
            return
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc) or block >= _CSV_MAX_BLOCK:
                raise
            block = min(block * 8, _CSV_MAX_BLOCK)


def format_of(path: str, location: str) -> str:
    """``"csv"`` or ``"parquet"``, from the extension; anything else is refused."""
    if path.lower().endswith(".csv"):
        return "csv"
    if is_parquet(path):
        return "parquet"
    raise InputError(f"results location {location!r} must end in .parquet, .pq or .csv (that picks the format)")


def table_writer(f: BinaryIO, format: str) -> Any:
    """A writer of results batches into ``f`` (``write_batch``, then ``close``)."""
    return pacsv.CSVWriter(f, RESULTS_SCHEMA) if format == "csv" else ParquetTableWriter(f)


# Ids and row numbers are (nearly) unique: the Parquet writer built a dictionary for each, only to
# give it up once it grew too large; writing a million-row table took half again as long.
_NO_DICTIONARY = frozenset({"endpoint_id", "event_id", "source_row"})
# The text columns whose values are always few (a run id, a record type, a source file, a status)
# reach the Parquet writer as Arrow dictionary arrays, which it writes as they are: given plain
# text, it hashed every value again to build the same dictionary. Not the reason and the request
# id: they can differ on every row (rows refused one by one, each request's own id), and a
# dictionary given whole is written whole, where the writer's own gives up at 1 MB and writes the
# values plain (a 65,536-row batch of 500-character reasons held 137 MB, not 6 MB).
_FEW_VALUES = frozenset({"run_id", "record_type", "source", "status"})
_DICTIONARY_TEXT = tuple(i for i, field in enumerate(RESULTS_SCHEMA) if field.name in _FEW_VALUES)
_TEXT_CODES = pa.dictionary(pa.int32(), pa.string())
# What the Parquet writer is given: those columns as dictionaries. The file's Arrow schema (the one
# readers restore) is still RESULTS_SCHEMA, stored as the writer stores it, so the file reads as before.
_PARQUET_SCHEMA = pa.schema(
    [field.with_type(_TEXT_CODES) if i in _DICTIONARY_TEXT else field for i, field in enumerate(RESULTS_SCHEMA)]
)
_ARROW_SCHEMA = {"ARROW:schema": base64.b64encode(RESULTS_SCHEMA.serialize().to_pybytes()).decode()}


class ParquetTableWriter:
    """Writes results batches as one Parquet table, a row group per batch, with a dictionary only for
    the columns whose values repeat: the file ``pq.ParquetWriter`` on :data:`RESULTS_SCHEMA` with
    those dictionaries writes (values, schema, encodings, statistics), for less CPU."""

    def __init__(self, f: BinaryIO) -> None:
        self._writer = pq.ParquetWriter(
            f,
            _PARQUET_SCHEMA,
            use_dictionary=[n for n in RESULTS_SCHEMA.names if n not in _NO_DICTIONARY],
            store_schema=False,
        )

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Write ``batch`` (:data:`RESULTS_SCHEMA`) as one row group."""
        columns = batch.columns
        for i in _DICTIONARY_TEXT:
            columns[i] = text_codes(columns[i])
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=_PARQUET_SCHEMA))

    def close(self) -> None:
        """Finish the file, with :data:`RESULTS_SCHEMA` as its Arrow schema."""
        self._writer.add_key_value_metadata(_ARROW_SCHEMA)
        self._writer.close()

    @property
    def is_open(self) -> bool:
        return bool(self._writer.is_open)

    @is_open.setter
    def is_open(self, value: bool) -> None:
        self._writer.is_open = value


def text_codes(column: pa.Array) -> pa.DictionaryArray:
    """A text column as a dictionary array (int32 codes, each value once, in order of first use).

    A column of one value throughout (most of a sync's: its unchanged rows' run id, status and
    reason) is found by comparing its bytes with themselves shifted by one value, and coded
    without hashing; any other is dictionary-encoded by Arrow.
    """
    n = len(column)
    nulls = column.null_count
    if n and nulls == n:
        return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string()))
    if n and nulls == 0:
        value = single_value(column)
        if value is not None:
            return pa.DictionaryArray.from_arrays(
                pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(bytes(4 * n))]), value
            )
    return pc.dictionary_encode(column)


def abandon(writer: Any) -> None:
    """Drop a table writer after a failure, quietly: left open, a Parquet writer finishes its file
    when collected, after the file is closed, and prints a traceback on stderr ("Exception ignored")."""
    try:
        writer.close()
    except Exception:  # the failure that led here is the one reported
        pass
    finally:
        if hasattr(writer, "is_open"):
            writer.is_open = False


def table_batches(f: BinaryIO, format: str, location: str) -> Iterator[pa.RecordBatch]:
    """The table in ``f``, batch by batch; a file that is not a results table is an InputError."""
    try:
        if format == "csv":
            reader: Iterable[pa.RecordBatch] = _csv_batches(f)
        else:
            reader = pq.ParquetFile(f).iter_batches(batch_size=CHUNK_ROWS, columns=list(COLUMNS))
        for batch in reader:
            yield batch.select(list(COLUMNS)).cast(RESULTS_SCHEMA)
    except (pa.ArrowInvalid, KeyError, ValueError) as exc:
        raise InputError(
            f"{location} exists but is not a results table ({exc}); choose another results location."
        ) from None

"""The results table's two file formats, Parquet and CSV (picked by the location's extension):
writing the one clean table, and reading it back in batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airflow_provider_pinpoint.common.files import is_parquet
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.results.rows import COLUMNS, RESULTS_SCHEMA

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
    return pacsv.CSVWriter(f, RESULTS_SCHEMA) if format == "csv" else pq.ParquetWriter(f, RESULTS_SCHEMA)


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

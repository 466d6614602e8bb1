"""CSV files (plain or gzipped), streamed through pyarrow's reader with every column read as text.

Reading every column as a string keeps ``00123`` an id rather than 123, and stops one bad number
further down from aborting the file (the streaming reader fixes a column's type from its first
block): validation turns strings into numbers and instants, row by row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

from airflow_provider_pinpoint.common.text import first_line, scrubbed
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import READ_ERROR, SOURCE_ROW
from airflow_provider_pinpoint.prepare.read.column_plan import ReadOptions, plan
from airflow_provider_pinpoint.prepare.read.csv_repair import closed_quotes, rebatched, with_ragged_rows
from airflow_provider_pinpoint.prepare.read.csv_scan import TO_UTF8, csv_header, first_undecodable_row
from airflow_provider_pinpoint.prepare.read.files import READ_ERRORS, File, guarded


def read_csv(file: File, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """The file's rows in the convention, ragged rows in their places with a ``_read_error``."""
    header = csv_header(file)
    keys = [f"c{i}" for i in range(len(header))]  # unique names: pyarrow would rename repeated headers
    columns = plan(header, keys, options, where=file.source, source=file.source, csv=True)
    wanted = columns.inputs()
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
                # would hold hundreds of MB of a big file in memory; rebatched makes full batches.
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
        except READ_ERRORS as exc:
            raise unreadable(exc) from None
        stack.callback(reader.close)
        batches = with_ragged_rows(guarded(reader, unreadable), reader.schema, file, len(header), skipped)
        row = 0
        for batch in closed_quotes(rebatched(batches, options.batch_rows), file):
            out = columns.apply(batch, file.source, row)
            if READ_ERROR in batch.schema.names:
                out = out.append_column(READ_ERROR, batch.column(READ_ERROR))
            yield out
            row += batch.num_rows


def _csv_error(file: File, exc: BaseException) -> InputError:
    if "UTF8" in str(exc):
        return InputError(f"{file.source}: {first_undecodable_row(file)} is not UTF-8 text; {TO_UTF8}")
    return InputError(f"{file.source}: not a readable CSV file ({scrubbed(first_line(exc, 160))})")

"""JSON Lines files (``.jsonl``/``.ndjson``, plain or gzipped): one JSON object per line.

pyarrow's streaming JSON reader fixes its columns from the first block and refuses a field first met
later, which event logs (each line with its own attributes) do all the time. So a file is cut here
into chunks of whole lines, about ``CHUNK_BYTES`` each (a longer line makes a longer chunk), and each
chunk is parsed on its own, its columns inferred from its own lines: memory holds one chunk, and
different chunks may have different columns, as different files may. Nested objects are flattened
into the dotted convention (``{"Attributes": {"plan": "pro"}}`` is ``Attributes.plan``); arrays
arrive as lists, values with their JSON types (validation coerces). Blank lines are skipped and are
not data rows, so ``_source_row`` counts objects, while messages name the file's line.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import IO

import msgspec
import pyarrow as pa
import pyarrow.json as pajson

from airflow_provider_pinpoint.common.text import first_line, scrubbed
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import table_mapping
from airflow_provider_pinpoint.prepare.read.column_plan import ReadOptions, plan
from airflow_provider_pinpoint.prepare.read.files import READ_ERRORS, File, guarded

CHUNK_BYTES = 16 << 20

_IN_ROW = re.compile(r" in row (\d+)$")


def read_json_lines(file: File, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """The file's rows in the convention, chunk by chunk."""
    rows = 0
    seen: set[str] = set()
    for table in _tables(file):
        seen.update(table.column_names)
        table = _with_mapped_columns(table, options)
        names = table.column_names
        # Columns are addressed by position: a dotted key and a flattened object may give one name twice.
        columns = plan(names, list(range(len(names))), options, where=file.source, source=file.source, csv=False)
        for batch in table.to_batches(max_chunksize=options.batch_rows):
            yield columns.apply(batch, file.source, rows)
            rows += batch.num_rows
    mapping, strict = table_mapping(options.column_mapping, options.kind)
    missing = [name for name in mapping if strict and name not in seen]
    if missing:
        raise InputError(
            f"{file.source}: column_mapping names {', '.join(map(repr, missing))}, which no line of the "
            f"{options.kind} input has; correct the name or remove the entry"
        )


def json_lines_names(file: File) -> Iterator[list[str]]:
    """The column names of each chunk of the file (for checking a mapping)."""
    for table in _tables(file):
        yield table.column_names


def _tables(file: File) -> Iterator[pa.Table]:
    """Each chunk of the file parsed and flattened."""

    def unreadable(exc: BaseException) -> InputError:
        return InputError(f"{file.source}: not a readable JSON Lines file ({scrubbed(first_line(exc, 160))})")

    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(file.fs.open(file.path, "rb", compression="infer"))
        except READ_ERRORS as exc:
            raise unreadable(exc) from None
        for line, chunk in guarded(_chunks(handle), unreadable):
            if chunk.strip():
                yield _flattened(_parse(chunk, file, line))


def _chunks(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Whole lines of the file, about ``CHUNK_BYTES`` at a time, each with the number of its first line."""
    line, rest = 1, b""
    while block := handle.read(CHUNK_BYTES):
        data = rest + block
        cut = data.rfind(b"\n") + 1
        if cut:
            yield line, data[:cut]
            line += data.count(b"\n", 0, cut)
        rest = data[cut:]
    if rest:
        yield line, rest


def _parse(chunk: bytes, file: File, first: int) -> pa.Table:
    try:
        # One block for the whole chunk, so its columns are inferred from all of its lines.
        return pajson.read_json(pa.py_buffer(chunk), read_options=pajson.ReadOptions(block_size=len(chunk) + 1))
    except READ_ERRORS as exc:
        raise _parse_error(chunk, file, first, exc) from None


def _parse_error(chunk: bytes, file: File, first: int, exc: BaseException) -> InputError:
    """Which line is wrong and how, without quoting it (it may hold an address)."""
    row = 0
    wanted = _IN_ROW.search(first_line(exc, 400))
    for number, text in enumerate(chunk.split(b"\n"), start=first):
        if not text.strip():
            continue
        try:
            value = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return InputError(f"{file.source}: line {number} is not valid JSON; each line must hold one JSON object")
        if not isinstance(value, dict):
            return InputError(f"{file.source}: line {number} holds a JSON {_kind(value)}, not an object")
        if wanted and row == int(wanted.group(1)):
            return InputError(
                f"{file.source}: line {number}: {_conflict(exc)}; give each field one JSON type throughout a file"
            )
        row += 1
    return InputError(f"{file.source}: not a readable JSON Lines file ({scrubbed(first_line(exc, 160))})")


def _conflict(exc: BaseException) -> str:
    """pyarrow's "Column(/a/b) changed from number to string in row 3" as "field a.b changed from number to string"."""
    text = _IN_ROW.sub("", first_line(exc, 400)).removeprefix("JSON parse error: ")
    text = re.sub(r"Column\(/?([^)]*)\)", lambda m: "field " + (m.group(1).replace("/", ".") or "(line)"), text)
    return scrubbed(text)


def _kind(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _flattened(table: pa.Table) -> pa.Table:
    """Nested objects as dotted columns: ``Attributes`` holding ``{"plan": ...}`` becomes ``Attributes.plan``."""
    while any(pa.types.is_struct(column.type) for column in table.columns):
        table = table.flatten()
    return table


def _with_mapped_columns(table: pa.Table, options: ReadOptions) -> pa.Table:
    """A per-table mapping's columns a chunk's lines do not have, as nulls: another chunk may have them
    (a name no chunk has is reported once the file is read)."""
    mapping, strict = table_mapping(options.column_mapping, options.kind)
    if not strict:
        return table
    for name in mapping:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows))
    return table

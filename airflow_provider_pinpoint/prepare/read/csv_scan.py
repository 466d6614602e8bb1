"""A CSV file as Python's csv module reads it: the header, and rescans that locate what pyarrow cannot.

pyarrow's streaming reader is fast but does not say where a row with the wrong number of fields
was, which row held a byte that is not UTF-8, or that the file ended inside a quoted value. These
scans answer that, only when such a thing happened.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import sys
from collections.abc import Generator

from airflow_provider_pinpoint.common.text import first_line
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.read.files import File

# Bytes that were not UTF-8, as ``surrogateescape`` decoding keeps them.
_UNDECODED = re.compile("[\udc80-\udcff]")
TO_UTF8 = (
    "the loader reads CSV as UTF-8: save the file as UTF-8 (from Latin-1: iconv -f latin1 -t utf-8 in.csv > out.csv)"
)


def csv_records(file: File, *, strict: bool = False) -> Generator[list[str], None, None]:
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


def csv_header(file: File) -> list[str]:
    """The header line, parsed here because pyarrow and pandas rename repeated names."""
    try:
        with contextlib.closing(csv_records(file)) as records:
            header = next(records)
    except (OSError, EOFError, csv.Error) as exc:
        raise InputError(f"{file.source}: cannot read the CSV header ({first_line(exc, 160)})") from None
    if not header:
        raise InputError(f"{file.source}: empty file; a CSV input needs a header line naming its columns")
    if any(_UNDECODED.search(name) for name in header):
        raise InputError(f"{file.source}: the header line is not UTF-8 text; {TO_UTF8}")
    return header


def first_undecodable_row(file: File) -> str:
    """Which data row holds the first byte that is not UTF-8 (pyarrow does not say); rescans the file."""
    try:
        with contextlib.closing(csv_records(file)) as records:
            for number, fields in enumerate(records):
                if number and any(_UNDECODED.search(value) for value in fields):
                    return f"data row {number}"
    except (OSError, EOFError, csv.Error):
        pass
    return "a row"


def unclosed_quote_row(file: File) -> int | None:
    """The data row whose quoted value runs to the end of the file, or None when every quote is closed."""
    rows = 0
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # the swallowed value may be most of the file
    try:
        with contextlib.closing(csv_records(file, strict=True)) as records:
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


class FieldCounts:
    """Walks the data rows of a CSV with Python's csv module, telling where the ragged ones are."""

    def __init__(self, file: File, width: int) -> None:
        self._file = file
        self._records = csv_records(file)
        self._next()  # the header line
        self._width = width
        self.ragged = 0

    def _next(self) -> list[str] | None:
        try:
            return next(self._records, None)
        except (OSError, EOFError, csv.Error):
            raise unlocated(self._file) from None

    def take(self, good: int) -> list[tuple[int, int]]:
        """Advance past ``good`` rows of the header's width: (position, fields) of the ragged rows among them.

        Positions count every row passed, ragged ones included.
        """
        ragged: list[tuple[int, int]] = []
        position = 0
        while good:
            record = self._next()
            if record is None:
                raise unlocated(self._file)
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
        ragged: list[tuple[int, int]] = []
        while (record := self._next()) is not None:
            ragged.append((len(ragged), len(record)))
        if any(fields == self._width for _, fields in ragged):
            raise unlocated(self._file)
        self.ragged += len(ragged)
        return ragged

    def close(self) -> None:
        self._records.close()


def unlocated(file: File) -> InputError:
    """Python's csv module and pyarrow disagree on the rows (a quoting neither reads the same way)."""
    return InputError(
        f"{file.source}: some rows have a different number of fields than the header and cannot be located; "
        "quote values that contain commas, quotes or line breaks"
    )

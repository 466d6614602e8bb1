"""The batch under validation: its values coerced to the API's types, and why each rejected row failed.

Coercion (:mod:`..coerce`) runs here, column by column, so every rule after it works on clean,
typed columns; a value that cannot be coerced rejects its row with a message naming row and column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

from airflow_provider_pinpoint.common.arrow import as_mask, single_chunk, valid_mask
from airflow_provider_pinpoint.common.text import shown
from airflow_provider_pinpoint.prepare import coerce, columns
from airflow_provider_pinpoint.prepare.columns import SOURCE, SOURCE_ROW, Kind

# Which rule set applies: every rule PutEvents enforces, or those that still hold for the Kinesis and
# Firehose sinks (types, timestamps, required fields, one row per endpoint, unique event ids).
Rules = Literal["putevents", "stream"]


def source_label(source: str) -> str:
    """The file name of a source for messages (``events.csv``), without directories or URL scheme."""
    return source.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1] or source


@dataclass
class Checked:
    """A batch after validation: normalised columns for every row, and why each rejected row failed."""

    kind: Kind
    columns: dict[str, pa.Array]
    sources: pa.Array
    rows: pa.Array
    raw: pa.Table
    rejected: np.ndarray
    reasons: dict[int, str] = field(default_factory=dict)
    # Where this batch's rows are in ``raw`` (None: at the same positions). A :meth:`subset` keeps
    # the whole ``raw`` and these positions: only a message about a value ever reads it.
    raw_rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rejected)

    def label(self, i: int) -> str:
        return f"{source_label(self.sources[i].as_py())} row {self.rows[i].as_py()}"

    def reject(self, mask: np.ndarray | pa.Array, column: str, rule: str | Callable[[int], str]) -> None:
        """Reject the rows of ``mask`` not already rejected; ``rule`` words the message (may look at the row)."""
        if isinstance(mask, (pa.Array, pa.ChunkedArray)):
            mask = as_mask(mask)
        fresh = np.flatnonzero(mask & ~self.rejected)
        for i in fresh.tolist():
            text = rule(i) if callable(rule) else rule
            self.reasons[i] = f"{self.label(i)}: {column} {text}"
        self.rejected |= mask

    def raw_value(self, column: str, i: int) -> object:
        return self.raw_scalar(column, i).as_py()

    def raw_scalar(self, column: str, i: int) -> pa.Scalar:
        """Row ``i``'s value of ``column`` as read, before coercion."""
        return self.raw.column(column)[i if self.raw_rows is None else int(self.raw_rows[i])]

    def present(self, column: str) -> np.ndarray:
        array = self.columns.get(column)
        return valid_mask(array) if array is not None else np.zeros(len(self), dtype=bool)

    def subset(self, rows: np.ndarray) -> Checked:
        """The rows at positions ``rows`` (ascending) as a batch of their own, for rules to judge
        apart; :meth:`take_back` then brings its rejections back here."""
        at = pa.array(rows, pa.int64())
        return Checked(
            self.kind,
            {name: column.take(at) for name, column in self.columns.items()},
            self.sources.take(at),
            self.rows.take(at),
            self.raw,
            self.rejected[rows].copy(),
            raw_rows=rows if self.raw_rows is None else self.raw_rows[rows],
        )

    def take_back(self, part: Checked, rows: np.ndarray) -> None:
        """The rejections rules made in ``part`` (:meth:`subset` of ``rows``), as rejections of these rows."""
        for i, reason in part.reasons.items():
            self.reasons[int(rows[i])] = reason
        self.rejected[rows] |= part.rejected


def normalised(table: pa.Table, kind: Kind) -> Checked:
    n = table.num_rows
    checked = Checked(
        kind,
        {},
        single_chunk(table.column(SOURCE)),
        single_chunk(table.column(SOURCE_ROW)),
        table,
        np.zeros(n, dtype=bool),
    )
    if columns.READ_ERROR in table.column_names:
        _reject_unreadable(checked, single_chunk(table.column(columns.READ_ERROR)))
    for name in table.column_names:
        column = columns.classify(name, kind)
        if column is None or column.role == "bookkeeping":
            continue
        array = table.column(name)
        rule: str | Callable[[int], str]
        if column.multi_valued:
            values, failed = coerce.to_string_lists(array)
            rule = "holds a value that is not text; attribute values are strings"
        elif column.name == "Session.Duration":
            values, failed = coerce.to_int(array)
            rule = _not_a(checked, name, "a whole number of milliseconds")
        elif column.numeric:
            values, failed = coerce.to_float(array)
            rule = _not_a(checked, name, "a number")
        elif column.name in columns.TIMESTAMP_FIELDS:
            values, failed = coerce.to_timestamp(array)
            rule = _not_a(checked, name, "an ISO 8601 timestamp")
        else:
            values, failed = coerce.to_string(array)
            rule = _not_a(checked, name, "a single text value or whole number")
        checked.columns[name] = values
        if failed.any():
            checked.reject(failed, name, rule)
    return checked


def _reject_unreadable(checked: Checked, errors: pa.Array) -> None:
    """Rows reading could not make sense of (a CSV row with the wrong number of fields): its message, first."""
    unreadable = valid_mask(errors)
    for i in np.flatnonzero(unreadable).tolist():
        checked.reasons[i] = f"{checked.label(i)}: {errors[i].as_py()}"
    checked.rejected |= unreadable


def _not_a(checked: Checked, name: str, what: str) -> Callable[[int], str]:
    """Words the rejection of a value coercion refused, without quoting an address or failing on the value."""

    def rule(i: int) -> str:
        if name == "Address":
            return f"is not {what}"
        column = checked.raw.column(name)
        try:
            value = checked.raw_scalar(name, i).as_py()
        except (OverflowError, ValueError, pa.ArrowException):  # beyond Python's datetime: years 1 to 9999
            if "timestamp" in what:
                return f"is a {column.type} value outside the years 0001 to 9999 that Pinpoint timestamps span"
            return f"is a {column.type} value (outside the years 0001 to 9999), not {what}"
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return f"holds bytes that are not UTF-8 text, not {what}"
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > coerce.EXACT_INTEGER:
            return f"is {value}, beyond ±2**53, the whole numbers a JSON number carries exactly"
        if isinstance(value, (int, float)) and "timestamp" in what:
            return f"is a number ({value}), not {what}; epoch numbers are ambiguous, convert them to timestamps"
        return f"is {shown(value)}, not {what}"

    return rule

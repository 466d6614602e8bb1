"""How one file's columns become convention columns: mapped, checked, grouped, plus the bookkeeping.

A plan is made once per file (or DataFrame) from its header, then applied to each batch: renames,
several columns mapped onto one multi-valued attribute combined into ``list<string>``, delimited
CSV lists split, and ``_source``/``_source_row`` appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.columns import (
    BOOKKEEPING,
    SOURCE,
    SOURCE_ROW,
    Kind,
    apply_mapping,
    classify,
)
from airflow_provider_pinpoint.prepare.read.bookkeeping import CarriedRows


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What the caller asked of reading, passed down to every format."""

    kind: Kind
    column_mapping: Mapping[str, Any] | None
    csv_list_delimiter: str | None
    batch_rows: int
    carried: CarriedRows = field(default_factory=CarriedRows)  # the input's own bookkeeping, if it has one


@dataclass(frozen=True, slots=True)
class Plan:
    """How the columns of one input become convention columns (computed once per file)."""

    outputs: tuple[tuple[str, tuple[Any, ...]], ...]  # convention name -> input columns (several: a list)
    split: frozenset[str]  # convention names whose strings are split by the delimiter
    delimiter: str | None
    source: str | None  # None: the input brings its own _source/_source_row
    carried: CarriedRows  # checks them, when it does, and that no other file's rows get them

    def inputs(self) -> list[Any]:
        """The input columns to read, in output order."""
        return [key for _, keys in self.outputs for key in keys]

    def apply(self, batch: pa.RecordBatch, where: str, rows_before: int) -> pa.RecordBatch:
        """``batch`` in the convention; ``rows_before`` is how many data rows of the file came before it."""
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
        out = pa.RecordBatch.from_arrays(arrays, names=names)
        if self.source is not None:
            self.carried.generated(out, where, rows_before, self.source)
        else:
            self.carried.check(out, where, rows_before)
        return out


def plan(names: list[str], keys: list[Any], options: ReadOptions, *, where: str, source: str, csv: bool) -> Plan:
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
    split: frozenset[str] = frozenset()
    if csv and options.csv_list_delimiter is not None:
        split = frozenset(t for t in grouped if (c := classify(t, options.kind)) is not None and c.multi_valued)
    return Plan(
        outputs=tuple((target, tuple(keys)) for target, keys in grouped.items()),
        split=split,
        delimiter=options.csv_list_delimiter,
        source=None if bookkeeping else source,
        carried=options.carried,
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

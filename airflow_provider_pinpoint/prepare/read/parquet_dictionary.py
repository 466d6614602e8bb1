"""Dictionary-encoded text columns of a Parquet file read as Arrow dictionaries, then decoded to plain again.

Decoding a dictionary-encoded text column straight to strings looks every value up and copies it
page by page; reading it as an Arrow dictionary (the file's indices kept) and casting each batch
back costs about half the CPU. For a column chunk whose writer gave up its dictionary (ids,
addresses: high cardinality, the dictionary page is capped at about 1 MB) it is the opposite: its
plain pages would be hashed value by value into a dictionary, 3 to 5 times the plain read. So the
footer picks the columns: only those whose every chunk is still small enough to be dictionary
pages. Consumers never see the difference: each batch has the plain read's types, values and size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Uncompressed bytes a non-null value that a chunk may take and still be read as a dictionary.
# Dictionary pages store bit-packed indices (at most about 2 bytes for the 65,536 entries a 1 MB
# dictionary page holds, amortised page included); plain pages store a 4-byte length before each
# value's bytes. Measured on 1,000,000 strings of 11 bytes: 10 to 60,000 distinct values take
# 0.5 to 2.9 bytes a value and read 20-50% cheaper as dictionaries; 75,000 distinct values and
# more fall back to plain (15 bytes) and read 4-5x dearer, a chunk that fell back half way
# (8.6 bytes) 3x dearer.
MAX_BYTES_PER_VALUE = 3.0


def dictionary_leaves(parquet: pq.ParquetFile, names: Collection[str]) -> dict[int, pa.Field]:
    """The leaf columns (footer order) worth reading as dictionaries, each with its column's plain field.

    Only top-level string and binary columns and lists of them; a column the file already stores as
    an Arrow dictionary, and every other type, is read as it always was.
    """
    metadata = parquet.metadata
    groups = [metadata.row_group(group) for group in range(metadata.num_row_groups)]
    if not groups:
        return {}
    leaves_of: defaultdict[str, list[int]] = defaultdict(list)
    for leaf, path in enumerate(parquet.reader.column_paths):
        leaves_of[path[0]].append(leaf)
    chosen = {}
    for field in parquet.schema_arrow:
        leaves = leaves_of[field.name]
        if field.name not in names or not _text(field.type) or len(leaves) != 1:
            continue
        if len(groups) > 1 and pa.types.is_nested(field.type):
            continue  # the reader refuses a list read through two dictionaries in one batch
        if all(_dictionary_pages(group.column(leaves[0])) for group in groups):
            chosen[leaves[0]] = field
    return chosen


def plain_batches(
    parquet: pq.ParquetFile, plain: Iterable[pa.Field], columns: list[str] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The batches of ``parquet`` (opened with ``read_dictionary``), ``batch_rows`` each, the ``plain`` columns decoded.

    The reader cuts a batch at a row group boundary when a column is read as a dictionary, a
    new dictionary starting there; the plain read does so only when the file itself stores a
    column as a dictionary. So the pieces of one batch of the plain read are put together again.
    """
    pieces = parquet.iter_batches(batch_size=batch_rows, columns=columns)
    fields = {field.name: field for field in plain}
    stored = parquet.schema_arrow if columns is None else [parquet.schema_arrow.field(name) for name in columns]
    cut = any(pa.types.is_dictionary(field.type) and field.name not in fields for field in stored)
    decoded = (plain for piece in pieces for plain in _decoded(piece, fields))
    return _rebatched(decoded, batch_rows, cut)


def _text(type_: pa.DataType) -> bool:
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        type_ = type_.value_type
    return (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_binary(type_)
        or pa.types.is_large_binary(type_)
    )


def _dictionary_pages(chunk: pq.ColumnChunkMetaData) -> bool:
    """Whether a column chunk is (almost all) dictionary pages, by its size in the footer."""
    statistics = chunk.statistics
    if chunk.physical_type != "BYTE_ARRAY" or not chunk.has_dictionary_page:
        return False
    if statistics is None or not statistics.has_null_count:
        return False  # a mostly null plain chunk would look small
    values = max(chunk.num_values - statistics.null_count, 1)
    return bool(chunk.total_uncompressed_size <= MAX_BYTES_PER_VALUE * values)


# Bytes of text one column of a decoded piece may hold: a string or binary array's offsets are 32-bit.
MAX_TEXT_BYTES = 2**31 - 1


def _decoded(piece: pa.RecordBatch, fields: dict[str, pa.Field]) -> Iterator[pa.RecordBatch]:
    """``piece`` with the ``fields`` columns read as dictionaries decoded to their plain types: in
    one batch, or in as many as keep each decoded text column under 2 GiB (a few long values
    repeated can decode to more than a 32-bit offset reaches; the plain read splits its batch then)."""
    schema = piece.schema
    arrays = list(piece.columns)
    sizes = np.zeros(piece.num_rows, dtype=np.int64)  # each row's bytes in its largest decoded 32-bit column
    for index, name in enumerate(schema.names):
        field = fields.get(name)
        if field is None or arrays[index].type == field.type:
            continue
        array = arrays[index]
        if pa.types.is_dictionary(array.type):
            values = array.dictionary.cast(field.type)  # large_string stays 64-bit: cast before the values are taken
            if field.type in _NARROW and len(values) and len(array) * _longest(values) > MAX_TEXT_BYTES:
                lengths = np.asarray(pc.binary_length(values).to_numpy(zero_copy_only=False), dtype=np.int64)
                indices = array.indices.fill_null(0).to_numpy(zero_copy_only=False)
                row_bytes = np.where(array.is_valid().to_numpy(zero_copy_only=False), lengths[indices], 0)
                if int(row_bytes.sum()) > MAX_TEXT_BYTES:
                    np.maximum(sizes, row_bytes, out=sizes)
            arrays[index] = pa.DictionaryArray.from_arrays(array.indices, values)
        schema = schema.set(index, field)
    if sizes.any():  # some column decodes to more than 2 GiB: in pieces of rows that fit
        for part in _pieces(piece, sizes):
            yield from _decoded(part, fields)
        return
    for index, name in enumerate(schema.names):
        if name in fields and arrays[index].type != fields[name].type:
            arrays[index] = arrays[index].cast(fields[name].type)
    yield pa.RecordBatch.from_arrays(arrays, schema=schema)


_NARROW = (pa.string(), pa.binary())


def _longest(values: pa.Array) -> int:
    """The length in bytes of the longest of ``values`` (text or binary, with 32-bit offsets)."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    return int(np.diff(offsets).max())


def _pieces(piece: pa.RecordBatch, sizes: np.ndarray) -> Iterator[pa.RecordBatch]:
    """``piece`` cut into runs of rows whose ``sizes`` add up to at most :data:`MAX_TEXT_BYTES` each
    (a row at least; a single value beyond it fails in the cast, as the plain read fails on it)."""
    start = 0
    while start < len(sizes):
        ends = np.cumsum(sizes[start:])
        stop = start + max(1, int(np.searchsorted(ends, MAX_TEXT_BYTES, side="right")))
        yield piece.slice(start, stop - start)
        start = stop


def _rebatched(pieces: Iterable[pa.RecordBatch], rows: int, cut: bool) -> Iterator[pa.RecordBatch]:
    """The pieces put together again into batches of ``rows`` (the last one shorter), or, with ``cut``, as they are."""
    if cut:
        yield from pieces
        return
    pending: list[pa.RecordBatch] = []
    held = 0
    for piece in pieces:
        while piece.num_rows:
            taken = piece.slice(0, rows - held)
            pending.append(taken)
            held += taken.num_rows
            piece = piece.slice(taken.num_rows)
            if held == rows:
                yield from _joined(pending)
                pending, held = [], 0
    if pending:
        yield from _joined(pending)


def _joined(pieces: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The pieces as one batch, or as they are when their text together is more than a 32-bit offset reaches."""
    if len(pieces) == 1:
        yield pieces[0]
        return
    try:
        joined = pa.concat_batches(pieces)
    except (pa.ArrowInvalid, pa.ArrowCapacityError):
        yield from pieces
        return
    yield joined

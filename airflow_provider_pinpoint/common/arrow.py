"""Arrow idioms every stage uses: one contiguous array, and boolean masks as numpy arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def single_chunk(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (kernels and row lookups want one, not a chunked column)."""
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    return array


def as_mask(booleans: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as a numpy mask, null counting as False."""
    return np.asarray(pc.fill_null(booleans, False).to_numpy(zero_copy_only=False), dtype=bool)


def valid_mask(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Where ``array`` has a value (is not null), as a numpy mask."""
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def none_of(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An all-False mask as long as ``array``."""
    return np.zeros(len(array), dtype=bool)


def repeats(values: pa.Array | np.ndarray) -> np.ndarray:
    """Where a value repeats an earlier one (pandas' ``duplicated(keep="first")``), nulls alike, exactly.

    ``pc.unique`` numbers the distinct values in order of first appearance, so a row is a value's
    first exactly when its number exceeds every number before it.
    """
    array = pa.array(values) if isinstance(values, np.ndarray) else values
    slots = pc.index_in(array, value_set=pc.unique(array)).to_numpy(zero_copy_only=False)
    first = np.ones(len(slots), dtype=bool)
    if len(slots) > 1:
        first[1:] = slots[1:] > np.maximum.accumulate(slots)[:-1]
    return ~first

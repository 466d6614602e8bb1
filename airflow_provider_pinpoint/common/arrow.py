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

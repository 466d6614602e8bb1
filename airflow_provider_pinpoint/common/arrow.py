"""Arrow idioms every stage uses: one contiguous array, and boolean masks as numpy arrays."""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

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


class _PandasHidden(MetaPathFinder):
    def find_spec(self, name: str, path: object, target: object = None) -> ModuleSpec | None:
        if name == "pandas":
            raise ImportError("pandas is hidden for this run (see hide_pandas)")
        return None


_HIDDEN = _PandasHidden()


def hide_pandas() -> None:
    """Keep pyarrow from importing pandas (most of a small load's CPU) only to look for pandas values.

    pyarrow imports pandas if it can on its first ``pa.array`` and on each inferred scalar
    (apache/arrow#34994); while pandas is hidden, it takes pandas as absent. For processes that get
    no DataFrames (the CLI); does nothing if pandas is already imported. :func:`import_pandas`
    ends it where pandas is really needed.
    """
    if "pandas" not in sys.modules and _HIDDEN not in sys.meta_path:
        sys.meta_path.insert(0, _HIDDEN)


def show_pandas() -> None:
    """End :func:`hide_pandas`."""
    if _HIDDEN in sys.meta_path:
        sys.meta_path.remove(_HIDDEN)


def import_pandas() -> ModuleType:
    """pandas, for the rare paths that need it, hidden or not."""
    show_pandas()
    import pandas

    return pandas

"""CompressedStrings gives back exactly the strings it was given, in any order, across uneven blocks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_pinpoint.common.compressed import BLOCK_ROWS, CompressedStrings


def _parts(sizes: list[int]) -> list[list[str]]:
    rows, parts = 0, []
    for size in sizes:
        parts.append(
            [f'{{"Id":"ep-{rows + i}","n":{(rows + i) % 7},"é":"{"x" * ((rows + i) % 5)}"}}' for i in range(size)]
        )
        rows += size
    return parts


def test_positions_in_any_order_across_parts_of_uneven_length():
    parts = _parts([3, BLOCK_ROWS + 5, 0, 2 * BLOCK_ROWS, 1])
    everything = [text for part in parts for text in part]
    column = CompressedStrings(pa.array(part, pa.string()) for part in parts)
    assert len(column) == len(everything)
    at = np.random.default_rng(7).permutation(len(everything))[:1500]
    assert column.take(at).to_pylist() == [everything[i] for i in at]
    assert column.take(np.array([0, 0, len(everything) - 1])).to_pylist() == [everything[0]] * 2 + [everything[-1]]
    in_block_order = np.array([5, 3, BLOCK_ROWS + 9, BLOCK_ROWS + 8, BLOCK_ROWS + 8])  # blocks ascending, rows not
    assert column.take(in_block_order).to_pylist() == [everything[i] for i in in_block_order]
    assert column.nbytes < sum(len(text.encode()) for text in everything)  # repeated keys compress


def test_a_subset_keeps_the_order_asked_for_and_empty_strings():
    texts = ["", "{}", "", "a"] * 700
    column = CompressedStrings([pa.array(texts, pa.large_string())])
    at = np.arange(len(texts))[::-3]
    subset = column.subset(at)
    assert len(subset) == len(at)
    assert subset.take(np.arange(len(at))).to_pylist() == [texts[i] for i in at]


def test_nulls_and_positions_out_of_range_are_refused():
    with pytest.raises(ValueError):
        CompressedStrings([pa.array(["a", None])])
    column = CompressedStrings([pa.array(["a", "b"])])
    with pytest.raises(IndexError):
        column.take(np.array([2]))
    assert column.take(np.array([], dtype=np.int64)).to_pylist() == []


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), max_size=2 * BLOCK_ROWS + 3), max_size=4), st.randoms())
def test_round_trip_for_any_text(parts, rng):
    everything = [text for part in parts for text in part]
    column = CompressedStrings(pa.array(part, pa.string()) for part in parts)
    at = list(range(len(everything)))
    rng.shuffle(at)
    assert column.take(np.array(at, dtype=np.int64)).to_pylist() == [everything[i] for i in at]

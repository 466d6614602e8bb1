"""Compaction's survivors: which rows of the journals and the earlier table are kept."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_provider_pinpoint.results.compaction import keep_mask


def _key(event: np.ndarray, source: np.ndarray, row: np.ndarray) -> np.ndarray:
    return (event.astype(np.int64) << 62) | (source.astype(np.int64) << 40) | row.astype(np.int64)


def _reference(key: np.ndarray, final: np.ndarray) -> np.ndarray:
    """The last row of each key wins, a final one over any failure: written out row by row."""
    best: dict[int, tuple[bool, int]] = {}
    for i, (k, f) in enumerate(zip(key.tolist(), final.tolist(), strict=True)):
        if k not in best or (f, i) > best[k]:
            best[k] = (f, i)
    keep = np.zeros(len(key), dtype=bool)
    keep[[i for _, i in best.values()]] = True
    return keep


@pytest.mark.parametrize("seed", range(40))
def test_the_survivors_are_the_last_final_row_of_each_key(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    sources = int(rng.integers(1, 5))
    # Rows numbered from 1 (the usual case), sparse row numbers, or a source's own huge numbers.
    rows_high = [n + 1, 50 * n, 1 << 39][seed % 3]
    row = rng.integers(0 if seed % 7 == 0 else 1, rows_high, n)
    source = rng.integers(0, sources, n)
    event = rng.integers(0, 2, n) if seed % 2 else np.zeros(n, dtype=np.int64)
    key = _key(event, source, row)
    if seed % 4 == 0:  # every key once: nothing repeats, whatever the spread
        key = np.unique(key)
        rng.shuffle(key)
    final = rng.random(len(key)) < 0.7
    keep = keep_mask(key, final)
    expected = _reference(key, final)
    if keep is None:
        assert expected.all()
    else:
        assert (keep == expected).all()
        assert not expected.all()


def test_one_repeated_row_among_a_million_is_found():
    row = np.arange(1, 1_000_001, dtype=np.int64)
    key = _key(np.zeros_like(row), np.zeros_like(row), row)
    assert keep_mask(key, np.ones(len(key), dtype=bool)) is None
    again = np.append(key, key[123_456])
    final = np.ones(len(again), dtype=bool)
    keep = keep_mask(again, final)
    assert keep is not None and not keep[123_456] and keep[-1] and keep.sum() == 1_000_000


def test_the_same_row_number_of_two_sources_or_two_record_types_is_not_a_repeat():
    row = np.array([5, 5, 5, 5], dtype=np.int64)
    key = _key(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), row)
    assert keep_mask(key, np.zeros(4, dtype=bool)) is None


@pytest.mark.parametrize("spread", [1, 1000], ids=["rows from 1", "rows spread out"])
def test_finding_repeats_holds_little_besides_the_keys(spread):
    # Compaction runs on top of what the load holds: the check may not copy the keys several times.
    import tracemalloc

    n = 4_000_000
    row = np.arange(1, n + 1, dtype=np.int64) * spread
    key = _key(np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), row)
    tracemalloc.start()
    try:
        held = tracemalloc.get_traced_memory()[0]
        assert keep_mask(key, np.ones(n, dtype=bool)) is None
        peak = tracemalloc.get_traced_memory()[1] - held
    finally:
        tracemalloc.stop()
    assert peak < 12 * n  # bytes: a sorted copy (8 a row) and its comparison, or the rows seen and a chunk


def test_keys_of_no_known_layout_are_sorted_not_refused():
    keep = keep_mask(np.array([-1, 5, -1], dtype=np.int64), np.array([True, True, False]))
    assert keep is not None and keep.tolist() == [True, True, False]

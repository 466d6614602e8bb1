"""What the values hash must keep whatever its arithmetic: changes move both lanes, changes do not
cancel, and the shapes an Arrow column can take (slices, chunks, large and dictionary types) hash alike."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_pinpoint.state import values
from airflow_provider_pinpoint.state.values import column_hash, row_hashes


def hashes_of(columns: dict[str, pa.Array]) -> np.ndarray:
    length = len(next(iter(columns.values()))) if columns else 1
    hashes = row_hashes(columns, length)
    assert hashes is not None
    return hashes


def both_lanes_differ(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (before != after).all(axis=-1)


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_every_single_byte_change_moves_both_lanes(kind):
    rng = np.random.default_rng(3)
    for length in (1, 7, 8, 9, 16, 63, 255, 256, 257, 301):
        base = rng.integers(0, 256, length, dtype=np.uint8)
        changed = []
        for position in range(length):
            for flip in (1, 0x80, int(rng.integers(1, 256))):
                value = base.copy()
                value[position] ^= flip
                changed.append(value.tobytes())
        column = pa.array([base.tobytes(), *changed], kind)
        other = pa.array(["the same"] * len(column))
        hashes = hashes_of({"Attributes.a": column, "Id": other})
        assert both_lanes_differ(hashes[0], hashes[1:]).all(), length
        lanes = column_hash(column, "Attributes.a")
        assert both_lanes_differ(lanes[0], lanes[1:]).all(), length


@pytest.mark.parametrize("seed", range(12))
def test_two_changed_bytes_in_different_words_do_not_cancel(seed):
    rng = np.random.default_rng(seed)
    rows, width = 4_000, 96
    base = rng.integers(32, 127, size=(rows, width), dtype=np.uint8)
    lengths = rng.integers(16, width + 1, size=rows)
    first = rng.integers(0, lengths - 8)
    second = first + 8 * rng.integers(1, (lengths - first + 7) // 8)  # another word, same place in it...
    second = np.minimum(second + rng.integers(-7, 8, size=rows), lengths - 1)  # ...or anywhere in it
    second = np.where(second // 8 == first // 8, np.minimum(first + 8, lengths - 1), second)
    top = rng.random(rows) < 0.3  # the top byte of two words: what a weighted sum let cancel
    first = np.where(top, 7, first)
    second = np.where(top, 8 * ((lengths - 1) // 8) - 1, second)
    keep = second // 8 != first // 8
    changed = base.copy()
    index = np.arange(rows)
    changed[index, first] ^= rng.integers(1, 256, size=rows, dtype=np.uint8)
    changed[index, second] ^= rng.integers(1, 256, size=rows, dtype=np.uint8)
    texts = [row[:n].tobytes() for row, n in zip(base, lengths, strict=True)]
    others = [row[:n].tobytes() for row, n in zip(changed, lengths, strict=True)]
    before = hashes_of({"Address": pa.array(texts, pa.binary())})
    after = hashes_of({"Address": pa.array(others, pa.binary())})
    assert keep.sum() > rows // 2
    assert both_lanes_differ(before[keep], after[keep]).all()


@pytest.mark.parametrize("seed", range(12))
def test_the_same_change_in_two_columns_does_not_cancel(seed):
    rng = np.random.default_rng(100 + seed)
    rows = 3_000
    lengths = rng.integers(1, 40, size=rows)
    base = rng.integers(32, 127, size=(rows, 40), dtype=np.uint8)
    changed = base.copy()
    where = rng.integers(0, lengths)
    changed[np.arange(rows), where] ^= rng.integers(1, 256, size=rows, dtype=np.uint8)
    texts = pa.array([row[:n].tobytes() for row, n in zip(base, lengths, strict=True)], pa.binary())
    others = pa.array([row[:n].tobytes() for row, n in zip(changed, lengths, strict=True)], pa.binary())
    before = hashes_of({"User.UserId": texts, "Id": texts})
    after = hashes_of({"User.UserId": others, "Id": others})
    assert both_lanes_differ(before, after).all()
    # In lists too: the same change to an item at the same place of two list columns.
    listed = [
        pa.array([[b"x", value] for value in column.to_pylist()], pa.list_(pa.binary())) for column in (texts, others)
    ]
    assert both_lanes_differ(
        hashes_of({"A": listed[0], "B": listed[0]}), hashes_of({"A": listed[1], "B": listed[1]})
    ).all()


def test_a_value_moved_to_another_column_changes_the_row():
    pairs = [("x", "y"), ("x", None), ("x", ""), ("", None), ("ep-1", "ep-1 ")]
    before = hashes_of({"A": pa.array([a for a, _ in pairs]), "B": pa.array([b for _, b in pairs])})
    after = hashes_of({"A": pa.array([b for _, b in pairs]), "B": pa.array([a for a, _ in pairs])})
    assert both_lanes_differ(before, after).all()


def test_null_empty_missing_and_empty_list_are_all_distinct():
    rows = [
        hashes_of({}),
        hashes_of({"A": pa.array([None], pa.string())}),
        hashes_of({"A": pa.array([""])}),
        hashes_of({"A": pa.array([None], pa.list_(pa.string()))}),
        hashes_of({"A": pa.array([[]], pa.list_(pa.string()))}),
        hashes_of({"A": pa.array([[""]])}),
        hashes_of({"A": pa.array([[None]], pa.list_(pa.string()))}),
        hashes_of({"A": pa.array([["", ""]])}),
        hashes_of({"A": pa.array([None], pa.float64())}),
        hashes_of({"A": pa.array([0.0])}),
    ]
    stacked = np.concatenate(rows)
    assert len(np.unique(stacked[:, 0])) == len(np.unique(stacked[:, 1])) == len(rows)


MASK = (1 << 64) - 1
MIX = ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, None))


def mix(x: int) -> int:
    for shift, factor in MIX:
        x ^= x >> shift
        x = x * factor & MASK if factor else x
    return x


def unmix(x: int) -> int:
    for shift, factor in reversed(MIX):
        x = x * pow(factor, -1, 1 << 64) & MASK if factor else x
        y = x
        for _ in range(64 // shift + 1):
            y = x ^ (y >> shift)
        x = y
    return x


def test_a_collision_made_in_lane_0_leaves_lane_1_apart():
    # Two 16-byte values built to collide in lane 0 (the second word solved for through the
    # inverse finaliser): lane 1, weighing the same mixed words by keys of its own, still tells
    # them apart, so the hash holds 128 bits, not 64 twice.
    keys = values._keys("Id\0binary")
    key = [int(keys[0, slot]) for slot in (0, 1)]
    rng = np.random.default_rng(5)
    pairs = []
    for _ in range(200):
        a, b, other = (int(word) for word in rng.integers(0, 1 << 63, size=3, dtype=np.uint64))
        solved = unmix((mix(b ^ key[1]) + mix(a ^ key[0]) - mix(other ^ key[0])) & MASK) ^ key[1]
        pairs += [
            a.to_bytes(8, "little") + b.to_bytes(8, "little"),
            other.to_bytes(8, "little") + solved.to_bytes(8, "little"),
        ]
    lanes = column_hash(pa.array(pairs, pa.binary()), "Id")
    assert (lanes[0::2, 0] == lanes[1::2, 0]).all()  # the construction holds: lane 0 collides
    assert (lanes[0::2, 1] != lanes[1::2, 1]).all()
    rows = hashes_of({"Id": pa.array(pairs, pa.binary())})
    assert (rows[0::2, 0] == rows[1::2, 0]).all() and (rows[0::2, 1] != rows[1::2, 1]).all()
    assert (keys[1] % 2 == 1).all() and len(np.unique(keys[1])) == keys.shape[1]


SHAPES = {
    "text": (pa.array([f"value-{i % 37}" * (i % 5) if i % 9 else None for i in range(400)]), pa.string()),
    "long-text": (pa.array(["z" * (250 + i % 20) if i % 3 else f"{i}" for i in range(400)]), pa.string()),
    "binary": (pa.array([bytes([i % 256]) * (i % 19) for i in range(400)], pa.binary()), pa.binary()),
    "list": (
        pa.array([None if i % 7 == 0 else [f"i{j}" * (j % 3) for j in range(i % 5)] for i in range(400)]),
        pa.list_(pa.string()),
    ),
    "number": (pa.array([i / 3 if i % 4 else None for i in range(400)]), pa.float64()),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_slice_hashes_as_the_same_values_in_a_fresh_array(shape):
    column, kind = SHAPES[shape]
    for start, length in ((0, 400), (1, 150), (133, 267), (399, 1), (200, 0)):
        part = column.slice(start, length)
        fresh = pa.array(part.to_pylist(), kind)
        assert (column_hash(part, "c") == column_hash(fresh, "c")).all()
        assert (hashes_of({"c": part, "Id": fresh}) == hashes_of({"c": fresh, "Id": fresh})).all() if length else True


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_chunked_column_hashes_as_one_array(shape):
    column, _ = SHAPES[shape]
    chunked = pa.chunked_array([column.slice(0, 123), column.slice(123, 0), column.slice(123)])
    assert (column_hash(chunked, "c") == column_hash(column, "c")).all()
    assert (hashes_of({"c": chunked}) == hashes_of({"c": column})).all()


@pytest.mark.parametrize(
    ("small", "large"),
    [
        (pa.string(), pa.large_string()),
        (pa.binary(), pa.large_binary()),
        (pa.list_(pa.string()), pa.large_list(pa.large_string())),
    ],
    ids=["string", "binary", "list"],
)
def test_large_types_hash_as_their_small_ones(small, large):
    pick = {"string": "text", "binary": "binary", "list": "list"}[str(small).split("<")[0]]
    data = SHAPES[pick][0].to_pylist()
    assert (hashes_of({"c": pa.array(data, small)}) == hashes_of({"c": pa.array(data, large)})).all()
    assert (column_hash(pa.array(data, small), "c") == column_hash(pa.array(data, large), "c")).all()


def test_dictionary_columns_hash_as_their_values():
    plain = pa.array(["EMAIL", None, "SMS", "EMAIL", "", "PUSH" * 20] * 50)
    encoded = plain.dictionary_encode()
    assert (column_hash(encoded, "c") == column_hash(plain, "c")).all()
    assert (hashes_of({"c": encoded}) == hashes_of({"c": plain})).all()
    nested = pa.array([[v] if v is not None else None for v in plain.to_pylist()])
    nested_encoded = pa.ListArray.from_arrays(nested.offsets, nested.values.dictionary_encode(), mask=nested.is_null())
    assert (hashes_of({"c": nested_encoded}) == hashes_of({"c": nested})).all()


def test_many_rows_of_few_long_values_hash_as_each_value_alone():
    # Enough rows, and long enough values, for the few-values path (each distinct value hashed once).
    few = ["marketing-segment-" + name * 4 for name in ("north", "south", "east")] + [None]
    repeated = pa.array(few * 3_000)
    assert (column_hash(repeated, "c")[: len(few)] == column_hash(pa.array(few), "c")).all()
    assert (column_hash(repeated, "c")[len(few) :] == np.tile(column_hash(pa.array(few), "c"), (2_999, 1))).all()


@pytest.mark.parametrize("block", [1, 7, 1_000])
def test_rows_hash_alike_whatever_the_block_they_are_hashed_in(block, monkeypatch):
    columns = {name: column for name, (column, _) in SHAPES.items()}
    whole = hashes_of(columns)
    monkeypatch.setattr(values, "_BLOCK", block)
    assert (hashes_of(columns) == whole).all()
    assert len(np.unique(whole, axis=0)) == len(whole)

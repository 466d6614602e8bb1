"""The hash of a row's normalised values (what the sync state compares instead of the body)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_pinpoint.state import values
from airflow_provider_pinpoint.state.values import column_hash, row_hashes

TEXT = ["ab", "ba", "", None, "abc", "ab\0", "a" * 300, "0", "é", "abcdefghijklmnopq"]


def distinct_rows(hashes: np.ndarray) -> int:
    return len(np.unique(hashes, axis=0))


def test_different_texts_hash_apart_and_equal_texts_alike():
    hashes = column_hash(pa.array(TEXT + TEXT))
    assert hashes.shape == (2 * len(TEXT), 2)
    assert distinct_rows(hashes[: len(TEXT)]) == len(TEXT)  # null, empty, "0" and a trailing NUL included
    assert (hashes[: len(TEXT)] == hashes[len(TEXT) :]).all()


@pytest.mark.parametrize(
    "column",
    [
        pa.array(TEXT * 30),
        pa.array(TEXT * 30, pa.large_string()),
        pa.array([float(i % 17) if i % 5 else None for i in range(300)]),
        pa.array([i % 23 for i in range(300)], pa.int64()),
        pa.array([[str(i % 3), str(i % 4)] if i % 6 else None for i in range(300)]),
        pa.array([None if i % 7 == 0 else [] if i % 7 == 1 else ["x"] * (i % 7) for i in range(300)]),
    ],
    ids=["text", "large-text", "float", "int", "list", "list-lengths"],
)
def test_a_slice_hashes_as_the_same_rows_of_the_whole_column(column):
    whole = column_hash(column)
    for start, length in ((0, 300), (7, 100), (101, 199), (299, 1)):
        assert (column_hash(column.slice(start, length)) == whole[start : start + length]).all()


def test_many_rows_of_few_values_hash_as_each_value_alone():
    # Enough rows for the few-values path (each distinct value hashed once).
    repeated = pa.array(["EMAIL", "SMS", None, "PUSH"] * 2_000)
    assert (column_hash(repeated)[:4] == column_hash(pa.array(["EMAIL", "SMS", None, "PUSH"]))).all()


def test_list_order_boundaries_and_emptiness_matter():
    lists = pa.array([["a", "b"], ["b", "a"], ["ab"], ["a"], ["a", "b", ""], [], None, [None], [""]])
    assert distinct_rows(column_hash(lists)) == len(lists)


def test_numbers_by_value_and_kind():
    assert distinct_rows(column_hash(pa.array([0.0, -0.0, 1.0, 2.5, None]))) == 5
    # 5 as an integer and 5.0 as a float are told apart by the column's kind, in row_hashes.
    as_int = row_hashes({"Metrics.x": pa.array([5])}, 1)
    as_float = row_hashes({"Metrics.x": pa.array([5.0])}, 1)
    assert as_int is not None and as_float is not None and not (as_int == as_float).all()


def table() -> dict[str, pa.Array]:
    return {
        "Id": pa.array(["ep-1", "ep-2", "ep-3"]),
        "Address": pa.array(["a@example.com", "b@example.com", None]),
        "Attributes.segment": pa.array([["x"], ["y", "z"], None]),
        "Metrics.orders": pa.array([1.0, 2.0, None]),
    }


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("Id", "ep-9"),
        ("Address", "c@example.com"),
        ("Attributes.segment", ["y"]),
        ("Metrics.orders", 3.0),
    ],
)
def test_a_changed_value_in_any_column_changes_only_its_row(column, value):
    before = row_hashes(table(), 3)
    changed = table()
    values_list = changed[column].to_pylist()
    values_list[1] = value
    changed[column] = pa.array(values_list, changed[column].type)
    after = row_hashes(changed, 3)
    assert before is not None and after is not None
    assert (before[[0, 2]] == after[[0, 2]]).all()
    assert not (before[1] == after[1]).all()


def test_columns_added_removed_or_swapped_change_every_row():
    before = row_hashes(table(), 3)
    added = table() | {"Attributes.extra": pa.array([None, None, None], pa.list_(pa.string()))}
    removed = {name: column for name, column in table().items() if name != "Metrics.orders"}
    renamed = {("Attributes.other" if name == "Attributes.segment" else name): c for name, c in table().items()}
    for other in (added, removed, renamed):
        after = row_hashes(other, 3)
        assert after is not None
        assert not (before == after).all(axis=1).any()


def test_the_order_of_columns_does_not_matter():
    columns = table()
    reordered = {name: columns[name] for name in reversed(list(columns))}
    assert (row_hashes(columns, 3) == row_hashes(reordered, 3)).all()


def test_a_new_body_format_changes_every_row(monkeypatch):
    before = row_hashes(table(), 3)
    monkeypatch.setattr(values, "FORMAT", values.FORMAT + "-next")
    assert not (before == row_hashes(table(), 3)).all(axis=1).any()


def test_a_column_of_a_kind_not_hashed_gives_no_hashes():
    columns = table() | {"Odd": pa.array([{"a": 1}, {"a": 2}, None])}
    assert row_hashes(columns, 3) is None


def test_changes_in_bytes_of_several_words_move_the_hash():
    # A plain weighted sum of 8-byte words carried a change of a word's top byte only into the top
    # bits of the sum, so two such changes could cancel: a changed address looked unchanged.
    value = "alexandra.konstantinopoulou.marketing@example-corporation.com"
    changed = []
    for first in range(7, len(value), 8):
        for second in range(first + 8, len(value), 8):
            text = list(value)
            text[first], text[second] = text[first].swapcase(), text[second].swapcase()
            changed.append("".join(text))
    hashes = column_hash(pa.array([value, *changed]))
    assert distinct_rows(hashes) == len(changed) + 1
    # Both lanes move, each on its own.
    assert len(np.unique(hashes[:, 0])) == len(np.unique(hashes[:, 1])) == len(changed) + 1


def test_random_one_byte_changes_never_collide():
    rng = np.random.default_rng(7)
    base = rng.integers(97, 123, size=(2_000, 40), dtype=np.uint8)
    flipped = base.copy()
    rows = np.arange(len(base))
    flipped[rows, rng.integers(0, 40, size=len(base))] ^= rng.integers(1, 32, size=len(base), dtype=np.uint8)
    flipped[rows, rng.integers(0, 40, size=len(base))] ^= rng.integers(1, 32, size=len(base), dtype=np.uint8)
    texts = [row.tobytes().decode() for row in (*base, *flipped)]
    unique_texts = len(set(texts))
    assert distinct_rows(column_hash(pa.array(texts))) == unique_texts


@pytest.mark.parametrize("rows", [5_000, 70_000])
def test_a_text_column_of_nulls_only_hashes_as_nulls(rows):
    # Enough rows for the few-values path, whose dictionary is then empty.
    nulls = column_hash(pa.array([None] * rows, pa.string()))
    assert (nulls == column_hash(pa.array([None], pa.string()))[0]).all()


def test_a_block_of_nulls_or_empty_texts_inside_a_column():
    texts = [f"{n:035d}" for n in range(4_096)]
    column = pa.array(texts + [None] * 4_096 + [""] * 4_096 + [None] * 53_248)
    hashes = column_hash(column)
    assert distinct_rows(hashes) == 4_096 + 2
    assert (hashes[:4_096] == column_hash(pa.array(texts))).all()
    assert (hashes[4_096 * 2] == column_hash(pa.array([""]))[0]).all()


def test_long_values_hash_by_their_whole_text_and_alike_in_any_slice():
    long = "a" * 5_000
    column = pa.array(["short", long, long[:-1] + "b", "b" + long[1:], None, long] * 3)
    hashes = column_hash(column)
    assert distinct_rows(hashes[:5]) == 5
    assert (hashes[1] == hashes[5]).all()
    for start in (1, 5, 7):
        assert (column_hash(column.slice(start, 6)) == hashes[start : start + 6]).all()


def _one_value(value: bytes) -> list[int]:
    """A short value's hash from its definition (docs of ``values``): its zero-padded 8-byte words,
    each mixed with its position's key, summed per lane (lane 1 weighed by keys of its own), then
    mixed with its length; computed for the one value alone."""
    words = np.frombuffer(value + b"\0" * (-len(value) % 8), "<u8")
    spread = values._mix(words ^ values._word_keys(len(words), 0)[: len(words)])
    lanes = [
        spread.sum(dtype=np.uint64),
        (spread * values._word_keys(len(words), 1)[: len(words)]).sum(dtype=np.uint64),
    ]
    sized = np.uint64(len(value)) * np.uint64(0xFF51AFD7ED558CCD)
    return [
        int(values._mix(np.array([(lane ^ sized) + key], dtype=np.uint64))[0])
        for lane, key in zip(lanes, values._LANE_KEYS, strict=True)
    ]


def test_texts_hash_word_by_word_as_each_value_alone():
    # Values of every length up to the long limit, side by side in one column (and in a slice of it):
    # each hashes as its own words do, whatever the lengths of the values around it.
    rng = np.random.default_rng(7)
    texts = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in rng.permutation(values._LONG + 1)]
    column = pa.array(texts, pa.binary())
    with np.errstate(over="ignore"):
        expected = [_one_value(text) for text in texts]
        assert column_hash(column).tolist() == expected
        assert column_hash(column.slice(100, 50)).tolist() == expected[100:150]


def test_hashes_stay_those_of_states_already_written():
    # A state on disk holds these hashes: a change here makes every endpoint of every state go again
    # (then bump FORMAT on purpose, and change these figures with it).
    texts = ["", "a", "ep-000000001", "user1@example.com", "x" * 64 + "é", "y" * 300, None]
    assert column_hash(pa.array(texts)).tolist() == [
        [10749833864783185041, 17504965309670356325],
        [14384019620721890959, 6423635492200576480],
        [9493861377102472238, 7672755857678553913],
        [15374550239994386393, 6056260360044918529],
        [6346939868057825660, 17228881053217226926],
        [4385747109189852266, 13668441691963801070],
        [11400714819323198485, 11400714819323198485],
    ]
    rows = {
        "Id": pa.array(["ep-1", "EP-2"]),
        "Metrics.x": pa.array([1.5, None]),
        "Attributes.a": pa.array([["x", "y"], []]),
    }
    hashes = row_hashes(rows, 2)
    assert hashes is not None and hashes.tolist() == [
        [7321695918152334306, 5410068497243170361],
        [14896328415313133186, 17120146481440160442],
    ]

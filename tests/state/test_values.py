"""The hash of a row's normalised values (what the sync state compares instead of the body)."""

from __future__ import annotations

from hashlib import blake2b

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


MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
WORDS = values._LONG // 8
LENGTH, WHOLE, NULL, PLACE = WORDS, WORDS + 1, WORDS + 2, WORDS + 3


def mix(x: int) -> int:
    x ^= x >> 30
    x = x * 0xBF58476D1CE4E5B9 & MASK
    x ^= x >> 27
    x = x * 0x94D049BB133111EB & MASK
    return x ^ (x >> 31)


def keys_of(name: str) -> list[list[int]]:
    """A column's keys from their definition: per lane, the finaliser of slot times the golden
    ratio plus a seed from blake2b of the name; lane 1's made odd."""
    digest = blake2b(name.encode(), digest_size=16).digest()
    seeds = [int.from_bytes(digest[8 * lane : 8 * lane + 8], "little") for lane in range(2)]
    lanes = [[mix((slot * GOLDEN + seed) & MASK) for slot in range(PLACE + 1)] for seed in seeds]
    lanes[1] = [key | 1 for key in lanes[1]]
    return lanes


def term(lanes: list[int], word: int, slot: int, keys: list[list[int]]) -> None:
    mixed = mix(word ^ keys[0][slot])
    lanes[0] = (lanes[0] + mixed) & MASK
    lanes[1] = (lanes[1] + mixed * keys[1][slot]) & MASK


def text_lanes(value: bytes | None, keys: list[list[int]]) -> list[int]:
    """A text value's lanes from the definition (module docstring), for the one value alone: its
    zero-padded words each xored with its position's key and mixed, less what a word of zeros
    mixes to; lane 1 weighs them; then the length as one more word."""
    if value is None:
        return [keys[0][NULL], keys[1][NULL]]
    if len(value) > values._LONG:
        digest = blake2b(value, digest_size=16, person=b"long value").digest()
        halves = [int.from_bytes(digest[8 * lane : 8 * lane + 8], "little") for lane in range(2)]
        return [mix(half ^ keys[lane][WHOLE]) for lane, half in enumerate(halves)]
    lanes = [0, 0]
    for position in range(0, len(value), 8):
        word = int.from_bytes(value[position : position + 8], "little")
        slot = position // 8
        mixed = (mix(word ^ keys[0][slot]) - mix(keys[0][slot])) & MASK
        lanes[0] = (lanes[0] + mixed) & MASK
        lanes[1] = (lanes[1] + mixed * keys[1][slot]) & MASK
    term(lanes, len(value), LENGTH, keys)
    return lanes


def list_lanes(items: list[bytes | None] | None, name: str) -> list[int]:
    """A list's lanes from the definition: each item's lanes (under the items' keys), each lane
    xored with the item's position times the golden ratio and a key, mixed and summed; then the
    list's length as one more word."""
    keys = keys_of(name)
    if items is None:
        return [keys[0][NULL], keys[1][NULL]]
    lanes = [0, 0]
    for position, item in enumerate(items):
        hashed = text_lanes(item, keys_of(name + "\0item"))
        for lane in range(2):
            lanes[lane] = (lanes[lane] + mix(hashed[lane] ^ (position * GOLDEN & MASK) ^ keys[lane][PLACE])) & MASK
    term(lanes, len(items), LENGTH, keys)
    return lanes


def test_texts_hash_word_by_word_as_each_value_alone():
    # Values of every length up to past the long limit, side by side in one column (and in a slice
    # of it): each hashes as its definition says for it alone, whatever the lengths around it.
    rng = np.random.default_rng(7)
    lengths = rng.permutation(values._LONG + 20)
    texts = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) if n % 11 else None for n in lengths]
    column = pa.array(texts, pa.binary())
    expected = [text_lanes(text, keys_of("x\0binary")) for text in texts]
    assert column_hash(column, "x").tolist() == expected
    assert column_hash(column.slice(100, 50), "x").tolist() == expected[100:150]


@pytest.mark.parametrize("length", [0, 1, 2, 4, 5, 7, 8, 9, 12, 14, 16, 17, 31, 255, 256, 257])
@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_values_all_of_one_length_hash_as_each_value_alone(length, kind):
    # A column whose values all have one length (ids, codes) is read a word every `length` bytes:
    # each value still hashes as its definition says, in a slice too, and next to nulls whose
    # slots span bytes of their own (which the nulls' key must replace).
    rng = np.random.default_rng(length)
    texts = [bytes(rng.integers(0, 256, length, dtype=np.uint8)) for _ in range(300)]
    column = pa.array(texts, kind)
    expected = [text_lanes(text, keys_of("x\0binary")) for text in texts]
    assert column_hash(column, "x").tolist() == expected
    assert column_hash(column.slice(37, 200), "x").tolist() == expected[37:237]
    valid = pa.array([i % 9 != 4 for i in range(len(texts))]).buffers()[1]
    _, offsets, data = column.buffers()
    with_nulls = pa.Array.from_buffers(kind, len(texts), [valid, offsets, data])
    assert with_nulls.null_count == len(texts[4::9])
    expected_nulls = [text_lanes(None if i % 9 == 4 else text, keys_of("x\0binary")) for i, text in enumerate(texts)]
    assert column_hash(with_nulls, "x").tolist() == expected_nulls
    assert column_hash(with_nulls.slice(3, 100), "x").tolist() == expected_nulls[3:103]
    # As the items of a list, whose lists span several blocks of rows.
    lists = [texts[i : i + i % 3] for i in range(len(texts))]
    listed = pa.array(lists, pa.list_(kind))
    assert column_hash(listed, "y").tolist() == [list_lanes(items, "y\0list<binary>") for items in lists]


@pytest.mark.parametrize("spread", ["one length", "short", "mixed", "one long"])
def test_lists_hash_as_their_definition_says(spread):
    # Lists of about one length are summed a position at a time, others through a running sum of
    # their items: either way each list hashes as its definition says, nulls and empty lists too.
    rng = np.random.default_rng(23)
    rows = 500
    sizes = {
        "one length": np.full(rows, 3),
        "short": rng.integers(0, 3, size=rows),
        "mixed": rng.integers(0, 40, size=rows),
        "one long": np.where(np.arange(rows) == 250, 300, rng.integers(0, 2, size=rows)),
    }[spread]
    words = [b"beta", b"north", b"", b"a much longer item than a word", None]
    lists = [
        None if i % 29 == 7 else [words[int(k)] for k in rng.integers(0, len(words), size=int(n))]
        for i, n in enumerate(sizes)
    ]
    column = pa.array(lists, pa.list_(pa.binary()))
    expected = [list_lanes(items, "y\0list<binary>") for items in lists]
    assert column_hash(column, "y").tolist() == expected
    assert column_hash(column.slice(101, 300), "y").tolist() == expected[101:401]


def test_rows_of_many_blocks_hash_as_their_definition_says():
    # More rows than a block (each block's columns hashed on their own, then summed): ids of one
    # length, codes of a few lengths, lists of short items, a row at a time by the definition.
    rng = np.random.default_rng(19)
    rows = values._BLOCK * 2 + 301
    ids = [f"ep-{i:09d}" for i in range(rows)]
    codes = [["EMAIL", "SMS", "PUSH", "é", ""][int(k)] for k in rng.integers(0, 5, size=rows)]
    lists = [[["beta", "north", "blue"][int(k)] for k in rng.integers(0, 3, size=i % 3)] for i in range(rows)]
    columns = {"Id": pa.array(ids), "ChannelType": pa.array(codes), "Attributes.a": pa.array(lists)}
    hashes = row_hashes(columns, rows)
    assert hashes is not None
    start = keys_of(values.FORMAT + "|Attributes.a,ChannelType,Id")
    id_keys, code_keys = keys_of("Id\0string"), keys_of("ChannelType\0string")
    item_keys, list_keys = keys_of("Attributes.a\0list<string>\0item"), keys_of("Attributes.a\0list<string>")
    for row in range(0, rows, 7):
        parts = [text_lanes(ids[row].encode(), id_keys), text_lanes(codes[row].encode(), code_keys)]
        listed = [0, 0]
        for position, item in enumerate(lists[row]):
            hashed = text_lanes(item.encode(), item_keys)
            for lane in range(2):
                placed = hashed[lane] ^ (position * GOLDEN & MASK) ^ list_keys[lane][PLACE]
                listed[lane] = (listed[lane] + mix(placed)) & MASK
        term(listed, len(lists[row]), LENGTH, list_keys)
        lanes = [start[0][0], start[1][0]]
        for part in [*parts, listed]:
            lanes = [(lane + value) & MASK for lane, value in zip(lanes, part, strict=True)]
        assert hashes[row].tolist() == [mix(lane) for lane in lanes], row


@pytest.mark.parametrize("shape", ["short", "mixed", "rare-long"])
def test_rows_hash_as_their_definition_says(shape):
    rng = np.random.default_rng(11)
    rows = 300
    limit = {"short": 8, "mixed": 40, "rare-long": 12}[shape]
    sizes = rng.integers(0, limit + 1, size=rows)
    if shape == "rare-long":
        sizes[::37] = rng.integers(13, 300, size=len(sizes[::37]))
    texts = [
        None if i % 13 == 5 else bytes(rng.integers(97, 123, int(n), dtype=np.uint8)).decode()
        for i, n in enumerate(sizes)
    ]
    lists = [
        None if i % 17 == 3 else [str(rng.integers(0, 5)) * int(rng.integers(0, 12)) for _ in range(i % 4)]
        for i in range(rows)
    ]
    numbers = [None if i % 7 == 0 else float(rng.normal()) for i in range(rows)]
    columns = {"Address": pa.array(texts), "Attributes.a": pa.array(lists), "Metrics.m": pa.array(numbers)}
    hashes = row_hashes(columns, rows)
    assert hashes is not None
    start = keys_of(values.FORMAT + "|Address,Attributes.a,Metrics.m")
    for row in range(rows):
        lanes = [start[0][0], start[1][0]]
        text = texts[row]
        parts = [
            text_lanes(None if text is None else text.encode(), keys_of("Address\0string")),
            list_lanes(
                None if lists[row] is None else [item.encode() for item in lists[row]], "Attributes.a\0list<string>"
            ),
        ]
        number = keys_of("Metrics.m\0double")
        if numbers[row] is None:
            parts.append([number[0][NULL], number[1][NULL]])
        else:
            part = [0, 0]
            term(part, int(np.float64(numbers[row]).view(np.uint64)), 0, number)
            parts.append(part)
        for part in parts:
            lanes = [(lane + value) & MASK for lane, value in zip(lanes, part, strict=True)]
        assert hashes[row].tolist() == [mix(lane) for lane in lanes], row


def test_hashes_stay_those_of_states_already_written():
    # A state on disk holds these hashes: a change here makes every endpoint of every state go again
    # (then bump FORMAT on purpose, and change these figures with it).
    texts = ["", "a", "ep-000000001", "user1@example.com", "x" * 64 + "é", "y" * 300, None]
    assert column_hash(pa.array(texts)).tolist() == PINNED_TEXTS
    rows = {
        "Id": pa.array(["ep-1", "EP-2"]),
        "Metrics.x": pa.array([1.5, None]),
        "Attributes.a": pa.array([["x", "y"], []]),
    }
    hashes = row_hashes(rows, 2)
    assert hashes is not None and hashes.tolist() == PINNED_ROWS
    assert values.FORMAT == "endpoint-values-v2"


PINNED_TEXTS = [
    [16109114728949929412, 3527942404127367156],
    [213110024080170968, 15985859344454923032],
    [2102842228928219930, 14968692886597111480],
    [5606854159021162523, 17834899584362896873],
    [11472225772971935828, 7926325795533661658],
    [10386575101912130348, 5448068210713928394],
    [1330992965811178294, 6359804680374085397],
]
PINNED_ROWS = [
    [2115320804249491591, 7044373083140195649],
    [9838534336738665182, 449856946272017329],
]


def expected_lists(lists: list[list[bytes | None] | None], name: str) -> list[list[int]]:
    """Each list's lanes by the definition, each distinct list worked out once (the columns of few
    values below repeat a few lists many times)."""
    memo: dict[tuple[bytes | None, ...] | None, list[int]] = {}
    out = []
    for items in lists:
        key = None if items is None else tuple(items)
        if key not in memo:
            memo[key] = list_lanes(items, name)
        out.append(memo[key])
    return out


FEW = [b"beta", b"north", b"", None, b"a much longer item than a word", b"z" * 300, b"ab", b"ab\0"]


@pytest.mark.parametrize(
    "shape", ["short", "one length", "late value", "rare values", "long lists", "one very long", "null lists only"]
)
@pytest.mark.parametrize(
    "kind", [pa.list_(pa.binary()), pa.large_list(pa.large_binary()), pa.list_(pa.string())], ids=str
)
def test_lists_of_few_distinct_items_hash_as_their_definition_says(shape, kind):
    # Enough items for the few-values path (each distinct item hashed once, each list's lanes taken
    # from a table of the lists there can be, or its items' lanes by their index): nulls and empty
    # texts as items, items past the long limit, texts that differ by a trailing NUL, a value first
    # seen past the sample, lists too long for a table, null and empty lists, a slice.
    rng = np.random.default_rng(31)
    rows = 9_000
    sizes = {
        "short": rng.integers(0, 3, size=rows),
        "one length": np.full(rows, 2),
        "late value": rng.integers(0, 3, size=rows),
        "long lists": rng.integers(0, 9, size=rows),
        "one very long": np.where(np.arange(rows) == 4_000, 300, rng.integers(0, 2, size=rows)),
        "null lists only": rng.integers(0, 3, size=rows),
        "rare values": np.zeros(rows, dtype=np.int64),
    }[shape]
    picks = FEW[:-1] if shape == "late value" else FEW
    lists: list[list[bytes | None] | None] = [
        None if i % 29 == 7 else [picks[int(k)] for k in rng.integers(0, len(picks), size=int(n))]
        for i, n in enumerate(sizes)
    ]
    if shape == "late value":
        lists[7_000] = [FEW[-1], FEW[0]]
    if shape == "rare values":  # a sample of 3 values, then 40 more: too many for a table of 3 items
        more = [*FEW, *(f"rare-{k}".encode() for k in range(35))]
        lists = [
            None
            if i % 29 == 7
            else [(FEW[:3] if i < 300 else more)[int(k) % (3 if i < 300 else len(more))] for k in ks]
            for i, ks in enumerate(rng.integers(0, 1_000, size=(rows, 3)))
        ]
        lists = [items if items is None else items[: i % 4] for i, items in enumerate(lists)]
    if shape == "null lists only":  # nulls that span items of their own, which are hashed, then replaced
        column = pa.array(lists, kind)
        mask = pa.array([i % 3 == 0 for i in range(rows)])
        column = (
            pa.ListArray.from_arrays(column.offsets, column.values, mask=mask)
            if kind == pa.list_(kind.value_type)
            else pa.LargeListArray.from_arrays(column.offsets, column.values, mask=mask)
        )
        lists = [None if i % 3 == 0 else items or [] for i, items in enumerate(lists)]
    else:
        column = pa.array(lists, kind)
    assert values._few_items(column.values, lambda count: True) is not None  # the path these tests are about
    text = pa.types.is_string(kind.value_type)
    expected = expected_lists(lists, "y\0list<string>" if text else "y\0list<binary>")
    assert column_hash(column, "y").tolist() == expected
    assert column_hash(column.slice(1_001, 7_000), "y").tolist() == expected[1_001:8_001]


def test_list_columns_of_the_same_few_items_in_many_blocks_hash_as_their_definition_says():
    # Two list columns of the same values, and a third of other lengths, block after block: each
    # column's lists hash under its own keys (the tables kept from block to block are the column's).
    rng = np.random.default_rng(41)
    rows = values._BLOCK * 2 + 301
    words = ["beta", "north", "blue", "é", ""]
    lists = [[words[int(k)] for k in rng.integers(0, len(words), size=int(n))] for n in rng.integers(1, 3, rows)]
    longer = [[words[int(k)] for k in rng.integers(0, len(words), size=int(n))] for n in rng.integers(0, 7, rows)]
    columns = {"Attributes.a": pa.array(lists), "Attributes.b": pa.array(lists), "Attributes.c": pa.array(longer)}
    hashes = row_hashes(columns, rows)
    assert hashes is not None
    start = keys_of(values.FORMAT + "|Attributes.a,Attributes.b,Attributes.c")
    parts = [
        expected_lists([[item.encode() for item in items] for items in column], f"{name}\0list<string>")
        for name, column in (("Attributes.a", lists), ("Attributes.b", lists), ("Attributes.c", longer))
    ]
    for row in range(rows):
        lanes = [start[0][0], start[1][0]]
        for part in parts:
            lanes = [(lane + value) & MASK for lane, value in zip(lanes, part[row], strict=True)]
        assert hashes[row].tolist() == [mix(lane) for lane in lanes], row


def test_text_lists_whose_items_are_not_utf8_hash_by_their_bytes():
    # A Parquet reader does not check that text is UTF-8: such items are hashed by their bytes, as
    # every other text, not turned into Python strings on the way (which raised).
    rows = 6_000
    words = [b"\xff", b"ok", b"\xc3"]
    raw = pa.array([words[i % 3] for i in range(rows)], pa.binary())
    text = pa.Array.from_buffers(pa.string(), rows, raw.buffers())
    column = pa.ListArray.from_arrays(pa.array(np.arange(0, rows + 1, 2), pa.int32()), text)
    assert values._few_items(column.values, lambda count: True) is not None  # the few-values path
    lists = [[words[i % 3], words[(i + 1) % 3]] for i in range(0, rows, 2)]
    assert column_hash(column, "y").tolist() == expected_lists(lists, "y\0list<string>")


def test_items_of_few_values_at_first_then_of_many_are_not_taken_as_few():
    # Items sorted or grouped by value: the first ones of few values, most of the rest all distinct.
    rows = 20_000
    items = [["a", "b", "c"][i % 3] if i < 500 else f"id-{i}" for i in range(rows)]
    assert values._few_items(pa.array(items), lambda count: True) is None
    column = pa.array([[item] for item in items])
    assert column_hash(column, "y").tolist() == expected_lists([[i.encode()] for i in items], "y\0list<string>")

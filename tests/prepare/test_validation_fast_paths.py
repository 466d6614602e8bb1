"""Validation's shortcuts against the straightforward checks they stand in for, on random tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.prepare import coerce, validation
from airflow_provider_pinpoint.prepare.validation import rules
from airflow_provider_pinpoint.quotas import ENDPOINT_ID_FORBIDDEN_CHARACTERS
from airflow_provider_pinpoint.state import values as values_module
from airflow_provider_pinpoint.state.values import row_hashes

# Characters the ids are drawn from: plain, forbidden, and multibyte ones (no ASCII byte inside).
_ALPHABET = list("ab-_09") + ["$", "{", "}"] + ["é", "€", "日"]


def _ids(rng: np.random.Generator, n: int, forbidden_share: float) -> list[str | None]:
    plain = [c for c in _ALPHABET if c not in "${}"]
    ids: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.05:
            ids.append(None)
            continue
        pool = _ALPHABET if rng.random() < forbidden_share else plain
        ids.append("".join(rng.choice(pool, int(rng.integers(0, 12)))))
    return ids


def _table(ids: list[str | None], large: bool) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "Id": pa.array(ids, pa.large_string() if large else pa.string()),
            "ChannelType": ["EMAIL"] * n,
            "_source": ["endpoints.parquet"] * n,
            "_source_row": list(range(1, n + 1)),
        }
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("forbidden_share", [0.0, 0.02, 0.5])
def test_endpoint_id_characters_are_judged_as_by_the_regex_alone(monkeypatch, seed, forbidden_share):
    rng = np.random.default_rng(seed)
    table = _table(_ids(rng, 400, forbidden_share), large=seed % 2 == 1)
    start, length = int(rng.integers(0, 100)), int(rng.integers(0, 300))  # a slice shares its buffers
    part = table.slice(start, length)

    def judged() -> tuple[list[bool], dict[int, str]]:
        checked = validation.endpoints(part)
        return checked.rejected.tolist(), dict(checked.reasons)

    fast = judged()
    monkeypatch.setattr(rules, "may_hold", lambda values, characters: True)  # the regex on every row
    assert judged() == fast
    forbidden = [i for i, v in enumerate(part.column("Id").to_pylist()) if v is not None and set(v) & set("${}")]
    assert [i for i, reason in fast[1].items() if "may not contain" in reason] == forbidden


def test_may_hold_sees_only_the_bytes_of_the_values_given():
    characters = frozenset("${}")
    column = pa.array(["ab", "c$", None, "é{", "xyz"])
    assert rules.may_hold(column, characters)
    assert not rules.may_hold(column.slice(0, 1), characters)  # the "$" right after is not its own
    assert rules.may_hold(column.slice(1, 1), characters)
    assert not rules.may_hold(column.slice(4), characters)
    assert not rules.may_hold(pa.array(["€日", None], pa.large_string()), characters)


def test_the_byte_scan_reads_chunked_columns_and_offsets_buffers_longer_than_needed():
    chunked = pa.chunked_array([["ep-1", "ep-2"], ["ep-{3}"]])
    assert rules.may_hold(chunked, ENDPOINT_ID_FORBIDDEN_CHARACTERS)
    assert not rules.may_hold(pa.chunked_array([["ep-1"], ["ep-2"]]), ENDPOINT_ID_FORBIDDEN_CHARACTERS)
    # 13 bytes of offsets: three int32 offsets and one byte more, as a buffer may be.
    padded = pa.py_buffer(np.array([0, 2, 4], dtype=np.int32).tobytes() + b"\0")
    values = pa.StringArray.from_buffers(2, padded, pa.py_buffer(b"ab$c"))
    assert rules.may_hold(values, ENDPOINT_ID_FORBIDDEN_CHARACTERS)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("order", ["sorted", "random"])
@pytest.mark.parametrize("hashes", ["none", "numpy", "all alike"])
def test_distinct_and_most_repeated_agree_with_counting_in_any_order(seed, order, hashes, monkeypatch):
    # Values in ascending order are judged by comparing neighbours, others by hashing (first by
    # 64-bit hashes where there are enough of them; hashes all alike stand for collisions, which
    # only Arrow's kernels can then settle): the same answers.
    if hashes != "none":
        monkeypatch.setattr(rules, "_HASHED_FROM", 0)
    if hashes == "all alike":
        monkeypatch.setattr(values_module, "column_hash", lambda array, name="": np.zeros((len(array), 2), np.uint64))
    rng = np.random.default_rng(seed)
    values = [v for v in _ids(rng, int(rng.integers(0, 60)), 0.0)]
    if seed % 2:  # no repeats, so that both answers are exercised
        values = list(dict.fromkeys(values))
    if order == "sorted":
        values = sorted(v for v in values if v is not None) + [None] * values.count(None)
    counts = [values.count(v) for v in values if v is not None]
    array = pa.array(values, pa.string())
    assert rules.all_distinct(array) == (max(counts, default=0) <= 1)
    assert rules.most_repeated(array) == max(counts, default=0)


def test_a_user_over_the_limit_in_a_sorted_table_is_rejected_as_in_a_shuffled_one():
    # Sorted by user id, the count of a user's endpoints comes from neighbours: the same rejections.
    n = 40
    users = sorted([f"u{i % 3}" for i in range(n)])  # 14, 13, 13 endpoints
    users[-1] = users[-2] = "u9"  # so the rows stay sorted
    table = pa.table(
        {
            "Id": [f"ep-{i:03d}" for i in range(n)],
            "ChannelType": ["EMAIL"] * n,
            "User.UserId": users,
            "_source": ["endpoints.parquet"] * n,
            "_source_row": list(range(1, n + 1)),
        }
    )
    over = pa.concat_tables([table, table.slice(0, 3).set_column(0, "Id", pa.array(["ep-a", "ep-b", "ep-c"]))])
    over = over.sort_by("User.UserId")
    shuffled = over.take(pa.array(np.random.default_rng(0).permutation(over.num_rows)))
    assert validation.seen_for(over).users_within_limit is False
    for sliced in (over, shuffled):
        seen = validation.seen_for(sliced)
        checked = [validation.endpoints(sliced.slice(s, 10), seen) for s in range(0, sliced.num_rows, 10)]
        reasons = sorted(r.split(": ", 1)[1] for c in checked for r in c.reasons.values())
        refused = "User.UserId already has 15 endpoints in this input; Pinpoint refuses endpoint {} of a user for EMAIL"
        assert reasons == [refused.format(16), refused.format(17)]


@pytest.mark.parametrize("seed", range(6))
def test_rows_said_unchanged_skip_only_the_rules_they_passed(seed, monkeypatch):
    # Rows the sync state finds unchanged are not judged by their own values again; chosen among
    # rows that passed every rule the day before, the table gets the same rejections and messages,
    # cross-row rules (ids repeated in any case, endpoints per user) still counting the skipped rows.
    # Today's columns come in another order, which the state's row hash ignores but the
    # per-application key cap (2 here) counts by: rows unchanged in values can be over it today.
    monkeypatch.setattr(quotas, "MAX_ENDPOINT_CUSTOM_ATTRIBUTES_PER_APP", 2)
    rng = np.random.default_rng(seed)
    n = 80
    pick = lambda pool: [pool[k] for k in rng.integers(0, len(pool), n)]  # noqa: E731
    ids = [f"ep-{k}" for k in rng.integers(0, 70, n)]
    yesterday = pa.table(
        {
            "Id": [i.upper() if rng.random() < 0.2 else i for i in ids],
            "ChannelType": pick(["EMAIL"] * 8 + ["PIGEON"]),
            "OptOut": pick(["NONE", "ALL", "SOME"]),
            "Location.Country": pick(["US", "DE", "XX", None]),
            "Attributes.tag": pick([["a"], ["b" * 200], None]),
            "Attributes.kind": pick([["k"], None, None]),
            "Metrics.score": pick([1.0, None, None, None]),
            "User.UserId": pick(["u1"] * 6 + ["u2", "u3"]),
            "_source": ["endpoints.parquet"] * n,
            "_source_row": list(range(1, n + 1)),
        }
    )
    order = list(yesterday.column_names)
    order[4:7] = [order[6], order[4], order[5]]  # Metrics.score now before the attributes
    table = yesterday.select(order)

    def judged(table: pa.Table, unchanged) -> tuple[list[bool], dict[int, str]]:
        seen = validation.seen_for(table)
        parts = [validation.endpoints(table.slice(s, 16), seen, unchanged=unchanged(s)) for s in range(0, n, 16)]
        reasons = {s + i: r for s, p in zip(range(0, n, 16), parts, strict=True) for i, r in p.reasons.items()}
        return np.concatenate([p.rejected for p in parts]).tolist(), reasons

    passed = ~np.array(judged(yesterday, lambda start: None)[0])
    every = judged(table, lambda start: None)
    unchanged = passed & (rng.random(n) < 0.7)
    assert 0 < unchanged.sum() < passed.sum() < n
    assert any("Attributes.kind is distinct" in every[1].get(i, "") for i in np.flatnonzero(unchanged))
    assert judged(table, lambda start: lambda checked: unchanged[start : start + len(checked)]) == every


@pytest.mark.parametrize("values", [[-0.0, 0.0], [-0.0, 0.0, 0.0], [1.0, float("nan"), float("nan")], [-1, 0, 0, 7]])
def test_numbers_are_counted_as_hashing_counts_them(values):
    # Floats order -0.0 equal to 0.0, which hashing tells apart: in order or not, the answers are Arrow's.
    array = pa.array(values)
    counts = pc.value_counts(array).field("counts")
    assert rules.most_repeated(array) == pc.max(counts).as_py()
    assert rules.all_distinct(array) == (len(pc.unique(array)) == len(array))


@pytest.mark.parametrize("seed", range(8))
def test_lists_kept_whole_are_the_lists_the_general_way_makes(seed, monkeypatch):
    # A list column none of whose values is dropped skips counting each row's values: the lists it
    # gives, their type, failures and row hashes are those of the general way, sliced or not.
    rng = np.random.default_rng(seed)
    words = ["a", "bb", "é", "日本", "x" * 40]
    odd = {1: None, 3: "", 5: "empty list"}  # seeds where one row breaks the fast path's conditions
    rows: list[list[str | None] | None] = [
        [words[k] for k in rng.integers(0, len(words), int(rng.integers(1, 4)))] for _ in range(200)
    ]
    if seed in odd:
        at = int(rng.integers(0, 200))
        rows[at] = [] if odd[seed] == "empty list" else [odd[seed]]
    array = pa.array(rows, pa.list_(pa.string()))
    start, length = int(rng.integers(0, 50)), int(rng.integers(100, 150))
    for column in (array, array.slice(start, length), pa.chunked_array([array.slice(start, length)])):
        fast, fast_failed = coerce.to_string_lists(column)
        with monkeypatch.context() as patched:
            patched.setattr(coerce, "_all_kept", lambda array, values: None)  # the general way
            general, general_failed = coerce.to_string_lists(column)
        assert fast.type == general.type
        assert fast.to_pylist() == general.to_pylist()
        assert fast.equals(general)
        assert fast_failed.tolist() == general_failed.tolist()
        assert (row_hashes({"Attributes.a": fast}, len(fast)) == row_hashes({"Attributes.a": general}, len(fast))).all()


def test_a_subset_reads_its_rows_values_as_read():
    # A subset keeps the batch's raw table whole and where its rows are in it: a value as read is
    # that of the same row, in a subset of a subset too.
    table = pa.table(
        {
            "Id": [f"ep-{i}" for i in range(10)],
            "Metrics.score": [str(i * 10) for i in range(10)],
            "_source": ["endpoints.csv"] * 10,
            "_source_row": list(range(1, 11)),
        }
    )
    checked = validation.endpoints(table)
    part = checked.subset(np.array([1, 4, 7, 8]))
    inner = part.subset(np.array([0, 2, 3]))
    assert [part.raw_value("Metrics.score", i) for i in range(4)] == ["10", "40", "70", "80"]
    assert [inner.raw_value("Metrics.score", i) for i in range(3)] == ["10", "70", "80"]
    assert [inner.label(i) for i in range(3)] == ["endpoints.csv row 2", "endpoints.csv row 8", "endpoints.csv row 9"]


@pytest.mark.parametrize("seed", range(6))
def test_ids_are_lower_cased_as_the_utf8_kernel_does(seed):
    # ASCII text takes Arrow's ASCII kernel; a value past ASCII anywhere in the bytes the values
    # span sends them all to the UTF-8 one. Same text either way, sliced or not.
    rng = np.random.default_rng(seed)
    alphabet = list("abcXYZ-_09") + (["É", "ß", "Σ", "日"] if seed % 2 else [])
    values = [
        "".join(rng.choice(alphabet, int(rng.integers(0, 8)))) if rng.random() > 0.1 else None for _ in range(300)
    ]
    array = pa.array(values, pa.large_string() if seed % 3 == 0 else pa.string())
    for part in (array, array.slice(int(rng.integers(0, 100)), int(rng.integers(0, 200)))):
        lowered = rules.lower_cased(part)
        assert lowered.type == part.type
        assert lowered.equals(pc.utf8_lower(part))
    assert rules.lower_cased(pa.array(["ÉCOLE", "ÅB"])).to_pylist() == ["école", "åb"]

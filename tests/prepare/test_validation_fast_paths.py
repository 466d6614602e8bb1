"""Validation's shortcuts against the straightforward checks they stand in for, on random tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_pinpoint.prepare import validation
from airflow_provider_pinpoint.prepare.validation import rules
from airflow_provider_pinpoint.quotas import ENDPOINT_ID_FORBIDDEN_CHARACTERS

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

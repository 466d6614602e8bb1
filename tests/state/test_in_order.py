"""A part written in its input's order says so in its footer: the next run in that order reads no ids.

The commit of a run whose every row got its entry, spelt as the input's, marks the part with a
digest of the input's ids. A run whose ids have the same digest takes each entry at its own row
without reading the part's ids, and commits without matching them again. These tests hold the
runs that take that way to what the matching way gives, entry for entry.
"""

from __future__ import annotations

import json
import posixpath
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint.state import StateFiles, Sync
from airflow_provider_pinpoint.state import sync as sync_module
from tests.state.tables import accepted

APP = "app"
MARK = sync_module._IN_ORDER.encode()


def _part(state: Path, name: str = "main") -> Path:
    return state / "pinpoint" / APP / "endpoints" / f"{name}.parquet"


def _run(
    state: Path, ids: list[str], values: list[int], *, refused: frozenset[str] = frozenset(), between=None
) -> list[bool]:
    """One run through the state as the endpoints step drives it: ``ids`` whose values hash to
    ``values``, every candidate accepted but ``refused``; ``between`` is called after the state
    was read, before the commit. Which rows were unchanged."""
    sync = Sync(StateFiles(str(state), application_id=APP))
    text = pa.array(ids, pa.string())
    hashes = np.array([[value, 1] for value in values], dtype=np.uint64)
    with sync.files.lock("run"):
        known = sync.known(text, distinct=True)
        same = known.same(0, text, hashes)
        sync.add_compared(text, hashes, same, np.arange(len(ids)))
        sync.unchanged_endpoints()
        sync.observe(accepted([i for i, s in zip(ids, same, strict=True) if not s and i not in refused]))
        if between is not None:
            between()
        sync.commit()
    return same.tolist()


class _Reads(list):
    """The columns each read of a state file asked for, as (file name, columns); ``rows``: the
    batch size the reads use."""

    rows = 1_000_000


@pytest.fixture
def spied(monkeypatch):
    reads = _Reads()
    real = StateFiles.batches

    def batches(self, path, columns, rows=1_000_000):
        def chosen(meta):
            names = columns(meta) if callable(columns) else columns
            reads.append((posixpath.basename(path), tuple(names)))
            return names

        return real(self, path, chosen, min(rows, reads.rows))

    monkeypatch.setattr(StateFiles, "batches", batches)
    # One clock for both ways of running, so that their files can be compared whole.
    clock = SimpleNamespace(time=lambda: 1_800_000_000.0)
    monkeypatch.setattr(sync_module, "time", clock)
    return reads


DAY2 = {
    "same order": lambda ids, rng: ids,
    "two rows swapped": lambda ids, rng: [ids[0], ids[2], ids[1], *ids[3:]],
    "one row more": lambda ids, rng: [*ids, "ep-new"],
    "one row less": lambda ids, rng: ids[:-1],
    "shuffled": lambda ids, rng: [ids[0], *rng.permutation(ids[1:]).tolist()],
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("day2", list(DAY2))
@pytest.mark.parametrize("crashed", [False, True])
def test_a_part_in_the_inputs_order_is_read_and_written_as_matching_would(
    tmp_path, spied, monkeypatch, day2, seed, crashed
):
    # Day 1 writes the part in its order, marked. Day 2 runs three ways on copies of that state: as
    # it comes; with every mark ignored (an older part: its ids read, and compared with the
    # input's as a whole); and with entries matched one by one, at read and at commit, as before
    # either. All must tell the same rows unchanged and leave the same part, entry for entry; only
    # a day in the same order may skip reading the ids.
    rng = np.random.default_rng(seed)
    ids = [f"ep-{i:03d}" for i in range(int(rng.integers(5, 40)))]
    values = {i: int(v) for i, v in zip(ids, rng.integers(0, 3, len(ids)), strict=True)}
    first = tmp_path / "first"
    _run(first, ids, [values[i] for i in ids])
    assert MARK in pq.read_metadata(_part(first)).metadata
    if crashed:  # a crashed run's "send again" entries: one of an id day 2 has, one of an id it lacks
        pending = _part(first, "main.pending")
        pq.write_table(
            pq.read_table(_part(first)).take([1, len(ids) - 1]).set_column(1, "body_hash", pa.nulls(2, pa.binary(16))),
            pending,
        )
    day = DAY2[day2](ids, rng)
    spied.rows = len(day)  # a batch ends where the input does: the part's entries past it come apart
    new = {i: values.get(i, 0) + int(rng.integers(0, 2)) for i in day}
    refused = frozenset(i for i in day if rng.integers(0, 4) == 0)
    results = {}
    quick: list[str] = []  # the ways whose commit matched nothing
    rows_in_order = Sync._rows_in_order
    monkeypatch.setattr(Sync, "_rows_in_order", lambda self, *a: quick.append(way) or rows_in_order(self, *a))
    for way in ("marked", "compared", "matched"):
        state = tmp_path / way
        shutil.copytree(first, state)
        if way == "compared":
            monkeypatch.setattr(sync_module, "_in_order", lambda meta, ids, digest: False)
        if way == "matched":
            monkeypatch.setattr(Sync, "_all_in_place", lambda self, candidates: False)
        spied.clear()
        same = _run(state, day, [new[i] for i in day], refused=refused)
        ids_read = [name for name, columns in spied if name == "main.parquet" and "endpoint_id" in columns]
        results[way] = (same, pq.read_table(_part(state)), ids_read)
    marked, compared, matched = results["marked"], results["compared"], results["matched"]
    assert marked[0] == compared[0] == matched[0]
    assert marked[1].equals(matched[1]) and compared[1].equals(matched[1])
    assert compared[2] and matched[2]  # without the mark, the ids are read
    assert (not marked[2]) == (day2 == "same order")
    assert quick == (["marked", "compared"] if day2 == "same order" else [])
    again = {ids[1], ids[-1]} if crashed else set()
    expected = [i in values and new[i] == values[i] and i not in again for i in day]
    assert marked[0] == expected


def test_the_mark_is_left_off_where_an_entry_is_not_at_its_row(tmp_path):
    # A row without an entry, or an entry spelt otherwise than the row, leaves the part unmarked:
    # the next run reads its ids.
    state = tmp_path / "state"
    _run(state, ["ep-0", "ep-1", "ep-2"], [1, 1, 1])
    assert MARK in pq.read_metadata(_part(state)).metadata
    _run(state, ["ep-0", "EP-1", "ep-2"], [1, 1, 1])  # nothing changed: the part is not written again
    assert MARK in pq.read_metadata(_part(state)).metadata
    _run(state, ["ep-0", "EP-1", "ep-2"], [1, 1, 2])  # EP-1: ep-1's entry, kept as it was spelt
    assert pq.read_table(_part(state)).column("endpoint_id").to_pylist() == ["ep-0", "ep-1", "ep-2"]
    assert MARK not in (pq.read_metadata(_part(state)).metadata or {})
    assert _run(state, ["ep-0", "ep-1", "ep-2"], [1, 1, 3]) == [True, True, False]
    assert MARK in pq.read_metadata(_part(state)).metadata
    assert _run(state, ["ep-0", "ep-1", "ep-2", "ep-3"], [1, 1, 3, 1]) == [True, True, True, False]
    assert MARK in pq.read_metadata(_part(state)).metadata


@pytest.mark.parametrize("marked", [True, False])
def test_a_part_changed_between_the_read_and_the_commit_stops_the_commit(tmp_path, marked):
    # The commit of a run in the part's order matches nothing: a part another writer replaced
    # meanwhile (its ids no longer the input's) must stop it, not give its entries to other ids.
    state = tmp_path / "state"
    ids = [f"ep-{i}" for i in range(6)]
    _run(state, ids, [1] * 6)
    if not marked:  # a part as older versions wrote it
        pq.write_table(pq.read_table(_part(state)).replace_schema_metadata(None), _part(state))
        assert MARK not in (pq.read_metadata(_part(state)).metadata or {})
    other = pq.read_table(_part(state)).take([1, 0, 2, 3, 4, 5])

    def rewrite() -> None:
        pq.write_table(other, _part(state))

    with pytest.raises(sync_module.StateError, match="changed while this run rewrote it"):
        _run(state, ids, [2] * 6, between=rewrite)
    assert pq.read_table(_part(state)).equals(other.cast(pq.read_table(_part(state)).schema))


def test_the_digest_tells_where_one_id_ends(tmp_path):
    # The ids' lengths are part of the digest: "ab", "c" is not "a", "bc"; a slice digests as its copy.
    digest = sync_module._ids_digest
    assert digest(pa.array(["ab", "c"])) != digest(pa.array(["a", "bc"]))
    assert digest(pa.array(["x", "ab", "c"]).slice(1)) == digest(pa.array(["ab", "c"]))
    assert digest(pa.array(["ab", None])) is None


def _day(
    state: Path, part: str, ids: list[str], values: list[int], *, invalid: frozenset[str] = frozenset(), refresh=False
) -> list[bool]:
    """One run on part ``part``: rows of ``invalid`` ids rejected by validation, every other row
    sent accepted unless unchanged; ``refresh``: a full refresh. Which rows were unchanged."""
    sync = Sync(StateFiles(str(state), application_id=APP, part=part), full_refresh=refresh)
    text = pa.array(ids, pa.string())
    hashes = np.array([[value, 1] for value in values], dtype=np.uint64)
    keep = np.array([i for i, name in enumerate(ids) if name not in invalid], dtype=np.int64)
    with sync.files.lock("run"):
        known = sync.known(text, distinct=True)
        same = known.same(0, text, hashes) & np.isin(np.arange(len(ids)), keep)
        sync.add_compared(text.take(pa.array(keep)), hashes[keep], same[keep], keep)
        sync.unchanged_endpoints()
        sync.observe(accepted([ids[i] for i in keep if not same[i]]))
        sync.commit()
    return same.tolist()


def test_a_part_keeps_its_mark_after_an_endpoint_left_the_table(tmp_path, spied, monkeypatch):
    # The entries of endpoints deleted from the table stay in the part, after the input's: the days
    # after still take the short way (no ids read, nothing matched at commit), and give what
    # matching gives, entry for entry.
    ids = [f"ep-{i}" for i in range(8)]
    day = [i for i in ids if i != "ep-3"]
    quick: list[str] = []
    rows_in_order = Sync._rows_in_order
    monkeypatch.setattr(Sync, "_rows_in_order", lambda self, *a: quick.append(way) or rows_in_order(self, *a))
    for way in ("marked", "matched"):
        state = tmp_path / way
        if way == "matched":
            monkeypatch.setattr(Sync, "_all_in_place", lambda self, candidates: False)
            monkeypatch.setattr(sync_module, "_in_order", lambda meta, ids, digest: False)
        _run(state, ids, [1] * 8)
        _run(state, day, [1, 2, 1, 1, 1, 1, 1])  # ep-3's entry goes after the input's
        assert pq.read_table(_part(state)).column(0).to_pylist() == [*day, "ep-3"]
        for value in (3, 4):
            quick.clear()
            spied.clear()
            assert _run(state, day, [1, value, 1, 1, 1, 1, 1]) == [True, False, True, True, True, True, True]
            ids_read = [columns for name, columns in spied if name == "main.parquet" and "endpoint_id" in columns]
            if way == "marked":
                assert quick == ["marked"]
                assert len(ids_read) == 1  # the commit's, for ep-3's entry; the read asked for no ids
            else:
                assert not quick and ids_read
        assert pq.read_table(_part(state)).column(0).to_pylist() == [*day, "ep-3"]
    assert pq.read_table(_part(tmp_path / "marked")).equals(pq.read_table(_part(tmp_path / "matched")))
    assert MARK in pq.read_metadata(_part(tmp_path / "marked")).metadata
    # ep-3 back in the table: its entry is found again, and it is unchanged
    assert _run(tmp_path / "marked", ids, [1, 4, 1, 1, 1, 1, 1, 1]) == [True] * 8


def test_a_send_again_entry_of_an_input_row_after_the_inputs_leaves_the_part_unmarked(tmp_path):
    # A crashed run left "send again" for ep-1; the next run rejected ep-1's row, so that entry is
    # kept after the input's entries. A mark would tell the run after to skip it: ep-1 would count
    # as unchanged though its last sending was never confirmed.
    state = tmp_path / "state"
    ids = [f"ep-{i}" for i in range(5)]
    _run(state, ids, [1] * 5)
    pending = _part(state, "main.pending")
    pq.write_table(
        pq.read_table(_part(state)).take([1]).set_column(1, "body_hash", pa.nulls(1, pa.binary(16))), pending
    )
    _day(state, "main", ids, [1, 1, 1, 1, 2], invalid=frozenset({"ep-1"}))
    assert pq.read_table(_part(state)).column(0).to_pylist() == [*ids, "ep-1"]
    assert MARK not in (pq.read_metadata(_part(state)).metadata or {})
    assert _run(state, ids, [1, 1, 1, 1, 2]) == [True, False, True, True, True]


def test_a_second_entry_of_an_input_rows_endpoint_after_the_inputs_leaves_the_part_unmarked(tmp_path):
    # A part holding two entries of ep-1 in two spellings, the newer "send again"; the run rejects
    # ep-1's row, so the second entry goes after the input's. A mark would tell the run after to
    # skip it, and ep-1 would count as unchanged.
    state = tmp_path / "state"
    ids = [f"ep-{i}" for i in range(4)]
    _run(state, ids, [1] * 4)
    table = pq.read_table(_part(state))
    again = (
        table.take([1])
        .set_column(0, "endpoint_id", pa.array(["EP-1"]))
        .set_column(1, "body_hash", pa.nulls(1, pa.binary(16)))
    )
    later = pa.array([table.column(2)[1].as_py().timestamp() * 1000 + 1000], pa.int64()).cast(pa.timestamp("ms", "UTC"))
    again = again.set_column(2, "accepted_at", later.cast(table.schema.field(2).type))
    pq.write_table(pa.concat_tables([table, again]).replace_schema_metadata(None), _part(state))
    assert _day(state, "main", ids, [1, 1, 1, 2], invalid=frozenset({"ep-1"})) == [True, False, True, False]
    assert pq.read_table(_part(state)).column(0).to_pylist() == [*ids, "EP-1"]
    assert MARK not in (pq.read_metadata(_part(state)).metadata or {})
    assert _run(state, ids, [1, 1, 1, 2]) == [True, False, True, True]


def test_a_mark_that_says_nothing_of_the_entries_after_the_inputs_is_trusted_only_without_them(tmp_path):
    # A mark as the first marking version wrote it (no "after"), over a crashed run's "send again"
    # for ep-1 kept after the input's entries (that version marked a part whatever followed, and
    # trusted a mark only where nothing did). ep-1's last sending was never confirmed: it goes again.
    state = tmp_path / "state"
    ids = [f"ep-{i}" for i in range(5)]
    _run(state, ids, [1] * 5)
    table = pq.read_table(_part(state))
    mark = json.loads(pq.read_metadata(_part(state)).metadata[MARK])
    del mark["after"]
    again = table.take([1]).set_column(1, "body_hash", pa.nulls(1, pa.binary(16)))
    later = pa.array([table.column(2)[1].value + 1000], pa.int64()).cast(table.schema.field(2).type)
    again = again.set_column(2, "accepted_at", later)
    pq.write_table(pa.concat_tables([table, again]).replace_schema_metadata({MARK: json.dumps(mark)}), _part(state))
    assert _run(state, ids, [1, 1, 1, 1, 1]) == [True, False, True, True, True]
    # and such a mark over exactly the input's entries is still taken
    _run(state, ids, [1, 1, 1, 1, 2])
    exact = json.loads(pq.read_metadata(_part(state)).metadata[MARK])
    del exact["after"]
    pq.write_table(pq.read_table(_part(state)).replace_schema_metadata({MARK: json.dumps(exact)}), _part(state))
    assert _run(state, ids, [1, 1, 1, 1, 3]) == [True, True, True, True, False]


@pytest.mark.parametrize("in_order", [True, False])
def test_a_full_refresh_keeps_what_it_did_not_send_as_send_again(tmp_path, monkeypatch, in_order):
    # ep-7 went with v1 through part main, then with v2 through part b. A full refresh of b that
    # rejected ep-7's row must not drop b's entry: main's older entry would then stand for ep-7, and
    # main's next row with v1 would count as unchanged though the destination holds v2.
    real = Sync.add_compared
    if not in_order:  # the commit that places entries without the input's order
        monkeypatch.setattr(
            Sync, "add_compared", lambda self, ids, hashes, same, rows=None: real(self, ids, hashes, same)
        )
    state = tmp_path / "state"
    assert _day(state, "main", ["ep-7", "ep-1"], [1, 1]) == [False, False]
    assert _day(state, "b", ["ep-7"], [2]) == [False]
    assert _day(state, "b", ["ep-7", "ep-8"], [2, 1], invalid=frozenset({"ep-7"}), refresh=True) == [False, False]
    assert _day(state, "main", ["ep-7", "ep-1"], [1, 1]) == [False, True]
    # and an endpoint the refreshed part no longer has goes again wherever it shows up next
    assert _day(state, "b", ["ep-8"], [1], refresh=True) == [False]
    assert _day(state, "main", ["ep-7", "ep-1"], [1, 1]) == [False, True]

"""Sync's reading of the state (``_latest``) against the plain entry-by-entry rule, on random states."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint.state import StateFiles, Sync
from airflow_provider_pinpoint.state.files import ENDPOINTS_SCHEMA
from airflow_provider_pinpoint.state.keys import to_arrow

BODIES = [np.array([7, 7], dtype=np.uint64), np.array([8, 9], dtype=np.uint64), None]  # None: "send again"


def _latest_entry_by_entry(files: list[list[tuple[str, int, np.ndarray | None]]], ids: list[str | None]):
    """The rule as docs/sync.md states it: per id the entries of the latest time over every file;
    a "send again" one, or two that disagree, leave nothing to compare with; an id repeated in the
    input compares only at its first row."""
    entries: dict[str, list[tuple[int, np.ndarray | None]]] = {}
    for rows in files:
        for endpoint_id, stamp, body in rows:
            entries.setdefault(endpoint_id, []).append((stamp, body))
    stored = np.zeros((len(ids), 2), dtype=np.uint64)
    valid = np.zeros(len(ids), dtype=bool)
    for position, endpoint_id in enumerate(ids):
        if endpoint_id is None or endpoint_id not in entries or ids.index(endpoint_id) != position:
            continue
        newest = max(stamp for stamp, _ in entries[endpoint_id])
        bodies = [body for stamp, body in entries[endpoint_id] if stamp == newest]
        if all(body is not None and (body == bodies[0]).all() for body in bodies):
            stored[position], valid[position] = bodies[0], True
    return stored, valid


@pytest.mark.parametrize("seed", range(12))
def test_each_id_gets_its_latest_entry_over_every_part(tmp_path, seed):
    rng = np.random.default_rng(seed)
    pool = [f"ep-{i}" for i in range(40)]
    files = []
    for _ in range(int(rng.integers(1, 4))):  # one part, or several (a sharded state)
        # Within a file an id appears once, as commit writes it; the stamps are few, so times tie across files.
        chosen = rng.choice(len(pool), int(rng.integers(0, len(pool))), replace=False)
        stamps = 1_700_000_000_000 + rng.integers(0, 3, len(chosen)) * 1000
        files.append([(pool[k], int(s), BODIES[int(rng.integers(0, 3))]) for k, s in zip(chosen, stamps, strict=True)])
    sync = _state(tmp_path, files)
    # The input: some ids of the state, some new ones, a repeat, a null; in any order.
    ids = [pool[int(k)] for k in rng.integers(0, len(pool), 30)] + ["new-1", None]
    rng.shuffle(ids)
    known = sync.known(pa.array(ids, pa.string()))
    stored, valid = _latest_entry_by_entry(files, ids)
    assert known.valid.tolist() == valid.tolist()
    assert known.hashes[valid].tolist() == stored[valid].tolist()


def test_a_state_in_the_inputs_own_order_is_read_alike(tmp_path):
    # The usual daily case (every entry one of the input's ids, none earlier): taken at once.
    ids = [f"ep-{i}" for i in range(50)]
    rng = np.random.default_rng(3)
    rows = [(i, 1_700_000_000_000 + int(rng.integers(0, 5)), BODIES[int(rng.integers(0, 3))]) for i in ids]
    known = _state(tmp_path, [rows]).known(pa.array(ids))
    stored, valid = _latest_entry_by_entry([rows], ids)
    assert valid.any() and not valid.all()
    assert known.valid.tolist() == valid.tolist()
    assert known.hashes[valid].tolist() == stored[valid].tolist()


@pytest.mark.parametrize("seed", range(4))
def test_entries_of_one_time_in_two_parts_must_agree(tmp_path, seed):
    # A second part holding the same ids at the same or a later time: ties decide, not the order of the parts.
    rng = np.random.default_rng(seed)
    ids = [f"ep-{i}" for i in range(60)]
    first = [(i, 1_700_000_000_000, BODIES[int(rng.integers(0, 3))]) for i in ids]
    second = [(i, 1_700_000_000_000 + int(rng.integers(0, 2)), BODIES[int(rng.integers(0, 3))]) for i in ids]
    known = _state(tmp_path, [first, second]).known(pa.array(ids))
    stored, valid = _latest_entry_by_entry([first, second], ids)
    assert known.valid.tolist() == valid.tolist()
    assert known.hashes[valid].tolist() == stored[valid].tolist()


def _state(tmp_path, files: list[list[tuple[str, int, np.ndarray | None]]]) -> Sync:
    """A state of one app whose endpoint files hold ``files``' entries (id, milliseconds, body or None)."""
    directory = tmp_path / "state" / "pinpoint" / "app" / "endpoints"
    directory.mkdir(parents=True)
    for number, rows in enumerate(files):
        bodies = np.array([b if b is not None else [0, 0] for _, _, b in rows], dtype=np.uint64).reshape(-1, 2)
        hashes = [h if r[2] is not None else None for h, r in zip(to_arrow(bodies).to_pylist(), rows, strict=True)]
        stamps = [datetime.fromtimestamp(r[1] / 1000, UTC) for r in rows]
        columns = [pa.array([r[0] for r in rows], pa.string()), hashes, stamps]
        pq.write_table(pa.table(columns, schema=ENDPOINTS_SCHEMA), directory / f"part-{number}.parquet")
    return Sync(StateFiles(str(tmp_path / "state"), application_id="app"))


def _perturbed(rng: np.random.Generator, ids: list[str]) -> list[tuple[str, int, np.ndarray | None]]:
    """A part file of entries for ``ids`` in their own order, then disturbed as states drift: some
    entries spelt in another case, some moved, some missing, some ids the input lacks."""
    rows = [(i, 1_700_000_000_000 + int(rng.integers(0, 3)) * 1000, BODIES[int(rng.integers(0, 3))]) for i in ids]
    for k in rng.choice(len(rows), int(rng.integers(0, 6)), replace=False):
        rows[k] = (rows[k][0].upper(), *rows[k][1:])
    if rng.integers(0, 2):
        a, b = rng.choice(len(rows), 2, replace=False)
        rows[a], rows[b] = rows[b], rows[a]
    if rng.integers(0, 2):
        del rows[int(rng.integers(0, len(rows)))]
    if rng.integers(0, 2):
        rows.insert(int(rng.integers(0, len(rows) + 1)), ("gone-1", 1_700_000_000_000, BODIES[0]))
    return rows[: int(rng.integers(len(rows) // 2, len(rows) + 1))] if rng.integers(0, 3) == 0 else rows


@pytest.mark.parametrize("seed", range(16))
def test_entries_at_their_ids_position_are_read_as_the_hash_join_reads_them(tmp_path, monkeypatch, seed):
    # Distinct input ids let an entry spelt exactly as the id at its own position be taken without
    # the hash join; entries in another case, moved, or of other ids still go through it. Small
    # batches, so that positions carry from batch to batch.
    monkeypatch.setattr(StateFiles, "batches", _small_batches(StateFiles.batches, 7))
    rng = np.random.default_rng(seed)
    ids = [f"ep-{i}" for i in range(40)]
    files = [_perturbed(rng, ids)]
    if seed % 4 == 0:  # another part, in its own order: ties and newer entries across parts
        files.append(_perturbed(rng, list(rng.permutation(ids))))
    sync = _state(tmp_path, files)
    column = pa.array(ids, pa.string())
    by_position = sync.known(column, distinct=True)
    by_hash = sync.known(column)
    stored, valid = _latest_entry_by_entry([[(i.lower(), s, b) for i, s, b in rows] for rows in files], ids)
    assert by_position.valid.tolist() == by_hash.valid.tolist() == valid.tolist()
    assert by_position.hashes[valid].tolist() == by_hash.hashes[valid].tolist() == stored[valid].tolist()


def _small_batches(batches, rows: int):
    def small(self, path, columns, rows_=rows):
        return batches(self, path, columns, rows_)

    return small

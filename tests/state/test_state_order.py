"""The order of a part's endpoint entries: the input's, kept across runs, so the next run finds each in place."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.state import StateFiles, Sync
from airflow_provider_pinpoint.state import sync as sync_module
from airflow_provider_pinpoint.state.files import ENDPOINTS_SCHEMA
from airflow_provider_pinpoint.state.keys import to_arrow
from tests.helpers.items import emulator_client
from tests.state.tables import APP, accepted, endpoints, load_endpoints


def _entries(state: Path, app: str = APP) -> pa.Table:
    return pq.read_table(state / "pinpoint" / app / "endpoints" / "main.parquet")


def _load(emulator, tmp_path: Path, run: str, table: pa.Table, **options):
    return load_endpoints(emulator.url, tmp_path, run, table, **options)


def _spelt(table: pa.Table, upper: set[int]) -> pa.Table:
    ids = [i.upper() if n in upper else i for n, i in enumerate(table.column("Id").to_pylist())]
    return table.set_column(0, "Id", pa.array(ids))


@pytest.mark.integration
def test_changed_endpoints_keep_their_place_in_the_state(emulator, tmp_path):
    # Before, a changed endpoint's entry moved to the end of the file: the next run found no entry
    # at its id's position. Sent and accepted, sent and failed, or renamed in another case, each
    # entry stays where the endpoint's row is, and the next run reads them as before.
    _load(emulator, tmp_path, "day1", endpoints(30))
    assert _entries(tmp_path / "state").column("endpoint_id").to_pylist() == [f"ep-{i:05d}" for i in range(30)]
    day2 = _spelt(endpoints(30, changed=range(2, 30, 5)), {7})
    emulator.configure(error_rate=1.0)  # every request answered 500: the changed rows go "send again"
    failed = _load(emulator, tmp_path, "day2", day2, max_attempts=1)
    assert (failed.summary.failed, failed.summary.unchanged) == (6, 24)
    entries = _entries(tmp_path / "state")
    assert entries.column("endpoint_id").to_pylist() == day2.column("Id").to_pylist()
    send_again = [
        e for e, h in zip(entries.column(0).to_pylist(), entries.column(1).to_pylist(), strict=True) if h is None
    ]
    assert send_again == ["ep-00002", "EP-00007", "ep-00012", "ep-00017", "ep-00022", "ep-00027"]
    emulator.configure(error_rate=0.0)
    again = _load(emulator, tmp_path, "day3", day2)
    assert (again.summary.accepted, again.summary.unchanged) == (6, 24)
    assert _entries(tmp_path / "state").column("endpoint_id").to_pylist() == day2.column("Id").to_pylist()
    assert _entries(tmp_path / "state").column("body_hash").null_count == 0
    # New endpoints follow the known ones; a day in another order is matched all the same.
    grown = pa.concat_tables([day2, endpoints(2, start=30)])
    more = _load(emulator, tmp_path, "day4", grown)
    assert (more.summary.accepted, more.summary.unchanged) == (2, 30)
    assert _entries(tmp_path / "state").column("endpoint_id").to_pylist() == grown.column("Id").to_pylist()
    shuffled = grown.take(pa.array(np.random.default_rng(1).permutation(32)))
    assert _load(emulator, tmp_path, "day5", shuffled).summary.unchanged == 32


def test_an_endpoint_twice_in_the_part_is_replaced_once_where_it_first_was(tmp_path):
    # A part can hold an endpoint twice (its entry, and a "send again" one a crashed run left that
    # the next run's input lacked): a candidate's fresh entry takes the first place, the other goes.
    state = tmp_path / "state"
    directory = state / "pinpoint" / "app" / "endpoints"
    directory.mkdir(parents=True)
    old = datetime.fromtimestamp(1_700_000_000, UTC)
    body = to_arrow(np.array([[1, 2]], dtype=np.uint64))[0].as_py()
    rows = [("ep-0", body), ("EP-1", body), ("ep-2", body), ("ep-1", None)]
    table = pa.table(
        [pa.array([r[0] for r in rows]), pa.array([r[1] for r in rows], pa.binary(16)), [old] * len(rows)],
        schema=ENDPOINTS_SCHEMA,
    )
    pq.write_table(table, directory / "main.parquet")
    sync = Sync(StateFiles(str(state), application_id="app"))
    ids = pa.array(["ep-1", "ep-3", "ep-0"])
    hashes = np.array([[5, 5], [6, 6], [1, 2]], dtype=np.uint64)
    with sync.files.lock("run"):
        known = sync.known(ids)
        same = known.same(0, ids, hashes)
        assert same.tolist() == [False, False, True]
        sync.add_compared(ids, hashes, same)
        assert sync.unchanged_endpoints().tolist() == [False, False, True]
        sync.observe(accepted(["ep-1", "ep-3"]))
        sync.commit()
    after = pq.read_table(directory / "main.parquet")
    assert after.column("endpoint_id").to_pylist() == ["ep-0", "ep-1", "ep-2", "ep-3"]
    stored = np.frombuffer(b"".join(after.column("body_hash").to_pylist()), dtype=np.uint64).reshape(-1, 2)
    assert stored.tolist() == [[1, 2], [5, 5], [1, 2], [6, 6]]
    assert after.column("accepted_at")[1].as_py() > old


@pytest.mark.integration
def test_rows_repeating_an_id_are_rejected_alike_with_a_state_in_the_inputs_order(emulator, tmp_path):
    # Ids repeated in another case leave the input's ids not distinct: no entry is taken by its
    # position, and each row is judged, and rejected with its message, as without a state.
    _load(emulator, tmp_path, "day1", endpoints(20))
    bad = _spelt(endpoints(3, start=4), {0, 1, 2})  # EP-00004 .. EP-00006 after their lower-case rows
    day2 = pa.concat_tables([endpoints(20, changed=range(5, 6)), bad, endpoints(1, start=9, changed=range(9, 10))])
    with_state = _load(emulator, tmp_path, "day2", day2)
    without = load_events(
        None,
        str(tmp_path / "day2" / "endpoints.parquet"),
        application_id=APP,
        results=str(tmp_path / "plain" / "results.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
        requests_per_second=1000,
    )

    def rejected(report) -> list[tuple[int, str]]:
        rows = report.results[report.results["status"] == "rejected"]
        return sorted(zip(rows["source_row"], rows["message"], strict=True))

    assert len(rejected(with_state)) == 4 and rejected(with_state) == rejected(without)
    assert (with_state.summary.accepted, with_state.summary.unchanged) == (1, 19)


def _day(state: Path, ids: list[str], hashes: np.ndarray, *, refused: set[str] = frozenset()) -> np.ndarray:
    """One run's use of the state as the endpoints step makes it: which rows are unchanged."""
    sync = Sync(StateFiles(str(state), application_id="app"))
    text = pa.array(ids)
    with sync.files.lock("run"):
        known = sync.known(text, distinct=True)
        same = known.same(0, text, hashes)
        sync.add_compared(text, hashes, same, np.arange(len(ids)))
        assert sync.unchanged_endpoints().tolist() == same.tolist()
        sync.observe(accepted([i for i, s in zip(ids, same, strict=True) if not s and i not in refused]))
        sync.commit()
    return same


def test_entries_follow_the_last_inputs_order_after_rows_deleted_and_added(tmp_path, monkeypatch):
    # Before, entries stayed in the order of the input that first wrote them, new ones at the end:
    # after one row deleted or added, no entry after it was at its id's row ever again. Now each
    # run writes them in its input's order, then the entries of ids it lacks: the next run in the
    # same order finds every entry in place, the others (spelt otherwise, or gone) by a hash join.
    state = tmp_path / "state"
    day1 = [f"ep-{i}" for i in range(10)]
    hashes = {i: np.array([n, 1], dtype=np.uint64) for n, i in enumerate(day1)}
    _day(state, day1, np.stack([hashes[i] for i in day1]))
    day2 = ["ep-0", "ep-1", "ep-2", "ep-4", "ep-5", "ep-new", "ep-6", "EP-7", "ep-8", "ep-9"]  # ep-3 gone
    hashes["ep-new"], hashes["EP-7"] = np.array([99, 1], dtype=np.uint64), hashes["ep-7"]
    hashes["ep-1"] = hashes["ep-5"] = np.array([50, 2], dtype=np.uint64)  # changed
    same = _day(state, day2, np.stack([hashes[i] for i in day2]), refused={"ep-5"})
    assert [i for i, s in zip(day2, same, strict=True) if not s] == ["ep-1", "ep-5", "ep-new"]
    entries = _entries(state, "app")
    spelt = ["ep-0", "ep-1", "ep-2", "ep-4", "ep-5", "ep-new", "ep-6", "ep-7", "ep-8", "ep-9", "ep-3"]
    assert entries.column("endpoint_id").to_pylist() == spelt  # ep-7's entry keeps its spelling
    send_again = [e for e, h in zip(spelt, entries.column("body_hash").to_pylist(), strict=True) if h is None]
    assert send_again == ["ep-5"]
    probed: list[list[str]] = []
    first_rows = sync_module._first_rows
    monkeypatch.setattr(sync_module, "_first_rows", lambda e, f: probed.append(e.to_pylist()) or first_rows(e, f))
    same = _day(state, day2, np.stack([hashes[i] for i in day2]))
    assert probed[0] == ["ep-7", "ep-3"]  # every other entry taken at its own row
    assert [i for i, s in zip(day2, same, strict=True) if not s] == ["ep-5"]  # refused yesterday: again


@pytest.mark.integration
@pytest.mark.parametrize("repeated", [False, True])
def test_the_endpoints_step_tells_the_state_whether_the_ids_are_distinct(emulator, tmp_path, monkeypatch, repeated):
    # Entries are taken by position only for ids distinct in any case, as validation found them.
    told: list[bool] = []
    known = Sync.known
    monkeypatch.setattr(
        Sync, "known", lambda self, ids, **kw: told.append(kw.get("distinct")) or known(self, ids, **kw)
    )
    table = endpoints(6)
    if repeated:
        table = pa.concat_tables([table, _spelt(endpoints(1, start=2), {0})])
    _load(emulator, tmp_path, "day1", table)
    assert told == [not repeated]


def _run_directly(state: Path, ids: list[str], values: list[int]) -> None:
    """One run through the state directly: ``ids`` with value hashes ``values``, every candidate accepted."""
    sync = Sync(StateFiles(str(state), application_id=APP))
    text = pa.array(ids)
    hashes = np.array([[value, 1] for value in values], dtype=np.uint64)
    with sync.files.lock("run"):
        known = sync.known(text, distinct=True)
        sync.add_compared(text, hashes, known.same(0, text, hashes), np.arange(len(ids)))
        sync.unchanged_endpoints()
        sync.observe(accepted(sync._candidate_ids.to_pylist()))
        sync.commit()


@pytest.mark.parametrize("rewrite", ["same length, other order", "one entry more"])
def test_a_part_file_changed_between_the_two_reads_of_a_commit_replaces_nothing(tmp_path, monkeypatch, rewrite):
    """The entries the input lacks are read again at commit; a file another writer changed meanwhile
    (a lock taken over) must stop the commit, not have the first read's choices applied to other entries."""
    state = tmp_path / "state"
    _run_directly(state, [f"ep-{i}" for i in range(6)], [1] * 6)
    before = _entries(state)
    changed = before.take([2, 1, 3, 4, 5, 0])
    if rewrite == "one entry more":
        changed = pa.concat_tables([before, before.slice(0, 1).set_column(0, "endpoint_id", pa.array(["ep-9"]))])
    real = sync_module.Sync._unplaced_rows

    def rewritten(self, left, *more):
        pq.write_table(changed, state / "pinpoint" / APP / "endpoints" / "main.parquet")
        return real(self, left, *more)

    monkeypatch.setattr(sync_module.Sync, "_unplaced_rows", rewritten)
    with pytest.raises(sync_module.StateError, match="changed while this run rewrote it"):
        _run_directly(state, ["ep-0", "ep-1"], [2, 1])
    assert _entries(state).equals(changed.cast(_entries(state).schema))  # what the other writer left, untouched

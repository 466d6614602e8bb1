"""Sync.observe: the rows accepted, over many answers from several threads, are what the state remembers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint.results.rows import DECISION_SCHEMA, RESULTS_SCHEMA, Outcomes
from airflow_provider_pinpoint.results.store import ResultsStore
from airflow_provider_pinpoint.state import StateFiles, Sync
from airflow_provider_pinpoint.state import sync as sync_module
from tests.helpers.items import make_items, make_requests

STATUSES = ("accepted", "rejected", "failed")


def _answers(rng: np.random.Generator, ids: list[str], per_answer: int) -> list[Outcomes]:
    """The rows of ``ids`` (endpoints) and of an event each, decided in answers of ``per_answer`` rows
    with random statuses, endpoints and events mixed in one answer as PutEvents mixes them."""
    rows = [("endpoint", i, None) for i in ids] + [("event", i, f"ev-{i}") for i in ids]
    order = rng.permutation(len(rows))
    answers = []
    for start in range(0, len(rows), per_answer):
        chosen = [rows[k] for k in order[start : start + per_answer]]
        status = [STATUSES[k] for k in rng.integers(0, len(STATUSES), len(chosen))]
        n = len(chosen)
        columns = {field.name: pa.nulls(n, field.type) for field in DECISION_SCHEMA}
        columns["record_type"] = pa.array([r[0] for r in chosen], pa.string())
        columns["endpoint_id"] = pa.array([r[1] for r in chosen], pa.string())
        columns["event_id"] = pa.array([r[2] for r in chosen], pa.string())
        columns["status"] = pa.array(status, pa.string())
        batch = pa.RecordBatch.from_arrays([columns[f.name] for f in DECISION_SCHEMA], schema=DECISION_SCHEMA)
        answers.append(Outcomes(batch, status.count("accepted"), status.count("rejected"), status.count("failed"), 0))
    return answers


def _observe_all(sync: Sync, answers: list[Outcomes]) -> None:
    for answer in answers:
        sync.observe(answer)


@pytest.mark.parametrize("fold_rows", [1, 7, 1_000_000])
def test_the_state_remembers_exactly_the_rows_accepted(tmp_path, monkeypatch, fold_rows):
    # Folded after every answer, every few answers, or only at commit: the same state.
    monkeypatch.setattr(sync_module, "_FOLD_ROWS", fold_rows)
    rng = np.random.default_rng(fold_rows)
    ids = [f"ep-{i:04d}" for i in range(300)]
    sync = Sync(StateFiles(str(tmp_path / "state"), application_id="app"))
    hashes = rng.integers(0, 2**63, (len(ids), 2), dtype=np.int64).astype(np.uint64)
    answers = _answers(rng, ids, per_answer=11)
    with sync.files.lock("run"):  # as a load holds it
        sync.add_compared(pa.array(ids), hashes, np.zeros(len(ids), dtype=bool))
        assert not sync.unchanged_endpoints().any()
        threads = [threading.Thread(target=_observe_all, args=(sync, answers[k::4])) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sync.commit()

    expected_endpoints, expected_events = set(), set()
    for answer in answers:
        for row in answer.batch.to_pylist():
            if row["status"] == "accepted":
                if row["record_type"] == "endpoint":
                    expected_endpoints.add(row["endpoint_id"])
                else:
                    expected_events.add((row["endpoint_id"], row["event_id"]))
    assert expected_endpoints and expected_events and len(expected_endpoints) < len(ids)
    files = sync.files
    state = pq.read_table(files.own("endpoints")).to_pylist()
    assert len(state) == len(ids)  # every endpoint sent has an entry: a hash if accepted, else "send again"
    remembered = {row["endpoint_id"]: row["body_hash"] for row in state}
    assert {i for i, body in remembered.items() if body is not None} == expected_endpoints
    for i in expected_endpoints:  # each with the hash of its own values
        assert np.frombuffer(remembered[i], dtype=np.uint64).tolist() == hashes[ids.index(i)].tolist()
    events = pq.read_table(files.own("events")).to_pylist()
    assert {(row["endpoint_id"], row["event_id"]) for row in events} == expected_events


def test_answers_of_other_text_types_are_sorted_out_alike(tmp_path):
    # An answer whose ids come as large_string (no sink makes one today) joins the others.
    sync = Sync(StateFiles(str(tmp_path / "state"), application_id="app"))
    rng = np.random.default_rng(5)
    answers = [a for a in _answers(rng, [f"ep-{i}" for i in range(40)], per_answer=4) if a.accepted]
    assert len(answers) > 2
    first = answers[0].batch
    at = first.schema.get_field_index("endpoint_id")
    wide = first.set_column(at, pa.field("endpoint_id", pa.large_string()), first.column(at).cast(pa.large_string()))
    answers[0] = Outcomes(wide, answers[0].accepted, answers[0].rejected, answers[0].failed, 0)
    for answer in answers:
        sync.observe(answer)
    with sync._lock:
        sync._fold_observed()
    expected = sorted(
        row["endpoint_id"]
        for answer in answers
        for row in answer.batch.to_pylist()
        if row["status"] == "accepted" and row["record_type"] == "endpoint"
    )
    assert sorted(pa.concat_arrays([a.cast(pa.string()) for a in sync._accepted_endpoints]).to_pylist()) == expected


@pytest.mark.parametrize("status", [Sync.UNCHANGED, Sync.ALREADY_SENT])
@pytest.mark.parametrize("location", [None, "results.parquet"])
def test_rows_not_sent_become_results_rows_with_their_status_and_reason(tmp_path, status, location):
    # Written as rows decided alike (the reason once per piece), they read back as one row each.
    n = 25
    ids = pa.array([f"ep-{i}" for i in range(n)])
    event_ids = None if status == Sync.UNCHANGED else pa.array([f"ev-{i}" for i in range(n)], pa.large_string())
    sources = pa.array(["a.csv"] * 10 + ["b.csv"] * 15).dictionary_encode()
    rows = pa.array(range(100, 100 + n), pa.int32())
    record_type = "endpoint" if event_ids is None else "event"
    pieces = list(Sync.unsent(status, record_type, ids, event_ids, sources, rows, chunk=10))
    assert [len(piece) for piece in pieces] == [10, 10, 5]
    assert all(piece.status == status and not piece.outcomes.accepted for piece in pieces)
    store = ResultsStore(None if location is None else tmp_path / location)
    writer = store.writer("run-1")
    for piece in pieces:
        writer.add_outcomes(piece.outcomes)
    writer.close()
    assert store.compact() == {status: n}
    table = (store if location is None else ResultsStore(tmp_path / location)).read()
    assert table.schema.equals(RESULTS_SCHEMA)
    expected = [
        {
            "run_id": "run-1",
            "record_type": record_type,
            "endpoint_id": f"ep-{i}",
            "event_id": None if event_ids is None else f"ev-{i}",
            "source": "a.csv" if i < 10 else "b.csv",
            "source_row": 100 + i,
            "status": status,
            "status_code": None,
            "message": sync_module.REASONS[status],
            "attempts": 0,
            "request_id": None,
            "sent_at": None,
        }
        for i in range(n)
    ]
    assert table.to_pylist() == expected


@pytest.mark.parametrize("fold_rows", [1, 30, 1_000_000])
def test_requests_accepted_whole_are_remembered_with_the_answers_decided_row_by_row(tmp_path, monkeypatch, fold_rows):
    # Requests accepted whole come as their items' columns (Outcomes.uniform), one of them with ids
    # of another text type; answers decided row by row come between them.
    monkeypatch.setattr(sync_module, "_FOLD_ROWS", fold_rows)
    rng = np.random.default_rng(fold_rows)
    requests = make_requests(make_items(12, 4, tag="w"), per_request=10)
    whole = [Outcomes.all_accepted(r, 202, 1, "q", datetime(2026, 1, 1, tzinfo=UTC)) for r in requests]
    items, decision = whole[1].uniform
    at = items.schema.get_field_index("endpoint_id")
    whole[1].uniform = (items.set_column(at, "endpoint_id", items.column(at).cast(pa.large_string())), decision)
    by_row = _answers(rng, [f"ep-{i}" for i in range(30)], per_answer=7)
    answers = [answer for pair in zip(whole, by_row, strict=False) for answer in pair] + by_row[len(whole) :]
    sync = Sync(StateFiles(str(tmp_path / "state"), application_id="app"))
    threads = [threading.Thread(target=_observe_all, args=(sync, answers[k::3])) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with sync._lock:
        sync._fold_observed()
    expected = [row for answer in answers for row in answer.batch.to_pylist() if row["status"] == "accepted"]
    endpoints = pa.concat_arrays([a.cast(pa.string()) for a in sync._accepted_endpoints]).to_pylist()
    assert sorted(endpoints) == sorted(r["endpoint_id"] for r in expected if r["record_type"] == "endpoint")
    events = [
        pair
        for ids, event_ids in sync._accepted_events
        for pair in zip(ids.cast(pa.string()).to_pylist(), event_ids.to_pylist(), strict=True)
    ]
    assert sorted(events) == sorted((r["endpoint_id"], r["event_id"]) for r in expected if r["record_type"] == "event")
    assert any(r["endpoint_id"].startswith("w-") for r in expected) and len(events) > 40


def test_a_request_accepted_whole_is_remembered_by_its_ids_only_until_the_fold(tmp_path):
    # Until the answers are sorted out, a request's source and row numbers are no use to the state:
    # only the type and ids of its items are kept.
    request = make_requests(make_items(1, 10), per_request=10)[0]
    decided = Outcomes.all_accepted(request, 202, 1, "q", None)
    sync = Sync(StateFiles(str(tmp_path / "state"), application_id="app"))
    sync.observe(decided)
    [kept] = sync._observed_accepted
    assert kept.schema.names == ["record_type", "endpoint_id", "event_id"]
    items = decided.uniform[0]
    assert kept.to_pylist() == items.select(kept.schema.names).to_pylist()

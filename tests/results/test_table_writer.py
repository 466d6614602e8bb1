"""The results table's Parquet writer hands its repeated text columns to Arrow as dictionaries: the
file must read exactly as the plain writer's, values, schema, row groups and statistics alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint.results import formats, journal
from airflow_provider_pinpoint.results.compaction import add_counts, is_final, survivors
from airflow_provider_pinpoint.results.formats import ParquetTableWriter, text_codes
from airflow_provider_pinpoint.results.rows import (
    ACCEPTED,
    REJECTED,
    RESULTS_SCHEMA,
    UNCHANGED,
    Decision,
    ItemResult,
    Outcomes,
    single_value,
    stamped,
)
from airflow_provider_pinpoint.results.store import ResultsStore
from tests.helpers.items import make_items, make_requests

SENT = datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
REASON = "not sent: the same body was accepted for this endpoint before"


def _unchanged(items: pa.RecordBatch) -> Outcomes:
    """Rows not sent because of the sync state, as the state reports them: decided alike."""
    outcomes = Outcomes(None, 0, 0, 0, 0)
    outcomes.uniform = (items, Decision(UNCHANGED, None, REASON, 0, None, None))
    return outcomes


def _sync_outcomes() -> list[Outcomes]:
    """A sync's decisions: pieces of unchanged rows, requests accepted whole, rows rejected one by one."""
    items = make_items(60, 0)
    requests = make_requests(items, per_request=10)
    decided = [_unchanged(requests[i].columns.drop_columns(["body"])) for i in (0, 2, 3)]
    decided += [Outcomes.all_accepted(requests[i], 202, 1, f"req-{i}", SENT) for i in (1, 4)]
    refused = [
        ItemResult(item, REJECTED, 400, f"bad {item.endpoint_id}", 1, "req-5", SENT) for item in requests[5].items
    ]
    decided.append(Outcomes.of_results(refused))
    return decided


def _plain_parquet(path, table: pa.Table) -> None:
    """The table as the plain Parquet writer writes it, a row group per batch, with the same dictionaries."""
    names = [n for n in RESULTS_SCHEMA.names if n not in formats._NO_DICTIONARY]
    with pq.ParquetWriter(path, RESULTS_SCHEMA, use_dictionary=names) as writer:
        for batch in table.to_batches():
            writer.write_batch(batch)


def _chunk_metadata(path) -> list[dict]:
    """Each column chunk's metadata but where it lies in the file."""
    metadata = pq.ParquetFile(path).metadata
    chunks = []
    for g in range(metadata.num_row_groups):
        for c in range(metadata.num_columns):
            chunk = metadata.row_group(g).column(c).to_dict()
            for key in ("file_offset", "data_page_offset", "dictionary_page_offset"):
                chunk.pop(key)
            chunks.append(chunk)
    return chunks


@pytest.mark.parametrize("shared_rows", [1, 1_000])  # the journal's records share their type and source, or not
def test_a_sync_of_unchanged_accepted_and_rejected_rows_is_the_table_the_plain_writer_makes(
    tmp_path, monkeypatch, shared_rows
):
    monkeypatch.setattr(journal, "_SHARED_ROWS", shared_rows)
    decided = _sync_outcomes()
    location = tmp_path / "results.parquet"
    store = ResultsStore(location)
    writer = store.writer("run-1")
    for outcomes in decided:
        writer.add_outcomes(outcomes)
    writer.close()
    assert store.compact() == {UNCHANGED: 30, ACCEPTED: 20, REJECTED: 10}
    expected = pa.Table.from_batches([stamped(o, pa.repeat(pa.scalar("run-1"), len(o))) for o in decided])
    table = pq.read_table(location)
    assert table.schema.equals(RESULTS_SCHEMA, check_metadata=True)
    assert table.equals(expected)
    assert pq.ParquetFile(location).metadata.metadata == {
        b"ARROW:schema": pq.ParquetFile(_written(tmp_path, expected)).metadata.metadata[b"ARROW:schema"]
    }
    assert table.to_pandas().equals(expected.to_pandas())


def _written(tmp_path, table: pa.Table):
    path = tmp_path / "plain.parquet"
    _plain_parquet(path, table)
    return path


def _awkward(n: int) -> pa.Table:
    """Batches whose text columns are one value throughout, a few values, nulls, all nulls or empty text."""
    return pa.Table.from_pydict(
        {
            "run_id": ["run-1"] * n,
            "record_type": ["endpoint"] * (n // 2) + ["event"] * (n - n // 2),
            "endpoint_id": [f"ep-{i}" for i in range(n)],
            "event_id": [None] * n,
            "source": [""] * n,
            "source_row": list(range(n)),
            "status": ["accepted" if i % 3 else None for i in range(n)],
            "status_code": [202] * n,
            "message": [None] * n,
            "attempts": [1] * n,
            "request_id": [f"req-{i // 4}" for i in range(n)],
            "sent_at": [SENT] * n,
        },
        schema=RESULTS_SCHEMA,
    )


@pytest.mark.parametrize("rows", [0, 1, 7, 300])
def test_the_writer_makes_the_plain_writers_file_for_awkward_columns(tmp_path, rows):
    table = _awkward(rows)
    batches = [table.slice(0, rows // 3).to_batches(), table.slice(rows // 3).to_batches()]  # sliced: offsets != 0
    path = tmp_path / "results.parquet"
    with open(path, "wb") as f:
        writer = ParquetTableWriter(f)
        for batch in (b for part in batches for b in part):
            writer.write_batch(batch)
        writer.close()
    plain = tmp_path / "plain.parquet"
    _plain_parquet(plain, pa.Table.from_batches([b for part in batches for b in part], schema=RESULTS_SCHEMA))
    assert pq.read_table(path).equals(pq.read_table(plain))
    assert pq.read_table(path).schema.equals(RESULTS_SCHEMA, check_metadata=True)
    assert pq.ParquetFile(path).metadata.metadata == pq.ParquetFile(plain).metadata.metadata
    assert _chunk_metadata(path) == _chunk_metadata(plain)


TEXTS = {
    "one value": (["abc"] * 5, "abc"),
    "one empty text": ([""] * 4, ""),
    "one row": (["x"], "x"),
    "same lengths, a value differs": (["abc", "abc", "abd", "abc"], None),
    "lengths differ, bytes repeat": (["ab", "abab", "ab"], None),
    "the same bytes cut otherwise": (["aa", "a", "a"], None),
    "a null": (["abc", None, "abc"], None),
    "no rows": ([], None),
}


@pytest.mark.parametrize("case", TEXTS)
def test_a_column_of_one_value_is_told_from_any_other(case):
    values, single = TEXTS[case]
    column = pa.array(["zz", *values, "yy"], pa.string()).slice(1, len(values))  # offsets not from 0
    found = single_value(column)
    assert (None if found is None else found.to_pylist()) == (None if single is None else [single])
    codes = text_codes(column)
    assert codes.type == pa.dictionary(pa.int32(), pa.string())
    assert codes.cast(pa.string()).to_pylist() == values
    assert len(codes.dictionary) == len({v for v in values if v is not None})


def test_compaction_counts_and_keys_batches_of_one_value_as_of_many(tmp_path):
    # One source and status throughout, or several: the same survivors, finals and counts.
    status, source = RESULTS_SCHEMA.get_field_index("status"), RESULTS_SCHEMA.get_field_index("source")
    single = _awkward(40).to_batches()[0].set_column(status, "status", pa.array(["unchanged"] * 40))
    mixed = pa.concat_batches(
        [single.slice(0, 20), single.slice(20).set_column(source, "source", pa.array(["s"] * 20))]
    )
    for batch in (single, mixed):
        keep, rows = survivors([batch, batch.slice(0, 10)])  # the first ten rows repeated
        assert rows == 50
        assert keep is not None and keep.tolist() == [False] * 10 + [True] * 40
        assert is_final(batch).tolist() == [True] * 40
        counts: dict[str, int] = {}
        add_counts(counts, batch)
        assert counts == {"unchanged": 40}
    other = pa.concat_batches([single.slice(0, 1).set_column(status, "status", pa.array(["failed"])), single.slice(1)])
    assert is_final(other).tolist() == [False] + [True] * 39
    counts = {}
    add_counts(counts, other)
    assert counts == {"failed": 1, "unchanged": 39}


def test_reasons_that_differ_on_every_row_are_written_as_the_plain_writer_writes_them(tmp_path):
    """Rows refused one by one each carry a reason of their own: given as a dictionary, Arrow would
    write it whole as one page (and hold it whole while writing); the writer's own dictionary gives
    up at 1 MB and writes the values plain."""
    n = 65_536
    batch = pa.RecordBatch.from_pydict(
        {
            "run_id": ["r1"] * n,
            "record_type": ["event"] * n,
            "endpoint_id": [f"e{i}" for i in range(n)],
            "event_id": [f"v{i}" for i in range(n)],
            "source": ["events.csv"] * n,
            "source_row": list(range(n)),
            "status": [REJECTED] * n,
            "status_code": [None] * n,
            "message": [f"{i:06d} the service refused the request: " + "y" * 440 for i in range(n)],
            "attempts": [0] * n,
            "request_id": [f"req-{i:08d}" for i in range(n)],
            "sent_at": [None] * n,
        },
        schema=RESULTS_SCHEMA,
    )
    ours, plain = tmp_path / "ours.parquet", tmp_path / "plain.parquet"
    with open(ours, "wb") as f:
        writer = ParquetTableWriter(f)
        writer.write_batch(batch)
        writer.close()
    pq.write_table(
        pa.Table.from_batches([batch]),
        plain,
        use_dictionary=[n for n in RESULTS_SCHEMA.names if n not in formats._NO_DICTIONARY],
    )
    for name in ("message", "request_id"):
        at = RESULTS_SCHEMA.get_field_index(name)
        column = pq.read_metadata(ours).row_group(0).column(at)
        assert column.encodings == pq.read_metadata(plain).row_group(0).column(at).encodings
        if column.dictionary_page_offset is not None:
            assert column.data_page_offset - column.dictionary_page_offset <= 1 << 20
    assert pq.read_table(ours).equals(pq.read_table(plain))

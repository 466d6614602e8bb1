"""Parquet text columns read through their dictionaries give exactly the batches of the plain read."""

from __future__ import annotations

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.read import parquet as parquet_module
from airflow_provider_pinpoint.prepare.read import parquet_dictionary as dictionary_module
from airflow_provider_pinpoint.prepare.read import read_batches

ROWS, GROUP = 3_000, 1_000


def unique(prefix: str, start: int, n: int) -> list[str]:
    return [f"{prefix}-{i:012d}" for i in range(start, start + n)]


def endpoints(n: int = ROWS) -> pa.Table:
    """Low and high cardinality text, with the nulls, empty values and nesting a file can hold."""
    half = n // 2
    return pa.table(
        {
            "Id": unique("ep", 0, n),  # its dictionary gives up after a few values
            "ChannelType": [["EMAIL", "SMS", "", None][i % 4] for i in range(n)],
            "Address": pa.array([f"user{i % 5}@example.com" for i in range(n)], pa.large_string()),
            "Attributes.raw": pa.array([[b"\xff\xfe", b"", None, b"\x00"][i % 4] for i in range(n)], pa.binary()),
            "Attributes.tags": pa.array(
                [[["a", None], None, [], ["b", "c", ""]][i % 4] for i in range(n)], pa.list_(pa.string())
            ),
            "Attributes.half": [f"v{i % 3}" for i in range(half)] + unique("h", half, n - half),
            "Attributes.late": [f"v{i % 3}" for i in range(n - GROUP)] + unique("l", 0, GROUP),
            "Attributes.dropped": ["x"] * n,
            "source_tag": [f"t{i % 2}" for i in range(n)],
            "Demographic.Locale": pa.array(pd.Categorical([["en", "fr", None][i % 3] for i in range(n)])),
            "Metrics.n": pa.array([float(i) for i in range(n)]),
        }
    )


MAPPING = {"Attributes.dropped": None, "source_tag": "Attributes.tag"}
# A 2 kB dictionary page: the unique values fall back to plain pages after about a hundred values.
WRITE = {"row_group_size": GROUP, "dictionary_pagesize_limit": 2_048, "data_page_size": 4_096}


def write(path, table: pa.Table | None = None, group: int = GROUP) -> None:
    pq.write_table(endpoints() if table is None else table, path, **(WRITE | {"row_group_size": group}))


@pytest.fixture
def opened(monkeypatch):
    """The ``read_dictionary`` of every ParquetFile the reader opens, as leaf paths."""
    calls: list[list[str]] = []

    class Spy(pq.ParquetFile):
        def __init__(self, source, *args, read_dictionary=None, **kwargs):
            super().__init__(source, *args, read_dictionary=read_dictionary, **kwargs)
            paths = self.reader.column_paths
            calls.append([".".join(paths[leaf]) for leaf in read_dictionary or ()])

    monkeypatch.setattr(pq, "ParquetFile", Spy)
    return calls


def plain_read(monkeypatch, source, **kwargs) -> list[pa.RecordBatch]:
    with monkeypatch.context() as patch:
        patch.setattr(parquet_module, "dictionary_leaves", lambda parquet, names: {})
        return list(read_batches(source, kind="endpoints", **kwargs))


def assert_same(got: list[pa.RecordBatch], expected: list[pa.RecordBatch]) -> None:
    assert [batch.num_rows for batch in got] == [batch.num_rows for batch in expected]
    for new, old in zip(got, expected, strict=True):
        assert new.schema.equals(old.schema, check_metadata=True)
        assert new.equals(old)
        assert new.to_pylist() == old.to_pylist()


LOW_CARDINALITY = ["Address", "Attributes.raw", "ChannelType", "source_tag"]


def test_low_cardinality_text_leaves_are_read_as_dictionaries_and_fallen_back_ones_are_not(tmp_path, opened):
    path = tmp_path / "endpoints.parquet"
    write(path, group=ROWS)
    list(read_batches(path, kind="endpoints", column_mapping=MAPPING))
    assert opened[0] == []  # the footer, read once
    # Not Id nor the column that fell back half way, nor the dropped, the Categorical or the float one.
    assert sorted(opened[1]) == sorted([*LOW_CARDINALITY, "Attributes.tags.list.element"])


def test_a_column_that_falls_back_in_one_row_group_and_lists_across_row_groups_are_read_plain(tmp_path, opened):
    path = tmp_path / "endpoints.parquet"
    write(path)
    list(read_batches(path, kind="endpoints", column_mapping=MAPPING))
    # Attributes.late falls back in its last row group only; the reader refuses lists read as
    # dictionaries in a batch across row groups.
    assert sorted(opened[1]) == LOW_CARDINALITY


@pytest.mark.parametrize("group", [GROUP, ROWS])
@pytest.mark.parametrize("batch_rows", [1, 7, 999, 1_000, 1_001, 65_536])
def test_batches_equal_the_plain_read(tmp_path, monkeypatch, opened, batch_rows, group):
    path = tmp_path / "endpoints.parquet"
    write(path, group=group)
    got = list(read_batches(path, kind="endpoints", column_mapping=MAPPING, batch_rows=batch_rows))
    assert opened[1]  # the dictionary read was taken
    assert_same(got, plain_read(monkeypatch, path, column_mapping=MAPPING, batch_rows=batch_rows))
    assert got[0].schema.field("Address").type == pa.large_string()
    assert got[0].schema.field("Attributes.raw").type == pa.binary()
    assert got[0].schema.field("Attributes.tags").type == pa.list_(pa.field("element", pa.string()))
    # The Categorical stays a dictionary, and with it the plain read cuts its batches at row groups.
    assert pa.types.is_dictionary(got[0].schema.field("Demographic.Locale").type)


@pytest.mark.parametrize("batch_rows", [7, 999, 1_001, 65_536])
def test_batches_across_row_groups_are_whole_as_in_the_plain_read(tmp_path, monkeypatch, opened, batch_rows):
    path = tmp_path / "endpoints.parquet"
    write(path)
    mapping = MAPPING | {"Demographic.Locale": None}
    got = list(read_batches(path, kind="endpoints", column_mapping=mapping, batch_rows=batch_rows))
    assert sorted(opened[1]) == LOW_CARDINALITY
    assert {batch.num_rows for batch in got[:-1]} == {batch_rows} if len(got) > 1 else got[0].num_rows == ROWS
    assert_same(got, plain_read(monkeypatch, path, column_mapping=mapping, batch_rows=batch_rows))


def test_selected_columns_equal_the_plain_read(tmp_path, monkeypatch, opened):
    path = tmp_path / "endpoints.parquet"
    write(path, endpoints().select(["Id", "ChannelType", "Attributes.tags", "Metrics.n"]), group=ROWS)
    mapping = {"Metrics.n": None, "ChannelType": "Attributes.channel"}
    got = list(read_batches(path, kind="endpoints", column_mapping=mapping, batch_rows=700))
    assert sorted(opened[1]) == ["Attributes.tags.list.element", "ChannelType"]
    assert_same(got, plain_read(monkeypatch, path, column_mapping=mapping, batch_rows=700))


def test_a_file_without_statistics_is_read_plain(tmp_path, opened):
    path = tmp_path / "endpoints.parquet"
    pq.write_table(endpoints().select(["Id", "ChannelType"]), path, write_statistics=False)
    list(read_batches(path, kind="endpoints"))
    assert opened[1:] == []  # no null count: a mostly null plain chunk would look small


def test_an_object_storage_file_equals_the_plain_read(tmp_path, monkeypatch, opened):
    fs = fsspec.filesystem("memory")
    prefix = f"/{tmp_path.name}"
    try:
        with fs.open(f"{prefix}/endpoints.parquet", "wb") as out:
            write(out, group=ROWS)
        url = f"memory://{prefix.lstrip('/')}/endpoints.parquet"
        got = list(read_batches(url, kind="endpoints", column_mapping=MAPPING, batch_rows=1_500))
        assert "Attributes.tags.list.element" in opened[1]
        assert_same(got, plain_read(monkeypatch, url, column_mapping=MAPPING, batch_rows=1_500))
    finally:
        fs.rm(prefix, recursive=True)


def test_a_corrupt_page_of_a_dictionary_column_names_the_file(tmp_path, opened):
    path = tmp_path / "endpoints.parquet"
    write(path, endpoints().select(["Id", "ChannelType"]))
    chunk = pq.ParquetFile(path).metadata.row_group(1).column(1)
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset : chunk.data_page_offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"endpoints\.parquet: not a readable Parquet file \("):
        list(read_batches(path, kind="endpoints"))
    assert opened[-1] == ["ChannelType"]


def test_a_footer_the_choice_cannot_read_is_read_plain(tmp_path, monkeypatch, opened):
    path = tmp_path / "endpoints.parquet"
    write(path, group=ROWS)

    def unreadable(parquet, names):
        raise pa.ArrowInvalid("Couldn't deserialize thrift")

    expected = plain_read(monkeypatch, path, column_mapping=MAPPING)
    monkeypatch.setattr(parquet_module, "dictionary_leaves", unreadable)
    got = list(read_batches(path, kind="endpoints", column_mapping=MAPPING))
    assert_same(got, expected)
    assert all(read_dictionary == [] for read_dictionary in opened)


def rows_of(batches: list[pa.RecordBatch]) -> list[dict]:
    return [row for batch in batches for row in batch.to_pylist()]


def test_a_batch_whose_text_decodes_beyond_32_bit_offsets_comes_in_pieces_that_fit(tmp_path, monkeypatch, opened):
    # Two long values repeated: a few bytes a row as a dictionary, more than a string array's
    # 32-bit offsets reach once decoded (2 GiB; here a limit of 400 kB stands for it). The 64-bit
    # column (large_string) is not cut for it.
    n, long_a, long_b = 4_000, "a" * 500, "b" * 500
    table = pa.table(
        {
            "Id": unique("ep", 0, n),
            "Attributes.long": [long_a if i % 3 else long_b for i in range(n)],
            "Attributes.wide": pa.array([long_b if i % 2 else long_a for i in range(n)], pa.large_string()),
        }
    )
    path = tmp_path / "long.parquet"
    pq.write_table(table, path)
    limit = 400_000
    expected = plain_read(monkeypatch, path, batch_rows=n)
    monkeypatch.setattr(dictionary_module, "MAX_TEXT_BYTES", limit)
    join = pa.concat_batches

    def joined_within_the_limit(batches):  # as Arrow refuses to join string arrays beyond 2 GiB
        if sum(text_bytes(batch) for batch in batches) > limit:
            raise pa.ArrowCapacityError("offset overflow while concatenating arrays")
        return join(batches)

    monkeypatch.setattr(dictionary_module.pa, "concat_batches", joined_within_the_limit)
    got = list(read_batches(path, kind="endpoints", batch_rows=n))
    assert sorted(opened[-1]) == ["Attributes.long", "Attributes.wide"]
    assert len(got) > 1
    assert all(text_bytes(batch) <= limit for batch in got)
    assert got[0].schema.field("Attributes.wide").type == pa.large_string()
    assert rows_of(got) == rows_of(expected)


def text_bytes(batch: pa.RecordBatch) -> int:
    """The bytes of the 32-bit text column's values."""
    return int(pc.sum(pc.binary_length(batch.column("Attributes.long"))).as_py() or 0)


def test_pieces_that_cannot_be_joined_come_as_they_are(tmp_path, monkeypatch, opened):
    path = tmp_path / "endpoints.parquet"
    write(path)

    def overflowing(batches):
        raise pa.ArrowCapacityError("offset overflow while concatenating arrays")

    monkeypatch.setattr(dictionary_module.pa, "concat_batches", overflowing)
    got = list(
        read_batches(path, kind="endpoints", column_mapping=MAPPING | {"Demographic.Locale": None}, batch_rows=700)
    )
    assert sorted(opened[1]) == LOW_CARDINALITY
    monkeypatch.undo()
    expected = plain_read(monkeypatch, path, column_mapping=MAPPING | {"Demographic.Locale": None}, batch_rows=700)
    assert len(got) > len(expected)  # a batch across a row group's end comes in its two pieces
    assert rows_of(got) == rows_of(expected)

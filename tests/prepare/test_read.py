from __future__ import annotations

import csv
import gzip
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from upath import UPath

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare import read
from airflow_provider_pinpoint.prepare.flow import Rejection, prepare
from airflow_provider_pinpoint.prepare.read import describe_source, read_batches, read_table

EVENTS_CSV = (
    "EndpointId,EventType,Timestamp,Metrics.price\nep-1,buy,2026-11-23T10:00:00Z,1.5\nep-2,view,2026-11-23T11:00:00Z,\n"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def events_table(n: int, start: int = 0) -> pa.Table:
    return pa.table(
        {
            "EndpointId": [f"ep-{i}" for i in range(start, start + n)],
            "EventType": ["view"] * n,
            "Timestamp": pa.array([1_795_000_000_000 + i for i in range(n)], pa.timestamp("ms", tz="UTC")),
        }
    )


def rows(source, **kwargs):
    return read_table(source, **kwargs).to_pylist()


# --- formats and layouts -------------------------------------------------------------------------


def test_parquet_columns_arrive_as_stored_with_bookkeeping(tmp_path):
    path = tmp_path / "endpoints.parquet"
    pq.write_table(
        pa.table({"Id": ["a"], "Attributes.tags": [["x", "y"]], "Location.Latitude": [1.5], "Metrics.n": [2]}), path
    )
    table = read_table(str(path), kind="endpoints")
    assert table.schema.field("Attributes.tags").type == pa.list_(pa.string())
    assert table.schema.field("Metrics.n").type == pa.int64()
    assert table.to_pylist() == [
        {
            "Id": "a",
            "Attributes.tags": ["x", "y"],
            "Location.Latitude": 1.5,
            "Metrics.n": 2,
            "_source": str(path),
            "_source_row": 1,
        }
    ]


def test_csv_values_stay_strings_and_empty_cells_are_null(tmp_path):
    path = write(tmp_path / "endpoints.csv", "Id,Location.PostalCode,Metrics.score\n00123,00501,1.50\n7,,\n")
    table = read_table(path, kind="endpoints")
    assert all(table.schema.field(name).type == pa.string() for name in ("Id", "Location.PostalCode", "Metrics.score"))
    assert [row["Id"] for row in table.to_pylist()] == ["00123", "7"]
    assert table.to_pylist()[0]["Location.PostalCode"] == "00501"
    assert table.to_pylist()[1]["Location.PostalCode"] is None


def test_gzipped_csv(tmp_path):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(EVENTS_CSV.encode()))
    assert [row["EndpointId"] for row in rows(path, kind="events")] == ["ep-1", "ep-2"]


def test_csv_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(b"\xef\xbb\xbf" + EVENTS_CSV.encode())
    assert rows(path, kind="events")[0]["EndpointId"] == "ep-1"


def test_csv_quoted_values_may_span_lines(tmp_path):
    body = "".join(f'ep-{i},view,t,"line one\nline {i}"\n' for i in range(60_000))
    path = write(tmp_path / "events.csv", "EndpointId,EventType,Timestamp,Attributes.note\n" + body)
    assert path.stat().st_size > 2**21  # spans several of the reader's blocks
    table = read_table(path, kind="events")
    assert table.num_rows == 60_000
    assert table.column("Attributes.note")[59_999].as_py() == "line one\nline 59999"
    assert table.column("_source_row")[59_999].as_py() == 60_000


@pytest.mark.parametrize(
    ("header", "rows", "opened"),
    [
        ("Id,ChannelType,Address", 'e0,EMAIL,a@b.c\ne1,EMAIL,"secret@x.com\ne2,EMAIL,other@y.com\n', 2),
        ("Id,ChannelType,Address", 'e1,EMAIL,"secret@x.com\ne2,EMAIL,other@y.com', 1),
        ("Id,Address,ChannelType", 'e1,"secret@x.com,EMAIL\ne2,other@y.com,EMAIL\ne3,o@y.com,SMS\n', 1),
        ("Id,ChannelType,Address", 'e1,EMAIL,"secret@x.com\n' + "e2,EMAIL,other@y.com\n" * 10_000, 1),
    ],
    ids=["last-column", "no-final-newline", "middle-column-ragged", "beyond-the-csv-field-limit"],
)
def test_a_quote_never_closed_names_the_row_it_opens_in(tmp_path, header, rows, opened):
    path = write(tmp_path / "endpoints.csv", f"{header}\n{rows}")
    with pytest.raises(InputError) as raised:
        read_table(path, kind="endpoints", batch_rows=1)
    message = str(raised.value)
    assert f"endpoints.csv: data row {opened} opens a quoted value that is never closed" in message
    assert "secret" not in message and "other" not in message


def test_a_quoted_line_break_in_the_last_row_is_no_unclosed_quote(tmp_path):
    path = write(tmp_path / "events.csv", 'EndpointId,EventType,Timestamp,Attributes.note\ne,v,t,"a\nb\n"\n')
    assert read_table(path, kind="events").column("Attributes.note").to_pylist() == ["a\nb\n"]


def test_a_file_name_with_glob_characters_is_read_as_named(tmp_path):
    path = write(tmp_path / "events[1].csv", EVENTS_CSV)
    assert rows(str(path), kind="events")[0]["_source"] == str(path)


def test_directory_of_part_files_in_name_order_numbering_rows_per_file(tmp_path):
    directory = tmp_path / "events"
    directory.mkdir()
    pq.write_table(events_table(2, start=10), directory / "part-1.parquet")
    pq.write_table(events_table(3), directory / "part-0.parquet")
    (directory / "_SUCCESS").write_text("")
    write(directory / "_temporary" / "part-9.csv", "junk")
    got = [(row["_source"], row["_source_row"]) for row in rows(str(directory) + "/", kind="events")]
    first, second = str(directory / "part-0.parquet"), str(directory / "part-1.parquet")
    assert got == [(first, 1), (first, 2), (first, 3), (second, 1), (second, 2)]


def test_directory_may_mix_parquet_and_csv_parts_with_different_columns(tmp_path):
    pq.write_table(
        pa.table({"EndpointId": ["ep-1"], "EventType": ["view"], "Timestamp": ["t"]}), tmp_path / "a.parquet"
    )
    write(tmp_path / "b.csv", "EndpointId,EventType,Timestamp,Attributes.page\nep-9,view,2026-11-23T10:00:00Z,/\n")
    table = read_table(tmp_path, kind="events")
    assert table.num_rows == 2
    assert table.column("Attributes.page").to_pylist() == [None, "/"]


def test_read_table_refuses_parts_whose_types_disagree(tmp_path):
    pq.write_table(events_table(1), tmp_path / "a.parquet")
    write(tmp_path / "b.csv", "EndpointId,EventType,Timestamp\nep-9,view,2026-11-23T10:00:00Z\n")
    with pytest.raises(InputError, match="its files disagree on column types .*Timestamp"):
        read_table(tmp_path, kind="events")


def test_source_names_are_absolute_normalised_paths(tmp_path, monkeypatch):
    pq.write_table(events_table(1), write(tmp_path / "data" / "x", "").parent / "part-0.parquet")
    monkeypatch.chdir(tmp_path)
    expected = str(Path.cwd() / "data" / "part-0.parquet")
    assert rows("data", kind="events")[0]["_source"] == expected
    assert rows("data/*.parquet", kind="events")[0]["_source"] == expected


def test_source_names_are_the_same_for_every_spelling_of_a_path(tmp_path, monkeypatch):
    write(tmp_path / "ev.csv", EVENTS_CSV)
    write(tmp_path / "data" / "part-0.csv", EVENTS_CSV)
    monkeypatch.chdir(tmp_path)
    here = Path.cwd()
    for spelling in (
        "ev.csv",
        "./ev.csv",
        "logs/../ev.csv",
        ".//ev.csv",
        f"{here}//ev.csv",
        (here / "ev.csv").as_uri(),
    ):
        assert rows(spelling, kind="events")[0]["_source"] == str(here / "ev.csv"), spelling
    for spelling in ("data", "./data/", "data//", "./data/*.csv", f"{here}/data", (here / "data").as_uri()):
        assert rows(spelling, kind="events")[0]["_source"] == str(here / "data" / "part-0.csv"), spelling


def test_glob_selects_matching_files(tmp_path):
    for day in ("2026-11-23", "2026-11-24", "2026-11-25"):
        pq.write_table(events_table(1), write(tmp_path / f"date={day}" / "x", "").parent / "part-0.parquet")
    got = rows(str(tmp_path / "date=2026-11-2[45]" / "*.parquet"), kind="events")
    assert [row["_source"].split("/")[-2] for row in got] == ["date=2026-11-24", "date=2026-11-25"]


def test_glob_matching_directories_reads_the_files_inside(tmp_path, monkeypatch):
    for day in ("2026-11-23", "2026-11-24"):
        pq.write_table(events_table(1), write(tmp_path / "events" / f"date={day}" / "x", "").parent / "part-0.parquet")
    monkeypatch.chdir(tmp_path)
    got = rows("events/date=2026-11-2*", kind="events")
    assert [row["_source"] for row in got] == [
        str(Path.cwd() / "events" / "date=2026-11-23" / "part-0.parquet"),
        str(Path.cwd() / "events" / "date=2026-11-24" / "part-0.parquet"),
    ]


def test_file_url(tmp_path):
    path = tmp_path / "events.parquet"
    pq.write_table(events_table(2), path)
    assert [row["_source"] for row in rows(path.as_uri(), kind="events")] == [str(path), str(path)]


def test_a_local_path_object_names_its_files_like_the_plain_path(tmp_path):
    pq.write_table(events_table(1), tmp_path / "part-0.parquet")
    assert rows(UPath(tmp_path.as_uri()), kind="events")[0]["_source"] == str(tmp_path / "part-0.parquet")


def test_file_url_directory_names_its_files_by_their_local_paths(tmp_path):
    pq.write_table(events_table(1), tmp_path / "part-0.parquet")
    assert rows(tmp_path.as_uri(), kind="events")[0]["_source"] == str(tmp_path / "part-0.parquet")


@pytest.fixture
def memory_prefix(tmp_path):
    """A private prefix in fsspec's in-memory filesystem: a non-local filesystem, like s3://, without a network."""
    fs = fsspec.filesystem("memory")
    prefix = f"/{tmp_path.name}"
    yield fs, prefix
    fs.rm(prefix, recursive=True)


def test_other_fsspec_filesystems_read_directories_of_mixed_parts(memory_prefix):
    fs, prefix = memory_prefix
    with fs.open(f"{prefix}/events/part-0.parquet", "wb") as out:
        pq.write_table(events_table(2), out)
    fs.pipe(f"{prefix}/events/part-1.csv.gz", gzip.compress(EVENTS_CSV.encode()))
    fs.pipe(f"{prefix}/events/_SUCCESS", b"")
    url = f"memory://{prefix.lstrip('/')}/events/"
    batches = list(read_batches(url, kind="events"))
    assert [batch["_source"][0].as_py() for batch in batches] == [url + "part-0.parquet", url + "part-1.csv.gz"]
    assert sum(batch.num_rows for batch in batches) == 4


def test_a_url_names_its_files_the_same_with_or_without_a_trailing_slash(memory_prefix):
    fs, prefix = memory_prefix
    fs.pipe(f"{prefix}/events/part-0.csv", EVENTS_CSV.encode())
    url = f"memory://{prefix.lstrip('/')}/events"
    assert rows(url + "//", kind="events")[0]["_source"] == rows(url, kind="events")[0]["_source"]


def test_upath_reads_through_its_own_filesystem(memory_prefix):
    fs, prefix = memory_prefix
    fs.pipe(f"{prefix}/events/part-0.csv", EVENTS_CSV.encode())
    path = UPath(f"memory://{prefix.lstrip('/')}/events")
    assert describe_source(path) == str(path)
    assert rows(path, kind="events")[0]["_source"] == f"{path}/part-0.csv"


def test_a_path_object_whose_backend_is_missing_gets_an_input_error_naming_it(monkeypatch):
    path = UPath("s3://bucket/events/")

    def missing_backend(self):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(type(path), "fs", property(missing_backend))
    with pytest.raises(InputError, match=r"s3://bucket/events: cannot open s3:// here .*s3fs"):
        rows(path, kind="events")


def test_dataframe_rows_are_numbered_under_the_table_kind():
    frame = pd.DataFrame({"EndpointId": ["a", "b"], "EventType": ["x", "y"], "Timestamp": ["t1", "t2"]})
    got = rows(frame, kind="events")
    assert [(row["EndpointId"], row["_source"], row["_source_row"]) for row in got] == [
        ("a", "events", 1),
        ("b", "events", 2),
    ]
    assert describe_source(frame) == "DataFrame"


def test_dataframe_naive_datetimes_arrive_as_arrow_timestamps():
    frame = pd.DataFrame({"EndpointId": ["a"], "EventType": ["x"], "Timestamp": pd.to_datetime(["2026-11-23 10:00"])})
    assert pa.types.is_timestamp(read_table(frame, kind="events").schema.field("Timestamp").type)


def test_dataframe_named_index_becomes_a_column_and_an_unnamed_one_is_ignored():
    frame = pd.DataFrame({"EndpointId": ["a", "b", "c"], "EventType": ["x"] * 3, "Timestamp": ["t"] * 3})
    filtered = frame[frame["EndpointId"] != "a"]
    assert [row["_source_row"] for row in rows(filtered, kind="events")] == [1, 2]
    indexed = rows(frame.set_index("EndpointId"), kind="events")
    assert [row["EndpointId"] for row in indexed] == ["a", "b", "c"]


def test_arrow_table_input():
    table = read_table(events_table(3), kind="events")
    assert table.column("_source_row").to_pylist() == [1, 2, 3]
    assert table.column("_source").to_pylist() == ["events"] * 3


def test_shard_files_keep_their_own_bookkeeping_columns(tmp_path):
    shard = events_table(2).append_column("_source", pa.array(["events.csv", "events.csv"]))
    shard = shard.append_column("_source_row", pa.array([17, 40], pa.int64()))
    pq.write_table(shard, tmp_path / "shard-0.parquet")
    got = rows(tmp_path / "shard-0.parquet", kind="events")
    assert [(row["_source"], row["_source_row"]) for row in got] == [("events.csv", 17), ("events.csv", 40)]


def test_describe_source_gives_the_path_as_given(tmp_path):
    assert describe_source("s3://bucket/events/") == "s3://bucket/events/"
    assert describe_source(tmp_path / "x.csv") == str(tmp_path / "x.csv")


# --- mapping and multi-valued attributes ---------------------------------------------------------


def test_column_mapping_renames_and_drops(tmp_path):
    path = write(tmp_path / "e.csv", "uid,kind,when,debug\nep-1,buy,2026-11-23T10:00:00Z,zzz\n")
    mapping = {"uid": "EndpointId", "kind": "EventType", "when": "Timestamp", "debug": None}
    table = read_table(path, kind="events", column_mapping=mapping)
    assert table.column_names == ["EndpointId", "EventType", "Timestamp", "_source", "_source_row"]


def test_parquet_columns_dropped_by_the_mapping_are_not_returned(tmp_path):
    path = tmp_path / "endpoints.parquet"
    table = pa.table({"Id": ["a"], "Attributes.tags": [["x"]], "Attributes.tags.more": [["y"]], "junk": [1]})
    pq.write_table(table, path)
    got = read_table(path, kind="endpoints", column_mapping={"junk": None, "Attributes.tags.more": None})
    assert got.column_names == ["Id", "Attributes.tags", "_source", "_source_row"]
    assert got.column("Attributes.tags").to_pylist() == [["x"]]


def test_per_table_mapping_applies_to_its_own_table(tmp_path):
    path = write(tmp_path / "p.csv", "uid,ChannelType\nep-1,SMS\n")
    mapping = {"endpoints": {"uid": "Id"}, "events": {"uid": "EndpointId"}}
    assert rows(path, kind="endpoints", column_mapping=mapping)[0]["Id"] == "ep-1"


def test_repeated_csv_headers_become_a_list_without_empty_values(tmp_path):
    path = write(
        tmp_path / "endpoints.csv",
        'Id,Attributes.tags,Attributes.tags,Attributes.tags,User.UserAttributes.plan\na,x,,y,pro\nb,,,,\nc,"z, w",,,\n',
    )
    table = read_table(path, kind="endpoints")
    assert table.schema.field("Attributes.tags").type == pa.list_(pa.string())
    assert table.column("Attributes.tags").to_pylist() == [["x", "y"], None, ["z, w"]]
    assert table.column("User.UserAttributes.plan").to_pylist() == ["pro", None, None]


def test_repeated_headers_survive_a_mapping(tmp_path):
    path = write(tmp_path / "endpoints.csv", "id,tag,tag\na,x,y\n")
    got = rows(path, kind="endpoints", column_mapping={"id": "Id", "tag": "Attributes.tags"})
    assert got[0]["Attributes.tags"] == ["x", "y"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
            st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), max_size=4),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_any_csv_round_trips_through_repeated_headers(tmp_path, rows_):
    width = max(2, max(len(values) for _, values in rows_))
    path = tmp_path / "endpoints.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Id"] + ["Attributes.tags"] * width)
        for endpoint_id, values in rows_:
            writer.writerow([endpoint_id] + values + [""] * (width - len(values)))
    table = read_table(path, kind="endpoints", batch_rows=7)
    assert table.column("Id").to_pylist() == [endpoint_id or None for endpoint_id, _ in rows_]
    expected = [[v for v in values if v] or None for _, values in rows_]
    assert table.column("Attributes.tags").to_pylist() == expected


def _repeating(path: Path, names: list[str], columns: list[list]) -> Path:
    pq.write_table(pa.table([pa.array(column) for column in columns], names=names), path)
    return path


def test_repeated_parquet_columns_of_an_attribute_become_a_list(tmp_path):
    # Few distinct values: the columns a plain file would read as dictionaries.
    n = 3000
    path = _repeating(
        tmp_path / "endpoints.parquet",
        ["Id", "Attributes.tags", "ChannelType", "Attributes.tags"],
        [[f"ep-{i}" for i in range(n)], ["x", None, ""] * (n // 3), ["SMS"] * n, ["y", "z", None] * (n // 3)],
    )
    table = read_table(path, kind="endpoints", batch_rows=1000)
    assert table.column("Attributes.tags").to_pylist()[:3] == [["x", "y"], ["z"], None]
    assert table.column("ChannelType").to_pylist() == ["SMS"] * n
    assert table.column("_source_row").to_pylist() == list(range(1, n + 1))


def test_of_a_file_repeating_names_only_the_columns_used_are_read(tmp_path, monkeypatch):
    path = _repeating(
        tmp_path / "endpoints.parquet",
        ["Id", "Attributes.tags", "blob", "Attributes.tags", "Attributes.other"],
        [["a", "b"], ["x", None], ["...", "..."], ["y", "z"], ["p", "q"]],
    )
    asked: list = []
    real = pq.ParquetFile.iter_batches

    def iter_batches(self, *args, **kwargs):
        asked.append(kwargs.get("columns"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
    got = rows(path, kind="endpoints", column_mapping={"blob": None})
    assert asked == [["Id", "Attributes.tags", "Attributes.other"]]
    assert [(row["Id"], row["Attributes.tags"], row["Attributes.other"]) for row in got] == [
        ("a", ["x", "y"], "p"),
        ("b", ["z"], "q"),
    ]


def test_a_reader_laying_repeated_names_out_otherwise_gets_the_whole_file_read(tmp_path, monkeypatch):
    path = _repeating(
        tmp_path / "endpoints.parquet",
        ["Id", "Attributes.tags", "blob", "Attributes.tags"],
        [["a", "b"], ["x", None], ["...", "..."], ["y", "z"]],
    )
    real = pq.ParquetFile.iter_batches

    def reversed_selection(self, *args, **kwargs):  # the selected columns in another order
        for batch in real(self, *args, **kwargs):
            if kwargs.get("columns") is None:
                yield batch
            else:
                yield pa.RecordBatch.from_arrays(batch.columns[::-1], names=batch.schema.names[::-1])

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", reversed_selection)
    got = rows(path, kind="endpoints", batch_rows=1, column_mapping={"blob": None})
    assert [(row["Id"], row["Attributes.tags"], row["_source_row"]) for row in got] == [
        ("a", ["x", "y"], 1),
        ("b", ["z"], 2),
    ]


def test_repeated_parquet_column_of_a_single_valued_column_is_an_error(tmp_path):
    path = _repeating(tmp_path / "endpoints.parquet", ["Id", "Address", "Address"], [["a"], ["b"], ["c"]])
    with pytest.raises(InputError, match=r"endpoints\.parquet: column Address appears 2 times"):
        read_table(path, kind="endpoints")


def test_repeated_parquet_columns_survive_a_mapping(tmp_path):
    path = _repeating(tmp_path / "endpoints.parquet", ["id", "tag", "tag"], [["a"], ["x"], ["y"]])
    got = rows(path, kind="endpoints", column_mapping={"id": "Id", "tag": "Attributes.tags"})
    assert got[0]["Attributes.tags"] == ["x", "y"]


def test_several_parquet_columns_mapped_onto_one_attribute_are_combined(tmp_path):
    path = tmp_path / "endpoints.parquet"
    pq.write_table(pa.table({"Id": ["a", "b"], "first": ["x", None], "more": [["y", ""], ["z"]]}), path)
    got = rows(path, kind="endpoints", column_mapping={"first": "Attributes.tags", "more": "Attributes.tags"})
    assert [row["Attributes.tags"] for row in got] == [["x", "y"], ["z"]]


def test_columns_combined_into_one_attribute_stay_aligned_across_batches():
    table = pa.table({"Id": ["1", "2", "3", "4"], "x": [["a"], ["b", "c"], None, ["d"]], "y": ["p", None, "", "q"]})
    got = read_table(table, kind="endpoints", batch_rows=3, column_mapping={"x": "Attributes.t", "y": "Attributes.t"})
    assert got.column("Attributes.t").to_pylist() == [["a", "p"], ["b", "c"], None, ["d", "q"]]


def test_describe_source_names_objects_it_cannot_read_by_type():
    assert describe_source(pa.table({"a": [1]})) == "Arrow table"
    assert describe_source({"a": 1}) == "dict"


def test_delimiter_splits_multi_valued_columns_only(tmp_path):
    path = write(
        tmp_path / "endpoints.csv", "Id,Attributes.tags,Attributes.tags,Demographic.Make\na,x; y,z,Acme; Inc\nb,;,,\n"
    )
    table = read_table(path, kind="endpoints", csv_list_delimiter=";")
    assert table.column("Attributes.tags").to_pylist() == [["x", "y", "z"], None]
    assert table.column("Demographic.Make").to_pylist() == ["Acme; Inc", None]


def test_repeated_header_of_a_single_valued_column_is_an_error(tmp_path):
    path = write(tmp_path / "events.csv", "EndpointId,EventType,Timestamp,Attributes.page,Attributes.page\na,b,c,d,e\n")
    with pytest.raises(InputError, match=r"events\.csv: column Attributes\.page appears 2 times"):
        read_table(path, kind="events")


# --- streaming, numbering, skip ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_rows_are_numbered_across_batches(tmp_path, fmt):
    table = events_table(10)
    path = tmp_path / f"events.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=3)
    else:
        table.to_pandas().to_csv(path, index=False)
    batches = list(read_batches(path, kind="events", batch_rows=4))
    assert len(batches) > 1
    assert all(batch.num_rows <= 4 for batch in batches)
    numbers = [n for batch in batches for n in batch.column("_source_row").to_pylist()]
    assert numbers == list(range(1, 11))
    endpoint_ids = [e for batch in batches for e in batch.column("EndpointId").to_pylist()]
    assert endpoint_ids == [f"ep-{i}" for i in range(10)]


def test_csv_batches_are_full_sized_across_the_readers_blocks(tmp_path):
    body = "".join(f"ep-{i},page_view,2026-11-23T10:00:00.000Z\n" for i in range(70_000))
    path = write(tmp_path / "events.csv", "EndpointId,EventType,Timestamp\n" + body)
    assert path.stat().st_size > 2**21  # more than two of pyarrow's 1 MB blocks
    batches = list(read_batches(path, kind="events", batch_rows=30_000))
    assert [batch.num_rows for batch in batches] == [30_000, 30_000, 10_000]
    assert batches[1]["EndpointId"][0].as_py() == "ep-30000"
    assert batches[1]["_source_row"][0].as_py() == 30_001


def test_read_batches_streams_without_reading_whole_tables(tmp_path, monkeypatch):
    pq.write_table(events_table(6), tmp_path / "a.parquet", row_group_size=2)
    (tmp_path / "b.parquet").write_bytes(b"not parquet at all")

    def refuse(*args, **kwargs):
        raise AssertionError("read_batches must not read whole tables")

    monkeypatch.setattr(read, "read_table", refuse)
    batches = read_batches(tmp_path, kind="events", batch_rows=2)
    assert next(batches).num_rows == 2  # the first rows arrive before the broken second file is opened
    assert sum(1 for _ in zip(range(2), batches, strict=False)) == 2
    with pytest.raises(InputError, match="b.parquet: not a readable Parquet file"):
        next(batches)


def test_streaming_a_parquet_file_does_not_keep_the_row_groups_already_read(tmp_path):
    # Pre-buffered row groups stay in memory until the file is closed (apache/arrow#39808).
    n, group = 80_000, 2_000
    table = events_table(n).append_column("Attributes.note", pa.array([f"{i:0200d}" for i in range(n)]))
    path = tmp_path / "events.parquet"
    pq.write_table(table, path, row_group_size=group, compression="none")
    before, highest = pa.total_allocated_bytes(), 0
    for batch in read_batches(path, kind="events", batch_rows=group):
        highest = max(highest, pa.total_allocated_bytes() - before)
        del batch
    assert highest < table.nbytes / 4  # a row group or two (1.5 MB), not most of the file (18 MB)


def test_skip_drops_named_rows_of_named_sources(tmp_path):
    pq.write_table(events_table(5), tmp_path / "a.parquet", row_group_size=2)
    pq.write_table(events_table(2, start=5), tmp_path / "b.parquet")
    a, b = str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")
    batches = read_batches(tmp_path, kind="events", batch_rows=2, skip={a: {1, 2, 5}, b: [2], "other": [1]})
    got = [(row["_source"], row["_source_row"]) for batch in batches for row in batch.to_pylist()]
    assert got == [(a, 3), (a, 4), (b, 1)]


def test_read_batches_yields_nothing_when_every_row_is_skipped_and_read_table_is_empty(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(events_table(2), path)
    assert list(read_batches(path, kind="events", skip={str(path): {1, 2}})) == []
    table = read_table(path, kind="events", skip={str(path): {1, 2}})
    assert table.num_rows == 0 and "EndpointId" in table.column_names


# --- errors --------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.csv: no such file or directory"):
        read_table(tmp_path / "nope.csv", kind="events")


def test_unknown_extension(tmp_path):
    path = write(tmp_path / "events.json", "{}")
    with pytest.raises(InputError, match="unknown file format"):
        read_table(path, kind="events")


def test_directory_without_data_files(tmp_path):
    write(tmp_path / "readme.txt", "hi")
    with pytest.raises(InputError, match="directory contains no .parquet"):
        read_table(tmp_path, kind="events")


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(InputError, match="matches no .parquet"):
        read_table(str(tmp_path / "*.parquet"), kind="events")


def test_corrupt_parquet_names_the_file(tmp_path):
    path = tmp_path / "events.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 64)
    with pytest.raises(InputError, match=r"^.*events\.parquet: not a readable Parquet file \("):
        read_table(path, kind="events")


def test_truncated_parquet_names_the_file(tmp_path):
    path = tmp_path / "events.parquet"
    pq.write_table(events_table(1000), path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"events\.parquet: not a readable Parquet file"):
        read_table(path, kind="events")


def test_zero_byte_csv(tmp_path):
    path = write(tmp_path / "events.csv", "")
    with pytest.raises(InputError, match=r"events\.csv: empty file"):
        read_table(path, kind="events")


def test_input_without_rows(tmp_path):
    path = write(tmp_path / "events.csv", "EndpointId,EventType,Timestamp\n")
    with pytest.raises(InputError, match=r"events\.csv: the events input has no rows"):
        read_table(path, kind="events")


def test_empty_dataframe():
    with pytest.raises(InputError, match="DataFrame: the events input has no rows"):
        read_table(pd.DataFrame({"EndpointId": []}), kind="events")


def test_empty_part_among_others_is_fine(tmp_path):
    pq.write_table(events_table(0), tmp_path / "part-0.parquet")
    pq.write_table(events_table(2), tmp_path / "part-1.parquet")
    assert read_table(tmp_path, kind="events").num_rows == 2


def test_ragged_csv_rows_come_back_in_place_as_null_rows_saying_why_without_their_content(tmp_path):
    path = write(
        tmp_path / "endpoints.csv",
        'Id,ChannelType\na,SMS\nb,EMAIL,user0001@example.com\n"c\nc",SMS\n\nd\ne,SMS\nf,SMS,x,y\n',
    )
    table = read_table(path, kind="endpoints", batch_rows=2)
    assert table.column("_source_row").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert table.column("Id").to_pylist() == ["a", None, "c\nc", None, "e", None]
    errors = table.column("_read_error").to_pylist()
    assert errors[0] is None and errors[2] is None and errors[4] is None
    assert errors[1].startswith("has 3 fields, the header has 2;")
    assert errors[3].startswith("has 1 field, the header has 2;")
    assert errors[5].startswith("has 4 fields, the header has 2;")
    assert "example.com" not in str(table.to_pylist())


def test_ragged_csv_rows_far_into_a_file_keep_every_rows_number(tmp_path):
    """About 2.5 MB: several of pyarrow's 1 MB blocks, so ragged rows fall into different blocks."""
    ids = [f"ep-{i:06d}-{'x' * 24}" for i in range(60_000)]
    lines = [f"{id_},SMS" + (",extra" if i in (7, 30_000, 59_999) else "") for i, id_ in enumerate(ids)]
    path = write(tmp_path / "endpoints.csv", "Id,ChannelType\n" + "\n".join(lines) + "\nlast,SMS,x\n")
    batches = list(read_batches(path, kind="endpoints", batch_rows=4096))
    assert all(batch.num_rows == 4096 for batch in batches[:-1])
    table = pa.concat_tables([pa.Table.from_batches([batch]) for batch in batches], promote_options="default")
    assert table.column("_source_row").to_pylist() == list(range(1, 60_002))
    ragged = [row for row, error in enumerate(table.column("_read_error").to_pylist(), 1) if error is not None]
    assert ragged == [8, 30_001, 60_000, 60_001]
    read_ids = table.column("Id").to_pylist()
    assert [read_ids[i] for i in range(60_000) if i + 1 not in ragged] == [
        id_ for i, id_ in enumerate(ids) if i not in (7, 30_000, 59_999)
    ]


def test_a_csv_row_that_is_not_utf8_is_named_with_how_to_convert_the_file(tmp_path):
    path = tmp_path / "events.csv"
    good = "".join(f"a,view,t{i}\n" for i in range(5000)).encode()
    path.write_bytes(
        b"EndpointId,EventType,Timestamp\n" + good + b'"multi\nline",view,t\n' + "b,café,t\n".encode("latin-1")
    )
    with pytest.raises(InputError) as caught:
        read_table(path, kind="events")
    message = str(caught.value)
    assert message.startswith(f"{path}: data row 5002 is not UTF-8 text;")
    assert "iconv -f latin1 -t utf-8" in message


def test_a_csv_header_that_is_not_utf8(tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes("EndpointId,EventType,Timestamp,Attributes.café\na,view,t,x\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"events\.csv: the header line is not UTF-8 text; .* iconv"):
        read_table(path, kind="events")


def test_unknown_column_in_a_file_is_an_error_naming_it(tmp_path):
    path = write(tmp_path / "events.csv", "EndpointId,EventType,Timestamp,Evnt\na,b,c,d\n")
    with pytest.raises(InputError, match=r"events\.csv: unknown events column 'Evnt'"):
        read_table(path, kind="events")


def test_mapping_naming_a_missing_column(tmp_path):
    path = write(tmp_path / "events.csv", EVENTS_CSV)
    with pytest.raises(InputError, match=r"events\.csv: column_mapping names 'when'"):
        read_table(path, kind="events", column_mapping={"events": {"when": "Timestamp"}})


def test_half_of_the_bookkeeping_columns_is_an_error(tmp_path):
    path = write(tmp_path / "events.csv", "EndpointId,EventType,Timestamp,_source\na,b,c,d\n")
    with pytest.raises(InputError, match="has _source without _source_row"):
        read_table(path, kind="events")


def test_unsupported_source_type():
    with pytest.raises(InputError, match="cannot read a dict"):
        read_table({"EndpointId": ["a"]}, kind="events")


def test_s3_without_s3fs_says_how_to_install_it(monkeypatch):
    from fsspec.registry import _registry, known_implementations

    monkeypatch.delitem(_registry, "s3", raising=False)  # as if s3fs had never been imported
    monkeypatch.setitem(known_implementations, "s3", {"class": "pinpoint_no_such_module.S3FileSystem"})
    with pytest.raises(InputError, match=r"s3://bucket/events: .*pip install s3fs"):
        read_table("s3://bucket/events/", kind="events")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "users"}, "kind must be one of"),
        ({"kind": "events", "batch_rows": 0}, "batch_rows must be at least 1"),
        ({"kind": "events", "csv_list_delimiter": ""}, "csv_list_delimiter must be a non-empty string"),
    ],
)
def test_programming_errors_in_the_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        read_table(events_table(1), **kwargs)


def test_a_shared_mapping_naming_a_column_of_neither_input_is_an_error(tmp_path):
    events = write(tmp_path / "events.csv", EVENTS_CSV)
    pq.write_table(pa.table({"Id": ["ep-1"], "email": ["x"]}), tmp_path / "endpoints.parquet")
    mapping = {"email": "Address", "user_id": "EndpointId"}
    with pytest.raises(InputError) as caught:
        read.check_mapping(mapping, events=events, endpoints=tmp_path / "endpoints.parquet")
    message = str(caught.value)
    assert message.startswith(f"{events}, {tmp_path / 'endpoints.parquet'}: column_mapping names 'user_id', ")
    assert "neither the events nor the endpoints input has" in message


def test_a_shared_mapping_with_only_one_input_must_name_its_columns():
    with pytest.raises(InputError, match=r"^DataFrame: column_mapping names 'uid', which the events input does not"):
        read.check_mapping({"uid": "EndpointId"}, events=pd.DataFrame({"EndpointId": ["a"]}))


def test_a_shared_mapping_may_name_a_column_found_in_any_part_or_in_the_other_table(tmp_path):
    write(tmp_path / "events" / "part-0.csv", EVENTS_CSV)
    write(tmp_path / "events" / "part-1.csv", "EndpointId,EventType,Timestamp,when\na,b,c,d\n")
    endpoints = pa.table({"uid": ["a"]})
    mapping = {"when": "Session.StartTimestamp", "uid": "Id"}
    read.check_mapping(mapping, events=tmp_path / "events", endpoints=endpoints)
    read.check_mapping({"events": {"nope": "EventType"}}, events=tmp_path / "events")  # per table: read checks it


def test_a_ragged_endpoints_row_becomes_a_rejection_naming_the_row_and_the_rule(tmp_path):
    path = write(tmp_path / "endpoints.csv", "Id,ChannelType\na,SMS\nb,EMAIL,user0001@example.com\nc,SMS\n")
    out = list(prepare(endpoints=path))
    rejections = [r for part in out if isinstance(part, list) for r in part]
    assert rejections == [
        Rejection(
            "endpoint",
            None,
            None,
            str(path),
            2,
            "endpoints.csv row 2: has 3 fields, the header has 2; quote values that contain commas or line breaks",
        )
    ]
    assert sorted(item.endpoint_id for part in out if not isinstance(part, list) for item in part.items) == ["a", "c"]


@pytest.mark.parametrize("newline", ["\r", "\r\n"], ids=["cr", "crlf"])
def test_csv_lines_may_end_in_carriage_returns_ragged_rows_included(tmp_path, newline):
    path = tmp_path / "endpoints.csv"
    path.write_bytes(newline.join(["Id,ChannelType", "a,SMS", "b,SMS,x", "c,SMS", ""]).encode())
    table = read_table(path, kind="endpoints")
    assert table.column("Id").to_pylist() == ["a", None, "c"]
    assert table.column("_source_row").to_pylist() == [1, 2, 3]


# --- addresses stay out of messages --------------------------------------------------------------


def test_a_dataframe_address_column_mixing_types_is_named_without_its_values():
    frame = pd.DataFrame({"Id": ["a", "b"], "Address": [5, "someone@example.com"]})
    with pytest.raises(InputError) as caught:
        read_table(frame, kind="endpoints")
    message = str(caught.value)
    assert message == (
        "DataFrame (endpoints): column 'Address' mixes values Arrow cannot convert to one type (int, str); "
        "give it one type"
    )


def test_a_dataframe_column_with_a_lone_surrogate_says_so_without_the_value():
    frame = pd.DataFrame({"Id": ["a", "b"], "Address": pd.Series(["ok", "jane\udcff@example.com"], dtype=object)})
    with pytest.raises(InputError, match="column 'Address' holds text that is not valid Unicode") as caught:
        read_table(frame, kind="endpoints")
    assert "jane" not in str(caught.value)


def test_a_csv_value_pyarrow_cannot_convert_is_not_quoted(tmp_path):
    path = write(
        tmp_path / "events.csv",
        "EndpointId,EventType,Timestamp,_source,_source_row\nep-1,view,2026-01-01T00:00:00Z,a.csv,someone@example.com\n",
    )
    with pytest.raises(InputError, match="not a readable CSV file") as caught:
        read_table(path, kind="events")
    assert "example.com" not in str(caught.value)

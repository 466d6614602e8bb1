"""JSON Lines inputs: plain and gzipped, files, directories and globs, nested objects as dotted names."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import fsspec
import pytest

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.flow import Rejection, prepare
from airflow_provider_pinpoint.prepare.read import json_lines, read_batches, read_table

EVENTS = [
    {"EndpointId": "ep-1", "EventType": "buy", "Timestamp": "2026-11-23T10:00:00.123Z", "Metrics": {"price": 1.5}},
    {
        "EndpointId": "ep-2",
        "EventType": "view",
        "Timestamp": "2026-11-23T11:00:00.000Z",
        "Attributes": {"page": "home"},
    },
]


def lines(records: list[dict]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["events.jsonl", "events.ndjson", "events.jsonl.gz", "events.ndjson.gz"])
def test_json_lines_files_plain_or_gzipped_flatten_objects_to_dotted_names(tmp_path, name):
    path = write(tmp_path / name, lines(EVENTS))
    table = read_table(str(path), kind="events")
    assert table.to_pylist() == [
        {
            "EndpointId": "ep-1",
            "EventType": "buy",
            "Timestamp": "2026-11-23T10:00:00.123Z",
            "Metrics.price": 1.5,
            "Attributes.page": None,
            "_source": str(path),
            "_source_row": 1,
        },
        {
            "EndpointId": "ep-2",
            "EventType": "view",
            "Timestamp": "2026-11-23T11:00:00.000Z",
            "Metrics.price": None,
            "Attributes.page": "home",
            "_source": str(path),
            "_source_row": 2,
        },
    ]


def test_a_field_first_met_after_the_first_chunk_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(json_lines, "CHUNK_BYTES", 64)
    later = {"EndpointId": "ep-9", "EventType": "x", "Timestamp": "2026-11-23T12:00:00Z", "Attributes": {"new": "y"}}
    path = write(tmp_path / "events.jsonl", lines(EVENTS * 3 + [later]))
    batches = list(read_batches(str(path), kind="events"))
    assert len(batches) > 1
    rows = [row for batch in batches for row in batch.to_pylist()]
    assert [row["_source_row"] for row in rows] == list(range(1, 8))
    assert rows[-1]["Attributes.new"] == "y"


def test_blank_lines_are_skipped_and_rows_count_objects(tmp_path):
    path = write(tmp_path / "events.jsonl", "\n" + lines(EVENTS[:1]) + "\n\n" + lines(EVENTS[1:]))
    assert [row["EndpointId"] for row in read_table(str(path), kind="events").to_pylist()] == ["ep-1", "ep-2"]


def test_directory_and_glob_of_json_lines_parts(tmp_path):
    write(tmp_path / "events" / "part-0.jsonl", lines(EVENTS[:1]))
    write(tmp_path / "events" / "part-1.jsonl.gz", lines(EVENTS[1:]))
    write(tmp_path / "events" / "_SUCCESS", "")
    for source in (tmp_path / "events", str(tmp_path / "events" / "part-*")):
        table = read_table(str(source), kind="events")
        assert table.column("EndpointId").to_pylist() == ["ep-1", "ep-2"]
        assert {Path(name).name for name in table.column("_source").to_pylist()} == {"part-0.jsonl", "part-1.jsonl.gz"}


def test_json_lines_on_another_filesystem_by_url():
    fs = fsspec.filesystem("memory")
    fs.pipe("/jsonl-test/events.ndjson.gz", gzip.compress(lines(EVENTS).encode()))
    try:
        table = read_table("memory://jsonl-test/events.ndjson.gz", kind="events")
    finally:
        fs.rm("/jsonl-test", recursive=True)
    assert table.column("EndpointId").to_pylist() == ["ep-1", "ep-2"]


def test_array_values_become_a_multi_valued_attribute(tmp_path):
    path = write(tmp_path / "endpoints.jsonl", lines([{"Id": "a", "Attributes": {"tags": ["x", "y"]}}]))
    assert read_table(str(path), kind="endpoints").column("Attributes.tags").to_pylist() == [["x", "y"]]


def test_column_mapping_applies_to_json_lines_and_to_fields_of_some_chunks_only(tmp_path, monkeypatch):
    monkeypatch.setattr(json_lines, "CHUNK_BYTES", 40)
    records = [{"user": "ep-1", "kind": "buy", "at": "2026-11-23T10:00:00Z"}] * 3 + [
        {"user": "ep-2", "kind": "buy", "at": "2026-11-23T10:00:00Z", "extra": {"shop": "s1"}}
    ]
    path = write(tmp_path / "events.jsonl", lines(records))
    mapping = {
        "events": {"user": "EndpointId", "kind": "EventType", "at": "Timestamp", "extra.shop": "Attributes.shop"}
    }
    table = read_table(str(path), kind="events", column_mapping=mapping)
    assert table.column("Attributes.shop").to_pylist() == [None, None, None, "s1"]


def test_a_mapped_field_no_line_has_is_an_error(tmp_path):
    path = write(tmp_path / "events.jsonl", lines(EVENTS))
    with pytest.raises(InputError, match="column_mapping names 'page_name', which no line of the events input has"):
        read_table(str(path), kind="events", column_mapping={"events": {"page_name": "Attributes.page_name"}})


def test_a_line_that_is_not_json_is_one_error_naming_file_and_line(tmp_path):
    path = write(tmp_path / "events.jsonl", lines(EVENTS) + "\n" + '{"EndpointId": "someone@example.com", oops\n')
    with pytest.raises(InputError) as caught:
        read_table(str(path), kind="events")
    message = str(caught.value)
    assert message == f"{path}: line 4 is not valid JSON; each line must hold one JSON object"


def test_a_line_that_is_not_an_object_is_named(tmp_path):
    path = write(tmp_path / "events.jsonl", lines(EVENTS) + '["ep-3", "view"]\n')
    with pytest.raises(InputError, match=r"events.jsonl: line 3 holds a JSON array, not an object$"):
        read_table(str(path), kind="events")


def test_a_field_changing_type_within_a_chunk_names_the_line_and_field(tmp_path):
    records = [dict(EVENTS[0], Attributes={"n": "1"}), dict(EVENTS[1], Attributes={"n": 2})]
    path = write(tmp_path / "events.jsonl", lines(records))
    with pytest.raises(InputError, match=r"line 2: field Attributes\.n changed from string to number; give each"):
        read_table(str(path), kind="events")


def test_a_truncated_gzip_file_is_an_input_error(tmp_path):
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(lines(EVENTS * 50).encode())[:-30])
    with pytest.raises(InputError, match="events.jsonl.gz: not a readable JSON Lines file"):
        read_table(str(path), kind="events")


def test_json_lines_events_validate_like_other_inputs(tmp_path):
    bad = {"EndpointId": "ep-3", "EventType": "buy", "Timestamp": "not a time"}
    path = write(tmp_path / "events.jsonl", lines([*EVENTS, bad]))
    out = list(prepare(events=str(path)))
    rejections = [r for part in out if isinstance(part, list) for r in part]
    assert [(r.source_row, r.record_type) for r in rejections] == [(3, "event")]
    assert all(isinstance(r, Rejection) for r in rejections)
    assert sum(len(part) for part in out if not isinstance(part, list)) == 2

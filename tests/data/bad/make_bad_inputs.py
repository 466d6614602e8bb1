"""Write the bad-input corpus: small files that each break one rule, and ``cases.json``, what must happen.

Run ``python tests/data/bad/make_bad_inputs.py`` to regenerate; the outputs are committed, and a
test checks that the committed files are what this script writes (the seed fixes every byte).

Each case names its input file(s) and the expected outcome:
- ``{"fatal": [substrings]}``: the input cannot be read at all; one error line, containing every
  substring (the file name among them), and nothing is sent.
- ``{"rejected": {"<file> row <n>": [substrings]}, "accepted_rows": N}``: exactly those rows are
  rejected, each with a message naming the row, the column and the rule; N rows (endpoints plus
  events) go through. ``sent_events`` / ``sent_endpoints`` pin what some accepted rows look like on
  the wire (a ``null`` value: the key is absent).
- ``known_bug``: the loader does not do this yet; the tests mark the case as an expected failure.
"""

from __future__ import annotations

import datetime
import gzip
import io
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SEED = 7
T0 = "2026-01-01T00:00:00Z"
EVENTS_HEADER = "EndpointId,EventId,EventType,Timestamp,Attributes.color,Metrics.price"

Writer = Callable[[Path], None]


def _csv(lines: list[str], encoding: str = "utf-8") -> Writer:
    def write(path: Path) -> None:
        path.write_bytes(("\n".join(lines) + "\n").encode(encoding))

    return write


def _bytes(data: bytes) -> Writer:
    def write(path: Path) -> None:
        path.write_bytes(data)

    return write


def _parquet(table: pa.Table) -> Writer:
    def write(path: Path) -> None:
        pq.write_table(table, path, compression="snappy")

    return write


def _parquet_int96(table: pa.Table) -> Writer:
    """Timestamps as int96, as Spark, Hive and Impala write them."""

    def write(path: Path) -> None:
        pq.write_table(table, path, compression="snappy", use_deprecated_int96_timestamps=True)

    return write


def _good_event(endpoint: str, event: str, color: str = "red", price: str = "1") -> str:
    return f"{endpoint},{event},view,{T0},{color},{price}"


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def _sample_events(rows: int) -> pa.Table:
    return pa.table(
        {
            "EndpointId": [f"ep-{i}" for i in range(rows)],
            "EventId": [f"ev-{i}" for i in range(rows)],
            "EventType": ["view"] * rows,
            "Timestamp": [T0] * rows,
            "Metrics.price": [float(i) for i in range(rows)],
        }
    )


def _corrupted(data: bytes, rng: random.Random) -> bytes:
    """The same length, magic bytes intact, the footer's metadata overwritten with noise."""
    footer_length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - footer_length
    noise = bytes(rng.randrange(256) for _ in range(footer_length))
    return data[:start] + noise + data[-8:]


def cases(rng: random.Random) -> list[tuple[dict, dict[str, Writer]]]:
    """(case, {file name: writer}) for every case, in a fixed order."""
    parquet = _parquet_bytes(_sample_events(200))
    out: list[tuple[dict, dict[str, Writer]]] = []

    def case(name: str, files: dict[str, tuple[str, Writer]], expect: dict, **extra: object) -> None:
        entry: dict = {"name": name}
        writers: dict[str, Writer] = {}
        for kind, (file_name, writer) in files.items():
            entry[kind] = file_name
            writers[file_name] = writer
        entry.update(extra)
        entry["expect"] = expect
        out.append((entry, writers))

    # Files that cannot be read at all.
    case(
        "parquet_truncated",
        {"events": ("parquet_truncated.parquet", _bytes(parquet[: len(parquet) * 3 // 5]))},
        {"fatal": ["parquet_truncated.parquet", "Parquet"]},
    )
    case(
        "parquet_corrupt_footer",
        {"events": ("parquet_corrupt_footer.parquet", _bytes(_corrupted(parquet, rng)))},
        {"fatal": ["parquet_corrupt_footer.parquet", "Parquet"]},
    )
    case(
        "parquet_not_parquet",
        {"events": ("parquet_not_parquet.parquet", _bytes(bytes(rng.randrange(256) for _ in range(512))))},
        {"fatal": ["parquet_not_parquet.parquet", "Parquet"]},
    )
    case(
        "csv_gzip_corrupt",
        {
            "events": (
                "csv_gzip_corrupt.csv.gz",
                _bytes(gzip.compress(b"EndpointId,EventType\na,view\n", mtime=0)[:-12]),
            )
        },
        {"fatal": ["csv_gzip_corrupt.csv.gz"]},
    )
    case("csv_empty_file", {"events": ("csv_empty_file.csv", _bytes(b""))}, {"fatal": ["csv_empty_file.csv", "empty"]})
    case(
        "csv_header_only",
        {"events": ("csv_header_only.csv", _csv([EVENTS_HEADER]))},
        {"fatal": ["csv_header_only.csv", "no rows"]},
    )
    case(
        "csv_wrong_delimiter",
        {"events": ("csv_wrong_delimiter.csv", _csv([EVENTS_HEADER.replace(",", ";"), "a;e1;view;" + T0 + ";red;1"]))},
        {"fatal": ["csv_wrong_delimiter.csv", "unknown events column"]},
    )
    case(
        "csv_duplicate_headers",
        {
            "events": (
                "csv_duplicate_headers.csv",
                _csv([EVENTS_HEADER + ",Attributes.color", _good_event("a", "e1") + ",blue"]),
            )
        },
        {"fatal": ["csv_duplicate_headers.csv", "Attributes.color", "2 times"]},
    )
    case(
        "csv_mixed_encodings",
        {
            "events": (
                "csv_mixed_encodings.csv",
                _bytes(
                    (EVENTS_HEADER + "\n" + _good_event("a", "e1", "café") + "\n").encode("utf-8")
                    + (_good_event("a", "e2", "café") + "\n").encode("latin-1")
                ),
            )
        },
        {"fatal": ["csv_mixed_encodings.csv", "utf-8"]},
    )
    case(
        "csv_not_utf8_in_row_3",
        {
            "events": (
                "csv_not_utf8_in_row_3.csv",
                _bytes(
                    f"{EVENTS_HEADER}\n{_good_event('a', 'e1')}\n{_good_event('a', 'e2')}\n".encode()
                    + (_good_event("a", "e3", "café") + "\n").encode("latin-1")
                ),
            )
        },
        {"fatal": ["csv_not_utf8_in_row_3.csv", "row 3", "utf-8"]},
    )
    case(
        "mapping_missing_column",
        {"events": ("mapping_missing_column.csv", _csv([EVENTS_HEADER, _good_event("a", "e1")]))},
        {"fatal": ["mapping_missing_column.csv", "user_id"]},
        column_mapping={"user_id": "EndpointId"},
    )
    case(
        "mapping_unknown_field",
        {"events": ("mapping_unknown_field.csv", _csv(["user,EventType,Timestamp", f"a,view,{T0}"]))},
        {"fatal": ["mapping_unknown_field.csv", "EndpointID", "EndpointId"]},
        column_mapping={"user": "EndpointID"},
    )
    case(
        "unknown_column",
        {"events": ("unknown_column.csv", _csv(["EndpointId,EventType,Timestamp,colour", f"a,view,{T0},red"]))},
        {"fatal": ["unknown_column.csv", "colour"]},
    )
    case(
        "tables_swapped",
        {"events": ("tables_swapped.csv", _csv(["Id,ChannelType,Address", "a,EMAIL,swap@example.com"]))},
        {"fatal": ["tables_swapped.csv", "endpoints"]},
    )
    case(
        "csv_unclosed_quote",
        {
            "endpoints": (
                "csv_unclosed_quote.csv",
                _csv(["Id,ChannelType,Address", 'e1,EMAIL,"secret@example.com', "e2,EMAIL,other@example.com"]),
            )
        },
        {"fatal": ["csv_unclosed_quote.csv", "data row 1", "never closed"]},
    )

    # CSV shapes: some rows bad, the rest still go.
    case(
        "csv_ragged_rows",
        {
            "events": (
                "csv_ragged_rows.csv",
                _csv(
                    [EVENTS_HEADER, _good_event("a", "e1"), _good_event("a", "e2") + ",extra", _good_event("a", "e3")]
                ),
            )
        },
        {"rejected": {"csv_ragged_rows.csv row 2": ["7 fields", "6"]}, "accepted_rows": 2},
    )
    case(
        "csv_bom",
        {"events": ("csv_bom.csv", _bytes(b"\xef\xbb\xbf" + f"{EVENTS_HEADER}\n{_good_event('a', 'e1')}\n".encode()))},
        {"rejected": {}, "accepted_rows": 1, "sent_events": {"a/e1": {"EventType": "view"}}},
    )
    case(
        "csv_embedded_newlines",
        {
            "events": (
                "csv_embedded_newlines.csv",
                _csv([EVENTS_HEADER, f'a,e1,view,{T0},"red\nish",1', _good_event("a", "e2")]),
            )
        },
        {"rejected": {}, "accepted_rows": 2, "sent_events": {"a/e1": {"Attributes": {"color": "red\nish"}}}},
    )

    # Wrong types.
    case(
        "metric_text",
        {
            "events": (
                "metric_text.csv",
                _csv([EVENTS_HEADER, _good_event("a", "e1"), _good_event("a", "e2", price="cheap")]),
            )
        },
        {"rejected": {"metric_text.csv row 2": ["Metrics.price", "'cheap'", "not a number"]}, "accepted_rows": 1},
    )
    case(
        "timestamp_number_csv",
        {
            "events": (
                "timestamp_number_csv.csv",
                _csv([EVENTS_HEADER, _good_event("a", "e1"), "a,e2,view,1767225600,red,1"]),
            )
        },
        {"rejected": {"timestamp_number_csv.csv row 2": ["Timestamp", "1767225600", "ISO 8601"]}, "accepted_rows": 1},
    )
    case(
        "timestamp_number_parquet",
        {
            "events": (
                "timestamp_number_parquet.parquet",
                _parquet(
                    pa.table({"EndpointId": ["a", "b"], "EventType": ["view"] * 2, "Timestamp": [1767225600] * 2})
                ),
            )
        },
        {
            "rejected": {
                "timestamp_number_parquet.parquet row 1": ["Timestamp", "is a number", "epoch"],
                "timestamp_number_parquet.parquet row 2": ["Timestamp", "is a number", "epoch"],
            },
            "accepted_rows": 0,
        },
    )
    case(
        "session_wrong_types",
        {
            "events": (
                "session_wrong_types.csv",
                _csv(
                    [
                        "EndpointId,EventId,EventType,Timestamp,Session.Id,Session.StartTimestamp,Session.Duration",
                        f"a,e1,view,{T0},s1,{T0},1.5",
                        f"a,e2,view,{T0},s1,{T0},-3",
                        f"a,e3,view,{T0},,,100",
                        f"a,e4,view,{T0},s1,{T0},1500",
                    ]
                ),
            )
        },
        {
            "rejected": {
                "session_wrong_types.csv row 1": ["Session.Duration", "whole number"],
                "session_wrong_types.csv row 2": ["Session.Duration", "negative"],
                "session_wrong_types.csv row 3": ["Session.Id", "is empty"],
            },
            "accepted_rows": 1,
            "sent_events": {
                "a/e4": {"Session": {"Id": "s1", "StartTimestamp": "2026-01-01T00:00:00.000Z", "Duration": 1500}}
            },
        },
    )

    # Timestamps.
    case(
        "timestamp_unparseable",
        {
            "events": (
                "timestamp_unparseable.csv",
                _csv(
                    [
                        EVENTS_HEADER,
                        "a,e1,view,yesterday,red,1",
                        "a,e2,view,2026-13-45T00:00:00Z,red,1",
                        "a,e3,view,,red,1",
                        _good_event("a", "e4"),
                    ]
                ),
            )
        },
        {
            "rejected": {
                "timestamp_unparseable.csv row 1": ["Timestamp", "'yesterday'", "ISO 8601"],
                "timestamp_unparseable.csv row 2": ["Timestamp", "2026-13-45", "ISO 8601"],
                "timestamp_unparseable.csv row 3": ["Timestamp", "is empty"],
            },
            "accepted_rows": 1,
        },
    )
    case(
        "timestamp_timezone_less",
        {
            "events": (
                "timestamp_timezone_less.csv",
                _csv(
                    [
                        EVENTS_HEADER,
                        "a,e1,view,2026-01-01T12:00:00,red,1",
                        "a,e2,view,2026-01-01T12:00:00.250,red,1",
                        "a,e3,view,2026-01-01T12:00:00+02:00,red,1",
                    ]
                ),
            )
        },
        {
            "rejected": {},
            "accepted_rows": 3,
            "sent_events": {
                "a/e1": {"Timestamp": "2026-01-01T12:00:00.000Z"},
                "a/e2": {"Timestamp": "2026-01-01T12:00:00.250Z"},
                "a/e3": {"Timestamp": "2026-01-01T10:00:00.000Z"},
            },
        },
    )

    # Metrics that are not finite: dropped from the row, never sent as "NaN" strings.
    case(
        "metric_nan_infinite",
        {
            "events": (
                "metric_nan_infinite.csv",
                _csv(
                    [
                        EVENTS_HEADER,
                        _good_event("a", "e1", price="NaN"),
                        _good_event("a", "e2", price="inf"),
                        _good_event("a", "e3", price="-Infinity"),
                        _good_event("a", "e4", price="2.5"),
                    ]
                ),
            )
        },
        {
            "rejected": {},
            "accepted_rows": 4,
            "sent_events": {
                "a/e1": {"Metrics": None},
                "a/e2": {"Metrics": None},
                "a/e3": {"Metrics": None},
                "a/e4": {"Metrics": {"price": 2.5}},
            },
        },
    )
    case(
        "metric_nan_parquet",
        {
            "events": (
                "metric_nan_parquet.parquet",
                _parquet(
                    pa.table(
                        {
                            "EndpointId": ["a", "a", "a"],
                            "EventId": ["e1", "e2", "e3"],
                            "EventType": ["view"] * 3,
                            "Timestamp": [T0] * 3,
                            "Metrics.price": [float("nan"), float("inf"), 1.0],
                            "Metrics.qty": [1.0, float("-inf"), float("nan")],
                        }
                    )
                ),
            )
        },
        {
            "rejected": {},
            "accepted_rows": 3,
            "sent_events": {
                "a/e1": {"Metrics": {"qty": 1.0}},
                "a/e2": {"Metrics": None},
                "a/e3": {"Metrics": {"price": 1.0}},
            },
        },
    )
    # Parquet column types the API has no direct use for: rejected row by row with a reason.
    case(
        "parquet_binary_not_utf8",
        {
            "events": (
                "parquet_binary_not_utf8.parquet",
                _parquet(
                    pa.table(
                        {
                            "EndpointId": ["a", "a"],
                            "EventId": ["e1", "e2"],
                            "EventType": ["view"] * 2,
                            "Timestamp": [T0] * 2,
                            "Attributes.color": pa.array([b"red", b"r\xffd"], pa.binary()),
                        }
                    )
                ),
            )
        },
        {
            "rejected": {"parquet_binary_not_utf8.parquet row 2": ["Attributes.color", "not UTF-8 text"]},
            "accepted_rows": 1,
            "sent_events": {"a/e1": {"Attributes": {"color": "red"}}},
        },
    )
    case(
        "metric_uint64_max",
        {
            "events": (
                "metric_uint64_max.parquet",
                _parquet(
                    pa.table(
                        {
                            "EndpointId": ["a", "a"],
                            "EventId": ["e1", "e2"],
                            "EventType": ["view"] * 2,
                            "Timestamp": [T0] * 2,
                            "Metrics.price": pa.array([3, 2**64 - 1], pa.uint64()),
                        }
                    )
                ),
            )
        },
        {
            "rejected": {"metric_uint64_max.parquet row 2": ["Metrics.price", "18446744073709551615", "2**53"]},
            "accepted_rows": 1,
            "sent_events": {"a/e1": {"Metrics": {"price": 3.0}}},
        },
    )
    case(
        "session_duration_uint64_max",
        {
            "events": (
                "session_duration_uint64_max.parquet",
                _parquet(
                    pa.table(
                        {
                            "EndpointId": ["a", "a"],
                            "EventId": ["e1", "e2"],
                            "EventType": ["view"] * 2,
                            "Timestamp": [T0] * 2,
                            "Session.Id": ["s1", "s1"],
                            "Session.StartTimestamp": [T0] * 2,
                            "Session.Duration": pa.array([1500, 2**64 - 1], pa.uint64()),
                        }
                    )
                ),
            )
        },
        {
            "rejected": {"session_duration_uint64_max.parquet row 2": ["Session.Duration", "2**53"]},
            "accepted_rows": 1,
        },
    )
    case(
        "metric_far_timestamp",
        {
            "events": (
                "metric_far_timestamp.parquet",
                _parquet(
                    pa.table(
                        {
                            "EndpointId": ["a", "a"],
                            "EventId": ["e1", "e2"],
                            "EventType": ["view"] * 2,
                            "Timestamp": [T0] * 2,
                            "Metrics.price": pa.array([None, 10**18], pa.timestamp("us")),
                        }
                    )
                ),
            )
        },
        {
            "rejected": {"metric_far_timestamp.parquet row 2": ["Metrics.price", "0001 to 9999", "not a number"]},
            "accepted_rows": 1,
        },
    )
    case(
        "timestamp_far_parquet",
        {
            "events": (
                "timestamp_far_parquet.parquet",
                _parquet(
                    pa.table(
                        {
                            "EndpointId": ["a", "a"],
                            "EventId": ["e1", "e2"],
                            "EventType": ["view"] * 2,
                            "Timestamp": pa.array([1_767_225_600_000, 10**16], pa.timestamp("ms")),
                        }
                    )
                ),
            )
        },
        {
            "rejected": {"timestamp_far_parquet.parquet row 2": ["Timestamp", "0001 to 9999"]},
            "accepted_rows": 1,
            "sent_events": {"a/e1": {"Timestamp": "2026-01-01T00:00:00.000Z"}},
        },
    )
    case(
        "timestamp_int96_beyond_nanoseconds",
        {
            "events": (
                "timestamp_int96_beyond_nanoseconds.parquet",
                _parquet_int96(
                    pa.table(
                        {
                            "EndpointId": ["a", "a"],
                            "EventId": ["e1", "e2"],
                            "EventType": ["view"] * 2,
                            "Timestamp": pa.array(
                                [datetime.datetime(2026, 1, 1), datetime.datetime(2500, 1, 1)], pa.timestamp("ms")
                            ),
                        }
                    )
                ),
            )
        },
        {
            "rejected": {},
            "accepted_rows": 2,
            "sent_events": {
                "a/e1": {"Timestamp": "2026-01-01T00:00:00.000Z"},
                "a/e2": {"Timestamp": "2500-01-01T00:00:00.000Z"},
            },
        },
    )
    case(
        "metric_nan_beside_text",
        {
            "events": (
                "metric_nan_beside_text.csv",
                _csv([EVENTS_HEADER, _good_event("a", "e1", price="NaN"), _good_event("a", "e2", price="cheap")]),
            )
        },
        {
            "rejected": {"metric_nan_beside_text.csv row 2": ["Metrics.price", "'cheap'", "not a number"]},
            "accepted_rows": 1,
            "sent_events": {"a/e1": {"Metrics": None}},
        },
    )

    # Strings: empty, huge, unicode.
    case(
        "empty_strings",
        {
            "events": (
                "empty_strings.csv",
                _csv([EVENTS_HEADER, f"a,e1,,{T0},red,1", f",e2,view,{T0},red,1", f"a,e3,view,{T0},,"]),
            )
        },
        {
            "rejected": {
                "empty_strings.csv row 1": ["EventType", "is empty"],
                "empty_strings.csv row 2": ["EndpointId", "is empty"],
            },
            "accepted_rows": 1,
            "sent_events": {"a/e3": {"Attributes": None, "Metrics": None, "EventType": "view"}},
        },
    )
    huge = "".join(rng.choice("abcdefghij") for _ in range(100_000))
    case(
        "huge_strings",
        {"events": ("huge_strings.csv", _csv([EVENTS_HEADER, _good_event("a", "e1", huge), _good_event("a", "e2")]))},
        {"rejected": {"huge_strings.csv row 1": ["Attributes.color", "100000 characters", "200"]}, "accepted_rows": 1},
    )
    case(
        "unicode_emoji",
        {
            "events": (
                "unicode_emoji.csv",
                _csv(
                    [
                        EVENTS_HEADER + ",Attributes.städte🌍",
                        f"ユーザー😀,ev-✓,view,{T0},café 🎉,1,Zürich",
                        f"مستخدم,ev-2,view,{T0},e\u0301,1,",
                    ]
                ),
            )
        },
        {
            "rejected": {},
            "accepted_rows": 2,
            "sent_events": {
                "ユーザー😀/ev-✓": {"Attributes": {"color": "café 🎉", "städte🌍": "Zürich"}},
                "مستخدم/ev-2": {"Attributes": {"color": "e\u0301"}},
            },
        },
    )
    case(
        "attribute_names_special",
        {
            "events": (
                "attribute_names_special.csv",
                _csv(
                    [
                        "EndpointId,EventId,EventType,Timestamp,Attributes.a#b,Attributes.a:b,Attributes.a?b,"
                        "Attributes.a\\b,Attributes.a/b",
                        f"a,e1,view,{T0},1,2,3,4,5",
                    ]
                ),
            )
        },
        {
            "rejected": {},
            "accepted_rows": 1,
            "sent_events": {"a/e1": {"Attributes": {"a#b": "1", "a:b": "2", "a?b": "3", "a\\b": "4", "a/b": "5"}}},
        },
    )

    # Endpoint ids.
    case(
        "endpoint_id_forbidden_characters",
        {
            "endpoints": (
                "endpoint_id_forbidden_characters.endpoints.csv",
                _csv(["Id,ChannelType", "ok-1,CUSTOM", "a$b,CUSTOM", "a{b,CUSTOM", "a}b,CUSTOM"]),
            ),
            "events": (
                "endpoint_id_forbidden_characters.events.csv",
                _csv([EVENTS_HEADER, _good_event("ok-1", "e1"), _good_event("${x}", "e2")]),
            ),
        },
        {
            "rejected": {
                "endpoint_id_forbidden_characters.endpoints.csv row 2": ["Id", "'a$b'", "may not contain"],
                "endpoint_id_forbidden_characters.endpoints.csv row 3": ["Id", "'a{b'", "may not contain"],
                "endpoint_id_forbidden_characters.endpoints.csv row 4": ["Id", "'a}b'", "may not contain"],
                "endpoint_id_forbidden_characters.events.csv row 2": ["EndpointId", "'${x}'", "may not contain"],
            },
            "accepted_rows": 2,
        },
    )
    case(
        "endpoint_id_case_collision",
        {
            "endpoints": (
                "endpoint_id_case_collision.endpoints.csv",
                _csv(["Id,ChannelType", "User-1,CUSTOM", "user-1,CUSTOM"]),
            ),
            "events": (
                "endpoint_id_case_collision.events.csv",
                _csv([EVENTS_HEADER, _good_event("User-1", "e1"), _good_event("USER-1", "e2")]),
            ),
        },
        {
            "rejected": {
                "endpoint_id_case_collision.endpoints.csv row 2": ["Id", "'user-1'", "case"],
                "endpoint_id_case_collision.events.csv row 2": [
                    "EndpointId",
                    "'USER-1'",
                    "case",
                    "endpoint_id_case_collision.endpoints.csv row 1",
                ],
            },
            "accepted_rows": 2,
        },
    )
    case(
        "duplicate_event_ids",
        {
            "events": (
                "duplicate_event_ids.csv",
                _csv([EVENTS_HEADER, _good_event("a", "e1"), _good_event("a", "e1", "blue"), _good_event("b", "e1")]),
            )
        },
        {"rejected": {"duplicate_event_ids.csv row 2": ["EventId", "'e1'", "row 1", "unique"]}, "accepted_rows": 2},
    )

    # Event quotas.
    keys = [f"Attributes.k{i:02d}" for i in range(41)]
    case(
        "event_41_keys",
        {
            "events": (
                "event_41_keys.csv",
                _csv(
                    [
                        "EndpointId,EventId,EventType,Timestamp," + ",".join(keys),
                        f"a,e1,view,{T0}," + ",".join(["v"] * 41),
                        f"a,e2,view,{T0}," + ",".join(["v"] * 40) + ",",
                    ]
                ),
            )
        },
        {"rejected": {"event_41_keys.csv row 1": ["Attributes/Metrics", "41 keys", "40"]}, "accepted_rows": 1},
    )
    case(
        "event_attribute_201_characters",
        {
            "events": (
                "event_attribute_201_characters.csv",
                _csv([EVENTS_HEADER, _good_event("a", "e1", "x" * 201), _good_event("a", "e2", "x" * 200)]),
            )
        },
        {
            "rejected": {"event_attribute_201_characters.csv row 1": ["Attributes.color", "201 characters", "200"]},
            "accepted_rows": 1,
        },
    )
    case(
        "event_attribute_name_51_characters",
        {
            "events": (
                "event_attribute_name_51_characters.csv",
                _csv([f"EndpointId,EventId,EventType,Timestamp,Attributes.{'n' * 51}", f"a,e1,view,{T0},v"]),
            )
        },
        {
            "rejected": {"event_attribute_name_51_characters.csv row 1": ["Attributes.nnn", "51-character name", "50"]},
            "accepted_rows": 0,
        },
    )

    # Endpoint quotas.
    case(
        "endpoint_attribute_51_values",
        {
            "endpoints": (
                "endpoint_attribute_51_values.parquet",
                _parquet(
                    pa.table(
                        {
                            "Id": ["a", "b"],
                            "ChannelType": ["CUSTOM", "CUSTOM"],
                            "Attributes.tags": [[f"v{i}" for i in range(51)], [f"v{i}" for i in range(50)]],
                        }
                    )
                ),
            )
        },
        {
            "rejected": {"endpoint_attribute_51_values.parquet row 1": ["Attributes.tags", "51 values", "50"]},
            "accepted_rows": 1,
        },
    )
    case(
        "endpoint_attribute_51_values_csv_repeated_header",
        {
            "endpoints": (
                "endpoint_attribute_51_values_csv_repeated_header.csv",
                _csv(
                    [
                        "Id,ChannelType," + ",".join(["Attributes.tags"] * 51),
                        "a,CUSTOM," + ",".join(f"v{i}" for i in range(51)),
                        "b,CUSTOM," + ",".join(f"v{i}" for i in range(50)) + ",",
                    ]
                ),
            )
        },
        {
            "rejected": {
                "endpoint_attribute_51_values_csv_repeated_header.csv row 1": ["Attributes.tags", "51 values", "50"]
            },
            "accepted_rows": 1,
        },
    )
    case(
        "endpoint_attribute_value_101_characters",
        {
            "endpoints": (
                "endpoint_attribute_value_101_characters.csv",
                _csv(["Id,ChannelType,User.UserAttributes.bio", f"a,CUSTOM,{'b' * 101}", f"b,CUSTOM,{'b' * 100}"]),
            )
        },
        {
            "rejected": {
                "endpoint_attribute_value_101_characters.csv row 1": [
                    "User.UserAttributes.bio",
                    "101 characters",
                    "100",
                ]
            },
            "accepted_rows": 1,
        },
    )
    wide = {"Id": ["big", "small"], "ChannelType": ["CUSTOM", "CUSTOM"]}
    for k in range(4):
        wide[f"Attributes.a{k}"] = [[f"{j:03d}" + "x" * 97 for j in range(50)], ["y"]]
    case(
        "endpoint_over_15kb",
        {"endpoints": ("endpoint_over_15kb.parquet", _parquet(pa.table(wide)))},
        {"rejected": {"endpoint_over_15kb.parquet row 1": ["(whole row)", "bytes", "15,360"]}, "accepted_rows": 1},
    )
    case(
        "user_16_endpoints",
        {
            "endpoints": (
                "user_16_endpoints.csv",
                _csv(
                    [
                        "Id,ChannelType,User.UserId",
                        *(f"ep-{i:02d},EMAIL,user-1" for i in range(16)),
                        "other,EMAIL,user-2",
                    ]
                ),
            )
        },
        {"rejected": {"user_16_endpoints.csv row 16": ["User.UserId", "15 endpoints", "EMAIL"]}, "accepted_rows": 16},
    )
    case(
        "invalid_enums",
        {
            "endpoints": (
                "invalid_enums.csv",
                _csv(
                    [
                        "Id,ChannelType,EndpointStatus,OptOut",
                        "a,FAX,,",
                        "b,EMAIL,DELETED,",
                        "c,SMS,,SOME",
                        "d,email,,",
                        "e,SMS,ACTIVE,NONE",
                    ]
                ),
            )
        },
        {
            "rejected": {
                "invalid_enums.csv row 1": ["ChannelType", "'FAX'", "EMAIL"],
                "invalid_enums.csv row 2": ["EndpointStatus", "'DELETED'", "ACTIVE, INACTIVE"],
                "invalid_enums.csv row 3": ["OptOut", "'SOME'", "ALL, NONE"],
                "invalid_enums.csv row 4": ["ChannelType", "'email'"],
            },
            "accepted_rows": 1,
        },
    )
    case(
        "lat_long_out_of_range",
        {
            "endpoints": (
                "lat_long_out_of_range.csv",
                _csv(
                    [
                        "Id,ChannelType,Location.Latitude,Location.Longitude",
                        "a,CUSTOM,91,0",
                        "b,CUSTOM,0,-181",
                        "c,CUSTOM,90,180",
                        "d,CUSTOM,-90.0,-180.0",
                        "e,CUSTOM,north,0",
                    ]
                ),
            )
        },
        {
            "rejected": {
                "lat_long_out_of_range.csv row 1": ["Location.Latitude", "91", "-90 and 90"],
                "lat_long_out_of_range.csv row 2": ["Location.Longitude", "-181", "-180 and 180"],
                "lat_long_out_of_range.csv row 5": ["Location.Latitude", "'north'", "not a number"],
            },
            "accepted_rows": 2,
            "sent_endpoints": {"c": {"Location": {"Latitude": 90, "Longitude": 180}}},
        },
    )
    case(
        "invalid_locale_country_timezone",
        {
            "endpoints": (
                "invalid_locale_country_timezone.csv",
                _csv(
                    [
                        "Id,ChannelType,Demographic.Locale,Location.Country,Demographic.Timezone",
                        "a,CUSTOM,english,,",
                        "b,CUSTOM,,USA,",
                        "c,CUSTOM,,,Mars/Olympus",
                        "d,CUSTOM,en_US,US,America/New_York",
                    ]
                ),
            )
        },
        {
            "rejected": {
                "invalid_locale_country_timezone.csv row 1": ["Demographic.Locale", "'english'", "ll_CC"],
                "invalid_locale_country_timezone.csv row 2": ["Location.Country", "'USA'", "ISO 3166-1"],
                "invalid_locale_country_timezone.csv row 3": ["Demographic.Timezone", "'Mars/Olympus'", "tz database"],
            },
            "accepted_rows": 1,
        },
    )

    # JSON Lines.
    def event_line(endpoint: str, event: str, **fields: object) -> str:
        return json.dumps({"EndpointId": endpoint, "EventId": event, "EventType": "view", "Timestamp": T0, **fields})

    case(
        "jsonl_not_json",
        {
            "events": (
                "jsonl_not_json.jsonl",
                _csv([event_line("a", "e1"), event_line("a", "e2"), '{"EndpointId": "a", "EventId": "e3",']),
            )
        },
        {"fatal": ["jsonl_not_json.jsonl", "line 3", "not valid JSON"]},
    )
    case(
        "jsonl_not_an_object",
        {"events": ("jsonl_not_an_object.jsonl", _csv([event_line("a", "e1"), '["a", "e2", "view"]']))},
        {"fatal": ["jsonl_not_an_object.jsonl", "line 2", "array"]},
    )
    case(
        "jsonl_field_changes_type",
        {
            "events": (
                "jsonl_field_changes_type.jsonl",
                _csv([event_line("a", "e1", Metrics={"price": 1}), event_line("a", "e2", Metrics={"price": "2"})]),
            )
        },
        {"fatal": ["jsonl_field_changes_type.jsonl", "line 2", "Metrics.price", "one JSON type"]},
    )
    case(
        "jsonl_gzip_corrupt",
        {
            "events": (
                "jsonl_gzip_corrupt.jsonl.gz",
                _bytes(gzip.compress((event_line("a", "e1") + "\n").encode(), mtime=0)[:-12]),
            )
        },
        {"fatal": ["jsonl_gzip_corrupt.jsonl.gz", "JSON Lines"]},
    )
    case(
        "jsonl_bad_rows",
        {
            "events": (
                "jsonl_bad_rows.jsonl",
                _csv(
                    [
                        event_line("a", "e1", Attributes={"color": "red"}, Metrics={"price": 1.5}),
                        "",  # blank lines are no rows: the next object is row 2
                        event_line("a", "e2", EventType=""),
                        event_line("a", "e3", Attributes={"color": "x" * 201}),
                        event_line("a", "e4"),
                    ]
                ),
            )
        },
        {
            "rejected": {
                "jsonl_bad_rows.jsonl row 2": ["EventType", "empty"],
                "jsonl_bad_rows.jsonl row 3": ["Attributes.color", "200"],
            },
            "accepted_rows": 2,
            "sent_events": {"a/e1": {"Attributes": {"color": "red"}, "Metrics": {"price": 1.5}}},
        },
    )
    return out


def write(directory: Path = HERE) -> list[dict]:
    """Write every case's files and ``cases.json`` into ``directory``; return the manifest."""
    rng = random.Random(SEED)
    manifest = []
    for entry, writers in cases(rng):
        for file_name, writer in writers.items():
            writer(directory / file_name)
        manifest.append(entry)
    (directory / "cases.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


if __name__ == "__main__":
    print(f"wrote {len(write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))} cases")

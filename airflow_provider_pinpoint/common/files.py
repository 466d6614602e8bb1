"""File formats by name: the suffixes that pick how a table is read or written."""

from __future__ import annotations

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")

# The name endings the loader reads, for messages about inputs named otherwise.
TABLE_NAMES = ".parquet, .pq, .csv, .csv.gz, .jsonl, .ndjson, .jsonl.gz or .ndjson.gz"


def is_parquet(path: str) -> bool:
    """Whether the name says Parquet (any case)."""
    return path.lower().endswith(PARQUET_SUFFIXES)


def is_csv(path: str) -> bool:
    """Whether the name says CSV, plain or gzipped (any case)."""
    return path.lower().endswith(CSV_SUFFIXES)


def is_json_lines(path: str) -> bool:
    """Whether the name says JSON Lines (``.jsonl`` or ``.ndjson``), plain or gzipped (any case)."""
    return path.lower().endswith(JSON_LINES_SUFFIXES)


def is_table(path: str) -> bool:
    """Whether the name is one of the table formats the loader reads."""
    return is_parquet(path) or is_csv(path) or is_json_lines(path)

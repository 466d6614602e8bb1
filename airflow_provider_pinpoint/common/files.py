"""File formats by name: the suffixes that pick how a table is read or written."""

from __future__ import annotations

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz")


def is_parquet(path: str) -> bool:
    return path.lower().endswith(PARQUET_SUFFIXES)


def is_csv(path: str) -> bool:
    return path.lower().endswith(CSV_SUFFIXES)

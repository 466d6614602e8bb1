"""File formats by name: the suffixes that pick how a table is read or written."""

from __future__ import annotations

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz")


def is_parquet(path: str) -> bool:
    """Whether the name says Parquet (any case)."""
    return path.lower().endswith(PARQUET_SUFFIXES)


def is_csv(path: str) -> bool:
    """Whether the name says CSV, plain or gzipped (any case)."""
    return path.lower().endswith(CSV_SUFFIXES)


def is_table(path: str) -> bool:
    """Whether the name is one of the table formats the loader reads."""
    return is_parquet(path) or is_csv(path)

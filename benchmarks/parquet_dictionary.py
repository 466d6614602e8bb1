"""CPU of reading Parquet text columns through their dictionaries against the plain read.

Two parts, each timed with the process's CPU clock (Arrow's threads included), old and new
alternately in one process so that both see the same neighbours:

1. ``rule``: one column of 1,000,000 strings of 11 bytes with 10 to 1,000,000 distinct values, a
   column that falls back to plain pages half way and a 90% null one, read plain and as a
   dictionary cast back to strings, with the footer's uncompressed bytes per non-null value that
   ``parquet_dictionary.MAX_BYTES_PER_VALUE`` is compared with;
2. ``--file``: the loader's reader (``read_table``, as the endpoints flow calls it) on a file, with
   and without the dictionary read.

Usage: ``python benchmarks/parquet_dictionary.py [--file day2.parquet] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import time
from collections.abc import Callable
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_pinpoint.prepare.read import parquet as parquet_module
from airflow_provider_pinpoint.prepare.read import read_table

ROWS = 1_000_000


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def column(kind: str) -> pa.Array:
    if kind == "half":
        return pa.array([f"v-{i % 100:09d}" if i < ROWS // 2 else f"i-{i:09d}" for i in range(ROWS)])
    if kind == "nulls90":
        return pa.array([None if i % 10 else f"i-{i:09d}" for i in range(ROWS)])
    distinct = int(kind)
    return pa.array([f"v-{(i * 7919) % distinct:09d}" for i in range(ROWS)])


def read_column(data: bytes, dictionary: bool) -> float:
    parquet = pq.ParquetFile(pa.BufferReader(data), read_dictionary=[0] if dictionary else None)
    start = cpu()
    for batch in parquet.iter_batches(batch_size=65_536):
        if dictionary:
            batch.column(0).cast(pa.string())
    return cpu() - start


def rule(repeat: int) -> None:
    print("distinct values | bytes a non-null value | plain s | dictionary + cast s | ratio (best of each)")
    for kind in ("10", "100", "10000", "30000", "60000", "75000", "100000", "1000000", "half", "nulls90"):
        out = io.BytesIO()
        pq.write_table(pa.table({"c": column(kind)}), out)
        data = out.getvalue()
        chunk = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0).column(0)
        per_value = chunk.total_uncompressed_size / (chunk.num_values - chunk.statistics.null_count)
        plain, dictionary = [], []
        for _ in range(repeat):
            plain.append(read_column(data, False))
            dictionary.append(read_column(data, True))
        print(
            f"{kind:>15} | {per_value:22.2f} | {min(plain):7.3f} | {min(dictionary):19.3f} | "
            f"{min(dictionary) / min(plain):.2f}",
            flush=True,
        )


def reader(path: str, repeat: int) -> None:
    def plain() -> None:
        with mock.patch.object(parquet_module, "dictionary_leaves", lambda parquet, names: {}):
            read_table(path, kind="endpoints")

    def dictionary() -> None:
        read_table(path, kind="endpoints")

    runs: dict[str, list[float]] = {"plain": [], "dictionary": []}
    steps: list[tuple[str, Callable[[], None]]] = [("plain", plain), ("dictionary", dictionary)]
    dictionary()  # imports and first-touch allocations out of the figures
    for _ in range(repeat):
        for name, step in steps:
            start = cpu()
            step()
            runs[name].append(cpu() - start)
    print(f"read_table on {os.path.basename(path)}, CPU s (load average {os.getloadavg()[0]:.2f}):")
    for name, figures in runs.items():
        print(f"  {name:10} " + " ".join(f"{figure:.3f}" for figure in figures) + f"  median {_median(figures):.3f}")


def _median(figures: list[float]) -> float:
    ordered = sorted(figures)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", help="a Parquet endpoints file to read with the loader's reader")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-rule", action="store_true", help="only the --file part")
    args = parser.parse_args()
    started = time.monotonic()
    if not args.skip_rule:
        rule(args.repeat)
    if args.file:
        reader(args.file, args.repeat)
    print(f"({time.monotonic() - started:.0f} s wall)")


if __name__ == "__main__":
    main()

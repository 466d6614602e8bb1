"""In-memory inputs: a pandas DataFrame or a pyarrow Table, sliced into batches in the convention."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from airflow_provider_pinpoint.common.text import first_line
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.prepare.read.column_plan import ReadOptions, plan


def is_dataframe(source: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas for path inputs."""
    return type(source).__name__ == "DataFrame" and type(source).__module__.startswith("pandas")


def read_in_memory(source: Any, options: ReadOptions) -> Iterator[pa.RecordBatch]:
    """The rows of a DataFrame (a named index becomes columns) or Arrow table; ``_source`` is the kind."""
    if isinstance(source, pa.Table):
        table = source
    else:
        try:
            named_index = any(name is not None for name in source.index.names)
            table = pa.Table.from_pandas(source.reset_index() if named_index else source, preserve_index=False)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise InputError(f"DataFrame ({options.kind}): cannot convert to Arrow ({first_line(exc, 160)})") from None
    names = [str(name) for name in table.column_names]
    where = f"DataFrame ({options.kind})"
    columns = plan(names, list(range(len(names))), options, where=where, source=options.kind, csv=False)
    row = 0
    for batch in table.to_batches(max_chunksize=options.batch_rows):
        yield columns.apply(batch, where, row)
        row += batch.num_rows

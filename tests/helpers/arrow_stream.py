"""A stand-in for a polars DataFrame, without polars: it exports its rows only through ``__arrow_c_stream__``."""

from __future__ import annotations

import pyarrow as pa


class DataFrame:
    """Hands out a new Arrow C stream of ``table`` on each call, counting the calls."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self.streams = 0

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        self.streams += 1
        return self._table.__arrow_c_stream__(requested_schema)

"""What counts as a path object, and how a location is written for people, summaries and lineage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
from upath import UPath

from airflow_provider_pinpoint.common.locations import is_object_path, location_text


def test_strings_paths_and_tables_are_not_path_objects():
    frame = pd.DataFrame({"fs": [1], "protocol": ["s3"], "path": ["x"]})  # columns named like the attributes
    for value in ("s3://bucket/key", Path("out/r.parquet"), frame, pa.table({"a": [1]})):
        assert not is_object_path(value)
    assert is_object_path(UPath("memory://bucket/r.parquet")) and is_object_path(UPath("/tmp/r.parquet"))


def test_a_location_reads_as_given_and_a_local_path_object_as_a_plain_path():
    assert location_text("out/results.parquet") == "out/results.parquet"
    assert location_text(Path("out/results.parquet")) == "out/results.parquet"
    assert location_text(UPath("memory://bucket/out/r.parquet")) == "memory://bucket/out/r.parquet"
    assert location_text(UPath("https://example.com/a/x.parquet")) == "https://example.com/a/x.parquet"
    assert location_text(UPath("file:///srv/out/r.parquet")) == "/srv/out/r.parquet"

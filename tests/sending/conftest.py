"""Fixtures for the sending tests."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sending_items import emulator_client

from airflow_provider_pinpoint.results import ResultsWriter


@pytest.fixture
def pinpoint(emulator):
    """A boto3 Pinpoint client pointed at the (reset) session emulator, botocore retries off."""
    return emulator_client(emulator.url)


@pytest.fixture
def journal(monkeypatch) -> list[pa.RecordBatch]:
    """Every batch of results rows written during the test, before compaction merges them."""
    written: list[pa.RecordBatch] = []
    add = ResultsWriter.add

    def recording(self, batch: pa.RecordBatch) -> None:
        written.append(batch)
        add(self, batch)

    monkeypatch.setattr(ResultsWriter, "add", recording)
    return written

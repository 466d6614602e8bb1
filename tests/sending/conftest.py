"""Fixtures for the sending tests."""

from __future__ import annotations

import pytest
from sending_items import emulator_client


@pytest.fixture
def pinpoint(emulator):
    """A boto3 Pinpoint client pointed at the (reset) session emulator, botocore retries off."""
    return emulator_client(emulator.url)

"""The boto3 client every emulator test talks through."""

from __future__ import annotations

import pytest

from tests.helpers.wire import pinpoint_client


@pytest.fixture
def pinpoint(emulator):
    return pinpoint_client(emulator.url)

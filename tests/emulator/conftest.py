"""The boto3 clients every emulator test talks through: Pinpoint, Kinesis and Firehose."""

from __future__ import annotations

import pytest

from tests.helpers.streams import stream_client
from tests.helpers.wire import pinpoint_client


@pytest.fixture
def pinpoint(emulator):
    return pinpoint_client(emulator.url)


@pytest.fixture
def kinesis(emulator):
    """boto3's Kinesis client at the (reset) session emulator, botocore retries off."""
    return stream_client("kinesis", emulator.url)


@pytest.fixture
def firehose(emulator):
    """boto3's Firehose client at the (reset) session emulator, botocore retries off."""
    return stream_client("firehose", emulator.url)

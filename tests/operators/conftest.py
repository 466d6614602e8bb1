"""Fixtures the stream sinks' operator tests share."""

from __future__ import annotations

from collections.abc import Callable

import pytest

# The shared checks assert: rewrite them so a failure shows the values, as in a test module.
pytest.register_assert_rewrite("tests.helpers.operator_tasks")


@pytest.fixture
def moto_conn_id(aws_connection: Callable[..., str], moto_server: str) -> str:
    """A connection id whose ``endpoint_url`` is moto's server."""
    return aws_connection("moto_test", endpoint_url=moto_server, region_name="us-east-1")

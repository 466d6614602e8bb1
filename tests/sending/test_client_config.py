"""botocore must make exactly one attempt per call: the loader's retries are the only ones."""

from __future__ import annotations

import logging

import boto3
from botocore.config import Config

from airflow_provider_pinpoint.sending.client import client_config, fitting_in_flight, make_client


def _client(config: Config | None = None):
    return boto3.client(
        "pinpoint",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def test_clients_the_loader_makes_try_each_call_once():
    assert _client(client_config(max_in_flight=8)).meta.config.retries["total_max_attempts"] == 1


def test_a_client_configured_as_the_warning_advises_gets_no_warning(caplog):
    client = _client(Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    with caplog.at_level(logging.WARNING):
        assert make_client(client, None, None, None, 8) is client
    assert not [r for r in caplog.records if "retries requests itself" in r.getMessage()]


def test_a_client_with_botocore_retries_is_warned_about(caplog):
    # botocore reads max_attempts as retries after the first call: 1 means two attempts.
    client = _client(Config(retries={"max_attempts": 1, "mode": "standard"}))
    with caplog.at_level(logging.WARNING):
        make_client(client, None, None, None, 8)
    assert [r for r in caplog.records if "retries requests itself (2 attempts)" in r.getMessage()]


def test_clients_the_loader_makes_keep_a_connection_for_each_request_in_flight():
    assert _client(client_config(max_in_flight=24)).meta.config.max_pool_connections == 24
    assert _client(client_config(max_in_flight=4)).meta.config.max_pool_connections == 10


def test_a_client_with_a_smaller_pool_sends_as_many_at_once_as_it_has_connections(caplog):
    client = _client(Config(max_pool_connections=4))
    with caplog.at_level(logging.INFO):
        assert fitting_in_flight(client, 16) == 4
        assert fitting_in_flight(_client(Config(max_pool_connections=32)), 16) == 16
    [record] = [r for r in caplog.records if "max_in_flight" in r.getMessage()]
    assert "Config(max_pool_connections=16)" in record.getMessage()

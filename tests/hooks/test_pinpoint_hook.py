"""PinpointHook: the standard aws connection, and a client that leaves retrying to the loader."""

from __future__ import annotations

import pytest

from airflow_provider_pinpoint.hooks.pinpoint import PinpointHook

pytestmark = pytest.mark.airflow


def test_endpoint_url_and_region_come_from_the_connection(aws_connection):
    aws_connection(endpoint_url="http://127.0.0.1:4599", region_name="eu-west-1")
    client = PinpointHook(aws_conn_id="pp").conn
    assert client.meta.service_model.service_name == "pinpoint"
    assert client.meta.endpoint_url == "http://127.0.0.1:4599"
    assert client.meta.region_name == "eu-west-1"


def test_a_pinpoint_service_config_endpoint_wins_over_the_default(aws_connection):
    extra = {"region_name": "us-east-1", "service_config": {"pinpoint": {"endpoint_url": "http://127.0.0.1:4600"}}}
    aws_connection(**extra)
    assert PinpointHook(aws_conn_id="pp").conn.meta.endpoint_url == "http://127.0.0.1:4600"


def test_the_client_makes_one_attempt_per_call_by_default(aws_connection):
    aws_connection(region_name="us-east-1")
    assert PinpointHook(aws_conn_id="pp").conn.meta.config.retries["total_max_attempts"] == 1


def test_retries_in_the_connection_config_kwargs_are_respected(aws_connection):
    extra = {"region_name": "us-east-1", "config_kwargs": {"retries": {"total_max_attempts": 4, "mode": "adaptive"}}}
    aws_connection(**extra)
    retries = PinpointHook(aws_conn_id="pp").conn.meta.config.retries
    assert retries == {"total_max_attempts": 4, "mode": "adaptive"}


def test_retries_in_the_hook_config_are_respected(aws_connection):
    aws_connection(region_name="us-east-1")
    hook = PinpointHook(aws_conn_id="pp", config={"retries": {"total_max_attempts": 3}, "connect_timeout": 7})
    assert hook.conn.meta.config.retries["total_max_attempts"] == 3
    assert hook.conn.meta.config.connect_timeout == 7


def test_other_botocore_settings_of_the_connection_are_kept(aws_connection):
    extra = {"region_name": "us-east-1", "config_kwargs": {"read_timeout": 11}}
    aws_connection(**extra)
    config = PinpointHook(aws_conn_id="pp").conn.meta.config
    assert config.read_timeout == 11
    assert config.retries["total_max_attempts"] == 1


def test_put_events_sends_one_request(emulator, emulator_conn_id):
    batch_item = {
        "ep-1": {
            "Endpoint": {"ChannelType": "CUSTOM", "Address": "device-1"},
            "Events": {"ev-1": {"EventType": "signup", "Timestamp": "2026-11-24T10:00:00.000Z"}},
        }
    }
    response = PinpointHook(aws_conn_id=emulator_conn_id).put_events(application_id="app-1", batch_item=batch_item)
    assert response["Results"]["ep-1"]["EventsItemResponse"]["ev-1"]["StatusCode"] == 202
    assert [(e["endpoint_id"], e["event_id"]) for e in emulator.events("app-1")] == [("ep-1", "ev-1")]

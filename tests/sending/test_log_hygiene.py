"""botocore's DEBUG logs print signing material; the loader's own requests must not put it in a log."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from airflow_provider_pinpoint import load_events
from tests.helpers.items import APP

pytestmark = pytest.mark.integration

ACCESS_KEY = "AKIAHYGIENEMARKER000"
SESSION_TOKEN = "HygieneSessionTokenMarker"


@pytest.fixture
def fake_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "HygieneSecretMarker")
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)


def test_debug_logs_of_a_load_carry_no_signing_material(emulator, fake_credentials, caplog):
    events = pd.DataFrame({"EndpointId": ["e1"], "EventType": ["x"], "Timestamp": ["2026-01-01T00:00:00Z"]})
    with caplog.at_level(logging.DEBUG):
        for name in ("botocore", "urllib3"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        report = load_events(events, application_id=APP, endpoint_url=emulator.url, region_name="us-east-1")
    assert report.summary.accepted == 1
    assert any(r.name.startswith("botocore") and r.levelno == logging.DEBUG for r in caplog.records)
    for marker in (ACCESS_KEY, SESSION_TOKEN, "HygieneSecretMarker"):
        assert marker not in caplog.text


def test_other_botocore_users_in_the_process_keep_their_debug_logs(emulator, fake_credentials, caplog):
    import boto3

    client = boto3.client("pinpoint", endpoint_url=emulator.url, region_name="us-east-1")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("botocore").setLevel(logging.NOTSET)
        client.put_events(ApplicationId=APP, EventsRequest={"BatchItem": {}})
    assert any(r.name == "botocore.auth" for r in caplog.records)

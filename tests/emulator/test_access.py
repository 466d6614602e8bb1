"""Credentials and applications: 403 and 404, which a loader must treat as final."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_pinpoint.emulator import run_emulator
from tests.helpers.wire import APP, pinpoint_client, post_raw


def test_request_without_authorization_is_forbidden(emulator):
    response = post_raw(emulator.url, APP, b'{"BatchItem": {}}', authorization=None)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert response.json()["RequestID"] == response.headers["x-amzn-RequestId"]


def test_access_key_other_than_the_declared_one_is_forbidden():
    with run_emulator(access_key="right-key") as emu:
        wrong = pinpoint_client(emu.url, access_key="wrong-key")
        with pytest.raises(wrong.exceptions.ForbiddenException, match="security token"):
            wrong.put_events(ApplicationId=APP, EventsRequest={"BatchItem": {}})
        right = pinpoint_client(emu.url, access_key="right-key")
        assert right.put_events(ApplicationId=APP, EventsRequest={"BatchItem": {}})["EventsResponse"] == {"Results": {}}


def test_unknown_application_is_not_found_when_apps_are_declared():
    with run_emulator(apps=["known"]) as emu:
        client = pinpoint_client(emu.url)
        with pytest.raises(client.exceptions.NotFoundException, match="Application unknown not found"):
            client.put_events(ApplicationId="unknown", EventsRequest={"BatchItem": {}})
        assert client.put_events(ApplicationId="known", EventsRequest={"BatchItem": {}})


def test_wrong_method_is_method_not_allowed(emulator):
    answer = requests.get(f"{emulator.url}/v1/apps/{APP}/events", timeout=10)
    assert answer.status_code == 405
    assert answer.headers["x-amzn-ErrorType"] == "MethodNotAllowedException"

"""What a web page in the user's browser cannot do: reach the emulator through DNS rebinding (a
Host that is not a loopback name) or change its state with a cross-origin form or text POST."""

from __future__ import annotations

import json

import pytest

from airflow_provider_pinpoint.emulator.faults import Settings
from airflow_provider_pinpoint.emulator.runner import ServerThread
from airflow_provider_pinpoint.emulator.service import Emulator
from airflow_provider_pinpoint.emulator.store import open_store
from tests.helpers.wire import APP, event, exchange

_SIGNED = "AWS4-HMAC-SHA256 Credential=testing/x"


def _put_events_body() -> bytes:
    return json.dumps({"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}).encode()


def test_inspection_call_naming_another_host_is_misdirected(emulator):
    status, body = exchange(emulator.url, "GET", "/_emulator/stats", headers={"Host": "attacker.example:4566"})
    assert status == 421
    assert "--allow-remote" in json.loads(body)["Message"]


def test_put_events_naming_another_host_is_misdirected_and_not_recorded(emulator):
    headers = {"Host": "attacker.example", "Content-Type": "application/json", "Authorization": _SIGNED}
    status, _ = exchange(emulator.url, "POST", f"/v1/apps/{APP}/events", _put_events_body(), headers)
    assert status == 421
    assert emulator.events(APP) == []


@pytest.mark.parametrize(
    "host", ["localhost", "LocalHost:4566", "127.0.0.1", "127.1.2.3:80", "[::1]", "[::1]:4566", "127.0.0.1:"]
)
def test_loopback_host_names_are_served(emulator, host):
    status, _ = exchange(emulator.url, "GET", "/_emulator/stats", headers={"Host": host})
    assert status == 200


@pytest.mark.parametrize("host", ["localhost.attacker.example", "127.0.0.1.nip.io", "[::1", "localhost:x", ""])
def test_names_that_only_look_like_loopback_are_misdirected(emulator, host):
    status, _ = exchange(emulator.url, "GET", "/_emulator/stats", headers={"Host": host})
    assert status == 421


def test_allow_remote_serves_any_host():
    thread = ServerThread(Emulator(open_store(None), Settings(), allow_remote=True))
    url = thread.start_serving()
    try:
        status, _ = exchange(url, "GET", "/_emulator/stats", headers={"Host": "emulator.lan:4566"})
    finally:
        thread.stop()
    assert status == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_configuration_change_that_is_not_json_is_refused(emulator, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    status, _ = exchange(emulator.url, "POST", "/_emulator/config", b'{"error_rate": 1}', headers)
    assert status == 415
    assert emulator.config()["error_rate"] == 0.0


def test_reset_that_is_not_json_is_refused(emulator, pinpoint):
    pinpoint.put_events(
        ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
    )
    status, _ = exchange(emulator.url, "POST", "/_emulator/reset", b"{}", {"Content-Type": "text/plain"})
    assert status == 415
    assert len(emulator.events(APP)) == 1


def test_json_configuration_change_with_a_charset_is_applied(emulator):
    headers = {"Content-Type": "application/json; charset=utf-8"}
    status, _ = exchange(emulator.url, "POST", "/_emulator/config", b'{"error_rate": 0.5}', headers)
    assert status == 200
    assert emulator.config()["error_rate"] == 0.5

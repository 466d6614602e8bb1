"""With a store path, a restarted emulator still has what it accepted."""

from __future__ import annotations

from airflow_provider_pinpoint.emulator import run_emulator
from tests.helpers.wire import APP, event, pinpoint_client


def test_restart_with_a_store_path_keeps_records_and_stats(tmp_path):
    store = tmp_path / "emulator.sqlite"
    request = {
        "BatchItem": {
            "ep-1": {"Endpoint": {"ChannelType": "SMS", "User": {"UserId": "u1"}}, "Events": {"ev-1": event()}}
        }
    }
    with run_emulator(store=store) as emu:
        pinpoint_client(emu.url).put_events(ApplicationId=APP, EventsRequest=request)
        before = (emu.events(APP), emu.endpoints(APP), emu.stats())
    with run_emulator(store=store) as emu:
        assert (emu.events(APP), emu.endpoints(APP), emu.stats()) == before
        pinpoint_client(emu.url).put_events(ApplicationId=APP, EventsRequest=request)
        assert emu.events(APP)[0]["receive_count"] == 2
        assert emu.stats()["events_duplicated"] == 1


def test_restart_keeps_per_application_quota_state(tmp_path):
    store = tmp_path / "emulator.sqlite"
    with run_emulator(store=store) as emu:
        client = pinpoint_client(emu.url)
        for i in range(15):
            endpoint = {"ChannelType": "SMS", "User": {"UserId": "u1"}}
            client.put_events(
                ApplicationId=APP, EventsRequest={"BatchItem": {f"ep-{i}": {"Endpoint": endpoint, "Events": {}}}}
            )
    with run_emulator(store=store) as emu:
        endpoint = {"ChannelType": "SMS", "User": {"UserId": "u1"}}
        response = pinpoint_client(emu.url).put_events(
            ApplicationId=APP, EventsRequest={"BatchItem": {"ep-16": {"Endpoint": endpoint, "Events": {}}}}
        )
        assert response["EventsResponse"]["Results"]["ep-16"]["EndpointItemResponse"]["StatusCode"] == 400


def test_reset_empties_the_store(tmp_path):
    store = tmp_path / "emulator.sqlite"
    with run_emulator(store=store) as emu:
        pinpoint_client(emu.url).put_events(
            ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
        )
        emu.reset()
    with run_emulator(store=store) as emu:
        assert emu.events(APP) == []
        assert emu.stats()["requests"] == 0


def test_without_a_store_path_nothing_survives():
    with run_emulator() as emu:
        pinpoint_client(emu.url).put_events(
            ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
        )
    with run_emulator() as emu:
        assert emu.events(APP) == []

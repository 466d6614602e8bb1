"""A valid batch is answered 202 item by item and recorded exactly as sent."""

from __future__ import annotations

from tests.helpers.wire import APP, event


def test_valid_batch_is_accepted_and_recorded_exactly(emulator, pinpoint):
    endpoint = {"ChannelType": "EMAIL", "Address": "someone@example.com", "Attributes": {"plan": ["gold"]}}
    events = {"ev-1": event("purchase", Metrics={"price": 9.5}), "ev-2": event("refund", Attributes={"why": "late"})}
    response = pinpoint.put_events(
        ApplicationId=APP,
        EventsRequest={
            "BatchItem": {
                "ep-1": {"Endpoint": endpoint, "Events": events},
                "ep-2": {"Endpoint": {}, "Events": {"ev-3": event()}},
            }
        },
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    results = response["EventsResponse"]["Results"]
    accepted = {"StatusCode": 202, "Message": "Accepted"}
    assert results["ep-1"] == {
        "EndpointItemResponse": accepted,
        "EventsItemResponse": {"ev-1": accepted, "ev-2": accepted},
    }
    assert results["ep-2"]["EventsItemResponse"] == {"ev-3": accepted}
    assert emulator.events(APP) == [
        {"endpoint_id": "ep-1", "event_id": "ev-1", "receive_count": 1, "event": events["ev-1"]},
        {"endpoint_id": "ep-1", "event_id": "ev-2", "receive_count": 1, "event": events["ev-2"]},
        {"endpoint_id": "ep-2", "event_id": "ev-3", "receive_count": 1, "event": event()},
    ]
    assert emulator.endpoints(APP) == {"ep-1": endpoint}


def test_every_answer_carries_a_request_id(pinpoint):
    response = pinpoint.put_events(ApplicationId=APP, EventsRequest={"BatchItem": {}})
    assert response["ResponseMetadata"]["RequestId"]


def test_resent_event_is_counted_as_a_duplicate(emulator, pinpoint):
    request = {"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
    pinpoint.put_events(ApplicationId=APP, EventsRequest=request)
    pinpoint.put_events(ApplicationId=APP, EventsRequest=request)
    assert [entry["receive_count"] for entry in emulator.events(APP)] == [2]
    stats = emulator.stats()
    assert (stats["events_accepted"], stats["events_duplicated"]) == (2, 1)


def test_endpoint_keeps_its_last_update(emulator, pinpoint):
    for status in ("ACTIVE", "INACTIVE"):
        pinpoint.put_events(
            ApplicationId=APP,
            EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {"EndpointStatus": status}, "Events": {}}}},
        )
    assert emulator.endpoints(APP) == {"ep-1": {"EndpointStatus": "INACTIVE"}}
    assert emulator.stats()["endpoints_accepted"] == 2


def test_applications_are_recorded_apart(emulator, pinpoint):
    pinpoint.put_events(
        ApplicationId="other", EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
    )
    assert emulator.events(APP) == []
    assert len(emulator.events("other")) == 1

"""Item-level rules: a bad endpoint or event is answered 400 inside a 202, the rest still go.

Rules boto3 already enforces client-side (types, required members) are sent as raw HTTP, the
way a non-boto3 client could send them; every other rule goes through boto3's real client.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers.wire import APP, event, post_raw


def send_event(pinpoint, body: dict, endpoint_id: str = "ep-1") -> dict:
    response = pinpoint.put_events(
        ApplicationId=APP,
        EventsRequest={"BatchItem": {endpoint_id: {"Endpoint": {}, "Events": {"ev-1": body, "ok": event()}}}},
    )
    events = response["EventsResponse"]["Results"][endpoint_id]["EventsItemResponse"]
    return events["ev-1"]


def send_endpoint(pinpoint, endpoint: dict, endpoint_id: str = "ep-1") -> dict:
    response = pinpoint.put_events(
        ApplicationId=APP, EventsRequest={"BatchItem": {endpoint_id: {"Endpoint": endpoint, "Events": {}}}}
    )
    return response["EventsResponse"]["Results"][endpoint_id]["EndpointItemResponse"]


def raw_event_result(url: str, body: dict) -> dict:
    request = {"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": body}}}}
    response = post_raw(url, APP, json.dumps(request).encode())
    assert response.status_code == 202
    return response.json()["Results"]["ep-1"]["EventsItemResponse"]["ev-1"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Timestamp": "2026-01-02T03:04:05Z"}, "Event.EventType is required"),
        ({"EventType": "a"}, "Event.Timestamp is required"),
        (event(Metrics={"price": "NaN"}), "Event.Metrics.price must be a number"),
        (event(Attributes={"a": 1}), "Event.Attributes.a must be a string"),
        (event(Session={"Id": "s"}), "Event.Session.StartTimestamp is required"),
        (event(Session={"Id": "s", "StartTimestamp": "2026-01-02T03:04:05Z", "Duration": 1.5}), "must be an integer"),
        (event(Colour="red"), "Event.Colour is not a member of Event"),
    ],
)
def test_event_breaking_the_service_model_is_rejected(emulator, body, message):
    result = raw_event_result(emulator.url, body)
    assert result["StatusCode"] == 400
    assert message in result["Message"]
    assert emulator.stats()["events_rejected"] == 1
    assert emulator.events(APP) == []


def test_endpoint_breaking_the_service_model_is_rejected(emulator):
    request = {"BatchItem": {"ep-1": {"Endpoint": {"Location": {"Latitude": "north"}}, "Events": {}}}}
    result = post_raw(emulator.url, APP, json.dumps(request).encode()).json()["Results"]["ep-1"]
    assert result["EndpointItemResponse"] == {
        "StatusCode": 400,
        "Message": "Endpoint.Location.Latitude must be a number",
    }
    assert emulator.endpoints(APP) == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (event(Timestamp="2026-01-02 03:04"), "Event.Timestamp must be an ISO 8601 date-time"),
        (event(Timestamp="yesterday"), "Event.Timestamp must be an ISO 8601 date-time"),
        (
            event(Attributes={f"a{i}": "v" for i in range(21)}, Metrics={f"m{i}": 1.0 for i in range(20)}),
            "less than 40",
        ),
        (event(Attributes={"k" * 51: "v"}), "longer than 50 characters"),
        (event(Metrics={"k" * 51: 1.0}), "longer than 50 characters"),
        (event(AppTitle="t" * (1000 * 1024)), "exceeds the maximum of 1024000 bytes"),
    ],
)
def test_event_over_a_quota_is_rejected(emulator, pinpoint, body, message):
    result = send_event(pinpoint, body)
    assert result["StatusCode"] == 400
    assert message in result["Message"]
    assert [entry["event_id"] for entry in emulator.events(APP)] == ["ok"]


def test_event_with_40_attributes_and_metrics_is_accepted(pinpoint):
    body = event(Attributes={f"a{i}": "v" for i in range(20)}, Metrics={f"m{i}": 1.0 for i in range(20)})
    assert send_event(pinpoint, body)["StatusCode"] == 202


def test_event_attribute_value_over_200_characters_is_dropped_silently(emulator, pinpoint):
    result = send_event(pinpoint, event(Attributes={"note": "n" * 201}))
    assert result == {"StatusCode": 202, "Message": "Accepted"}
    assert [entry["event_id"] for entry in emulator.events(APP)] == ["ok"]
    assert emulator.stats()["events_dropped"] == 1


def test_event_attribute_value_of_200_characters_is_kept(emulator, pinpoint):
    send_event(pinpoint, event(Attributes={"note": "n" * 200}))
    assert emulator.stats()["events_dropped"] == 0


def _fill(pinpoint, make_event, count: int) -> None:
    """Send ``count`` events built by ``make_event(i)``, 100 per request."""
    for start in range(0, count, 100):
        events = {f"fill-{i}": make_event(i) for i in range(start, min(start + 100, count))}
        pinpoint.put_events(
            ApplicationId=APP, EventsRequest={"BatchItem": {"filler": {"Endpoint": {}, "Events": events}}}
        )


@pytest.mark.parametrize(
    ("make_event", "count", "over", "message"),
    [
        (lambda i: event(f"type-{i}"), 1500, event("one-too-many"), "1500 custom event types per application"),
        (
            lambda i: event(Attributes={f"key-{i}": "v"}),
            500,
            event(Attributes={"new": "v"}),
            "500 event attribute keys",
        ),
        (lambda i: event(Metrics={f"key-{i}": 1.0}), 500, event(Metrics={"new": 1.0}), "500 event metric keys"),
    ],
)
def test_per_application_name_quotas(emulator, pinpoint, make_event, count, over, message):
    _fill(pinpoint, make_event, count)
    assert emulator.stats()["events_rejected"] == 0
    result = send_event(pinpoint, over)
    assert result["StatusCode"] == 400
    assert message in result["Message"]


def test_standard_event_types_do_not_count_against_the_custom_quota(emulator, pinpoint):
    _fill(pinpoint, lambda i: event(f"type-{i}"), 1500)
    assert send_event(pinpoint, event("_session.start"))["StatusCode"] == 202


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({"ChannelType": "PIGEON"}, "Endpoint.ChannelType must be one of"),
        ({"EndpointStatus": "ON"}, "Endpoint.EndpointStatus must be one of ACTIVE, INACTIVE"),
        ({"OptOut": "SOME"}, "Endpoint.OptOut must be one of ALL, NONE"),
        ({"EffectiveDate": "01/02/2026"}, "Endpoint.EffectiveDate must be an ISO 8601 date-time"),
        ({"Address": "a" * (15 * 1024)}, "exceeds the maximum of 15360 bytes"),
        ({"Attributes": {"n" * 51: ["v"]}}, "Attributes name"),
        ({"Attributes": {"tags": ["v" * 101]}}, "Attributes.tags has a value longer than 100 characters"),
        ({"Attributes": {"tags": [str(i) for i in range(51)]}}, "Attributes.tags has 51 values; the maximum is 50"),
        ({"User": {"UserAttributes": {"n" * 51: ["v"]}}}, "User.UserAttributes name"),
        ({"User": {"UserAttributes": {"tags": [str(i) for i in range(51)]}}}, "has 51 values"),
        ({"Metrics": {"n" * 51: 1.0}}, "Metrics name"),
    ],
)
def test_endpoint_breaking_a_rule_is_rejected(emulator, pinpoint, endpoint, message):
    result = send_endpoint(pinpoint, endpoint)
    assert result["StatusCode"] == 400
    assert message in result["Message"]
    assert emulator.endpoints(APP) == {}
    assert emulator.stats()["endpoints_rejected"] == 1


def test_endpoint_id_with_forbidden_characters_fails_endpoint_and_events(emulator, pinpoint):
    response = pinpoint.put_events(
        ApplicationId=APP,
        EventsRequest={"BatchItem": {"ep-${1}": {"Endpoint": {"ChannelType": "SMS"}, "Events": {"ev-1": event()}}}},
    )
    result = response["EventsResponse"]["Results"]["ep-${1}"]
    assert result["EndpointItemResponse"]["StatusCode"] == 400
    assert "forbidden characters: $ { }" in result["EndpointItemResponse"]["Message"]
    assert result["EventsItemResponse"]["ev-1"]["StatusCode"] == 400
    assert emulator.events(APP) == []


def test_endpoint_custom_attributes_per_application(pinpoint):
    for i in range(25):
        attributes = {f"a{i}-{j}": ["v"] for j in range(10)}
        assert send_endpoint(pinpoint, {"Attributes": attributes}, f"ep-{i}")["StatusCode"] == 202
    result = send_endpoint(pinpoint, {"Metrics": {"one-more": 1.0}}, "ep-last")
    assert result["StatusCode"] == 400
    assert "250 endpoint custom attributes" in result["Message"]


@pytest.mark.parametrize(("channel", "status"), [("SMS", 400), ("EMAIL", 400), ("APNS", 202)])
def test_sixteenth_endpoint_of_a_user_id(pinpoint, channel, status):
    for i in range(15):
        assert (
            send_endpoint(pinpoint, {"ChannelType": channel, "User": {"UserId": "u1"}}, f"ep-{i}")["StatusCode"] == 202
        )
    result = send_endpoint(pinpoint, {"ChannelType": channel, "User": {"UserId": "u1"}}, "ep-16")
    assert result["StatusCode"] == status
    if status == 400:
        assert result["Message"] == "Exceeded maximum endpoint per user count 15"


def test_updating_a_known_endpoint_of_a_full_user_id_is_accepted(pinpoint):
    for i in range(15):
        send_endpoint(pinpoint, {"ChannelType": "SMS", "User": {"UserId": "u1"}}, f"ep-{i}")
    assert send_endpoint(pinpoint, {"ChannelType": "SMS", "User": {"UserId": "u1"}}, "ep-3")["StatusCode"] == 202


def test_no_validate_accepts_what_validation_would_refuse(emulator, pinpoint):
    emulator.configure(validate=False)
    assert send_event(pinpoint, event(Timestamp="yesterday"))["StatusCode"] == 202
    assert len(emulator.events(APP)) == 2

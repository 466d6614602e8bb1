from __future__ import annotations

import json

import pytest

from airflow_provider_pinpoint.prepare.requests import ENDPOINT, EVENT, Item, Request, request_size


def _items():
    return [
        Item(ENDPOINT, "e1", None, "endpoints.csv", 1, json.dumps({"ChannelType": "EMAIL"})),
        Item(
            EVENT, "e1", "ev1", "events.csv", 1, json.dumps({"EventType": "x", "Timestamp": "2026-01-01T00:00:00.000Z"})
        ),
        Item(EVENT, "e1", "ev2", "events.csv", 2, "{}"),
        Item(EVENT, 'é"2', 'ü\\"', "events.csv", 3, "{}"),
        Item(ENDPOINT, "e3", None, "endpoints.csv", 2, "{}"),
    ]


@pytest.mark.parametrize("n", range(6))
def test_request_size_is_exact(n):
    items = _items()[:n]
    assert request_size(items) == len(Request(items).body())


def test_body_groups_by_endpoint_with_empty_placeholders():
    body = json.loads(Request(_items()).body())
    assert body["BatchItem"]["e1"]["Endpoint"] == {"ChannelType": "EMAIL"}
    assert list(body["BatchItem"]["e1"]["Events"]) == ["ev1", "ev2"]
    assert body["BatchItem"]['é"2'] == {"Endpoint": {}, "Events": {'ü\\"': {}}}
    assert body["BatchItem"]["e3"] == {"Endpoint": {}, "Events": {}}


def test_split_keeps_every_item_once():
    request = Request(_items())
    first, second = request.split()
    assert first.items + second.items == request.items
    assert first.items and second.items

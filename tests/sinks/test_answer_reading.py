"""A 2xx PutEvents answer read on the direct path says exactly what the same answer decoded whole says.

Answers of the usual shape are read into typed codes (:attr:`RawResponse.statuses`) and, when an item
needs its own status, decoded whole as well while they are sent; every other shape is decoded whole
at once. Each answer here is sent by a loopback server to a real boto3 client, and what the transport makes of it is compared
with a :class:`Response` made from the plain decoded ``Results``, the way every answer was read before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import msgspec
import pytest
from botocore.parsers import ResponseParserError

from airflow_provider_pinpoint.prepare.requests import EVENT, Request, item_columns
from airflow_provider_pinpoint.sending.transport import RetryableError
from airflow_provider_pinpoint.sinks.putevents import PutEventsTransport, Response
from airflow_provider_pinpoint.sinks.raw_body import RawPutEvents
from tests.helpers.items import APP, make_items
from tests.sinks.test_raw_body import _Recorder, served

ITEMS = make_items(2, 2)  # endpoint 0, its events 1 and 2; endpoint 1, its events 3 and 4
EP0, EP1 = ITEMS[0].endpoint_id, ITEMS[3].endpoint_id
EV1, EV2, EV3, EV4 = (item.event_id for item in ITEMS if item.record_type == EVENT)
OK = {"StatusCode": 202, "Message": "Accepted"}


def _results(**changes: Any) -> dict[str, Any]:
    """The answer accepting every item, with entries replaced (``ep0``/``ep1``) or dropped (None)."""
    entries = {
        "ep0": {"EndpointItemResponse": OK, "EventsItemResponse": {EV1: OK, EV2: OK}},
        "ep1": {"EndpointItemResponse": OK, "EventsItemResponse": {EV3: OK, EV4: OK}},
    }
    entries.update(changes)
    return {
        endpoint_id: entry
        for endpoint_id, entry in zip((EP0, EP1), (entries["ep0"], entries["ep1"]), strict=True)
        if entry is not None
    }


def _body(results: Any) -> bytes:
    return json.dumps({"Results": results}).encode()


def _events(**events: Any) -> dict[str, Any]:
    return {"EndpointItemResponse": OK, "EventsItemResponse": events}


# (name, answer body, read typed?): the typed reading is taken exactly for the usual shape.
ANSWERS = [
    ("all accepted", _body(_results()), True),
    (
        "extra fields everywhere",
        json.dumps(
            {
                "Results": {
                    EP0: {
                        "EndpointItemResponse": {**OK, "Extra": [1, {"a": None}]},
                        "EventsItemResponse": {EV1: {**OK, "Detail": {"x": 1}}, EV2: OK},
                        "Other": "x",
                    },
                    EP1: _events(**{EV3: OK, EV4: OK}),
                },
                "RequestId": "more",
            }
        ).encode(),
        True,
    ),
    ("an endpoint missing", _body(_results(ep1=None)), True),
    ("an event id missing", _body(_results(ep0=_events(**{EV1: OK}))), True),
    (
        "a 4xx item among 2xx",
        _body(_results(ep1=_events(**{EV3: OK, EV4: {"StatusCode": 400, "Message": "bad"}}))),
        True,
    ),
    ("two different 2xx", _body(_results(ep1=_events(**{EV3: {"StatusCode": 200}, EV4: OK}))), True),
    ("a code out of range", _body(_results(ep0=_events(**{EV1: {"StatusCode": 10**20}, EV2: OK}))), True),
    (
        "a 4xx with a message not text",
        _body(_results(ep0=_events(**{EV1: {"StatusCode": 400, "Message": 7}, EV2: OK}))),
        True,
    ),
    (
        "a null endpoint status",
        _body(_results(ep0={"EndpointItemResponse": None, "EventsItemResponse": {EV1: OK, EV2: OK}})),
        True,
    ),
    ("no EventsItemResponse", _body(_results(ep1={"EndpointItemResponse": OK})), True),
    ("no Results", b'{"Other": 1}', True),
    (
        "duplicate keys, the last one kept",
        (
            f'{{"Results": {{"{EP0}": {{"EndpointItemResponse": {{"StatusCode": 400}}, "EventsItemResponse": '
            f'{{"{EV1}": {{"StatusCode": 400, "Message": "no"}}, "{EV1}": {{"StatusCode": 202}}, "{EV2}": {{"StatusCode": 202}}}},'
            f' "EndpointItemResponse": {{"StatusCode": 202}}}}, "{EP1}": {{"EventsItemResponse": {{}}}}, '
            f'"{EP1}": {json.dumps(_events(**{EV3: OK, EV4: OK}))}}}}}'
        ).encode(),
        True,
    ),
    ("a StatusCode as text", _body(_results(ep0=_events(**{EV1: {"StatusCode": "202"}, EV2: OK}))), False),
    ("a StatusCode as a fraction", _body(_results(ep0=_events(**{EV1: {"StatusCode": 202.0}, EV2: OK}))), False),
    ("a StatusCode as a boolean", _body(_results(ep0=_events(**{EV1: {"StatusCode": True}, EV2: OK}))), False),
    ("no StatusCode", _body(_results(ep0=_events(**{EV1: {"Message": "Accepted"}, EV2: OK}))), False),
    ("an event status not an object", _body(_results(ep0=_events(**{EV1: [202], EV2: OK}))), False),
    ("an entry not an object", _body(_results(ep1=[OK])), False),
    ("EventsItemResponse null", _body(_results(ep1={"EndpointItemResponse": OK, "EventsItemResponse": None})), False),
    ("Results null", b'{"Results": null}', False),
    ("Results a list", b'{"Results": []}', False),
]


@pytest.fixture
def server(only_botocores_handlers: None) -> Iterator[_Recorder]:
    yield from served()


@pytest.fixture
def transport(server: _Recorder) -> PutEventsTransport:
    client = boto3.client(
        "pinpoint",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    return PutEventsTransport(client)


def _requests() -> list[Request]:
    """The same items as objects, as columns, and only the events (the usual request of an events-only load)."""
    events = [item for item in ITEMS if item.record_type == EVENT]
    return [
        Request(ITEMS),
        Request(columns=item_columns(ITEMS)),
        Request(events),
        Request(columns=item_columns(events)),
    ]


@pytest.mark.parametrize(("body", "typed"), [case[1:] for case in ANSWERS], ids=[case[0] for case in ANSWERS])
def test_an_answer_says_the_same_read_typed_or_whole(server, transport, body, typed):
    for request in _requests():
        server.answers.append((202, {"x-amzn-RequestId": "req-1"}, body))
        response = transport.send(APP, request)
        plain = Response(202, "req-1", msgspec.json.decode(body).get("Results", {}))

        assert (response._answer.statuses is not None) == typed  # the reading this case is about was taken
        assert response.common_success(request) == plain.common_success(request)
        assert response.item_statuses(request) == plain.item_statuses(request)
        assert response.results == plain.results
        assert (response.status, response.request_id) == (202, "req-1")


def test_only_an_answer_accepting_every_item_alike_has_a_common_code(server, transport):
    expected = {
        "all accepted": 202,
        "extra fields everywhere": 202,
        "duplicate keys, the last one kept": 202,
        # As the whole reading always had it: a code after one equal to it is not checked again (202.0 == 202).
        "a StatusCode as a fraction": 202,
    }
    request = Request(ITEMS)
    for name, body, _ in ANSWERS:
        server.answers.append((202, {}, body))
        assert transport.send(APP, request).common_success(request) == expected.get(name), name


def test_the_direct_path_is_the_one_tested(transport):
    assert transport._raw.direct


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"null", b"<html>proxy</html>", b'{"Results": {', b"\xff{}"])
def test_a_2xx_body_not_a_json_object_is_refused_as_before(server, transport, body):
    server.answers.append((202, {}, body))
    with pytest.raises(ResponseParserError):
        RawPutEvents(transport.client).send(APP, Request(ITEMS).body())


@pytest.mark.parametrize(
    "detail",
    [b'"Message": "bad \xff\xfe"', b'"Extra": 1e400'],
    ids=["bad UTF-8 in a skipped message", "a number out of range in a skipped field"],
)
def test_an_item_refused_in_a_body_only_the_typed_reading_passes_is_refused_when_sent(server, transport, detail):
    # The typed reading skips messages unchecked; with an item to read one by one, the answer is
    # read whole while it is sent, so the body is refused there (retried as an unparsed answer),
    # not later when the engine asks for the item's status.
    body = _body(_results(ep1=_events(**{EV3: OK, EV4: {"StatusCode": 400, "Message": "x"}})))
    body = body.replace(b'"StatusCode": 400, "Message": "x"', b'"StatusCode": 400, ' + detail)
    with pytest.raises((msgspec.DecodeError, UnicodeDecodeError)):  # the whole reading refuses it
        msgspec.json.decode(body)
    server.answers.append((202, {}, body))
    with pytest.raises(RetryableError, match="could not be parsed"):
        transport.send(APP, Request(ITEMS))

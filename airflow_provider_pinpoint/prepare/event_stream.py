"""Validated columns -> records of Pinpoint's app-event stream JSON, for the Kinesis and Firehose sinks.

Consumers built for the event stream Pinpoint itself wrote to Kinesis and Firehose read these
records unchanged: the keys, nesting and types are those of the documented app-event record
(``event_type``, ``event_timestamp`` in Unix milliseconds, ``event_version`` "3.0", ``application``,
``client``, ``device``, ``session``, ``attributes``, ``metrics``). Two documented extensions:
``event_id`` at the top level (the given or derived id, to de-duplicate at-least-once delivery) and
``session.duration``. ``arrival_timestamp`` is not here: it is the time of sending, which the
transport writes in front of each record as it sends it (:func:`with_arrival`).

An endpoint row becomes one record of its own, ``event_type`` ``_endpoint.update``, that carries the
endpoint's fields under ``endpoint`` in the shape PutEvents took them (``ChannelType``,
``Demographic``, ``Location``, ``Attributes``, ``User``...) without ``Address``: a stream is read by
analytics jobs and lands in buckets, and Pinpoint's app-event stream never carried contact
addresses. Event records take ``device`` and ``application.version_name`` from their endpoint's row
when the endpoints table has one.

As for PutEvents bodies (:mod:`.bodies`), the JSON is assembled column by column with Arrow: the
same member texts, keys and punctuation as constant columns, one join per slice of rows; no Python
object per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.common.arrow import valid_mask
from airflow_provider_pinpoint.prepare.bodies import Json, constant, endpoint_bodies, escaped, json_object, json_value

EVENT_VERSION = "3.0"
ENDPOINT_EVENT_TYPE = "_endpoint.update"
# Endpoint columns that make an event record's ``device`` and ``application.version_name``.
DEVICE_COLUMNS = (
    "Demographic.AppVersion",
    "Demographic.Locale",
    "Demographic.Make",
    "Demographic.Model",
    "Demographic.Platform",
    "Demographic.PlatformVersion",
)
# Bytes ``"arrival_timestamp":<13 digits>,`` adds to a record (Unix ms have 13 digits until the year 2286).
ARRIVAL_BYTES = len('"arrival_timestamp":0000000000000,')
# Rows whose JSON parts are built at once (every key and punctuation mark is a column until the join).
_SLICE_ROWS = 65_536


def with_arrival(record: bytes, arrival_ms: int) -> bytes:
    """``record`` (a JSON object from this module) with ``arrival_timestamp`` first: the send time."""
    return b'{"arrival_timestamp":%d,%b' % (arrival_ms, record[1:])


def event_records(
    columns: Mapping[str, pa.Array],
    event_ids: pa.Array,
    application_id: str,
    device: Mapping[str, pa.Array] | None = None,
) -> pa.Array:
    """The record of every event row (validated ``columns``), its ``event_id`` given; ``device``: the
    :data:`DEVICE_COLUMNS` of each row's endpoint, null where it has no endpoint row."""
    return _sliced(
        lambda start, rows: _event_slice(
            _slice(columns, start, rows), event_ids.slice(start, rows), application_id, _slice(device, start, rows)
        ),
        len(event_ids),
    )


def event_content(columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    """The JSON of the event row's own fields, as they go into its record, and nothing the endpoint
    or the load adds: what a derived event id is computed from (so an edited endpoint row does not
    change its events' ids)."""
    return _sliced(
        lambda start, rows: _text(json_object(_own_members(_slice(columns, start, rows), rows), rows), rows),
        length,
    )


def endpoint_records(
    columns: Mapping[str, pa.Array], event_ids: pa.Array, application_id: str, loaded_at_ms: int
) -> pa.Array:
    """The ``_endpoint.update`` record of every endpoint row (validated ``columns``); ``event_timestamp``
    is its ``EffectiveDate``, else ``loaded_at_ms`` (when the load started)."""
    return _sliced(
        lambda start, rows: _endpoint_slice(
            _slice(columns, start, rows), event_ids.slice(start, rows), application_id, loaded_at_ms
        ),
        len(event_ids),
    )


def endpoint_content(columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    """The endpoint's fields as its record carries them (``endpoint``, without Address): what the
    derived id of its record is computed from."""
    return endpoint_bodies({name: values for name, values in columns.items() if name != "Address"}, length)


# Records, slice by slice -----------------------------------------------------------------------------


def _event_slice(
    columns: Mapping[str, pa.Array], event_ids: pa.Array, application_id: str, device: Mapping[str, pa.Array] | None
) -> pa.Array:
    n = len(event_ids)
    device = device or {}
    application = [
        ("app_id", _constant_text(application_id, n)),
        *_present(
            [("package_name", "AppPackageName"), ("title", "AppTitle"), ("version_code", "AppVersionCode")], columns
        ),
        *_nested("sdk", [("name", "SdkName"), ("version", "ClientSdkVersion")], columns, n),
        *_present([("version_name", "Demographic.AppVersion")], device),
    ]
    members = [
        ("event_type", json_value(columns["EventType"])),
        ("event_timestamp", _millis(columns["Timestamp"])),
        ("event_version", _constant_text(EVENT_VERSION, n)),
        ("event_id", json_value(event_ids)),
        ("application", json_object(application, n)),
        ("client", json_object([("client_id", json_value(columns["EndpointId"]))], n)),
        *_device(device, n),
        *_session(columns, n),
        *_maps(columns, n),
    ]
    return _text(json_object(members, n), n)


def _own_members(columns: Mapping[str, pa.Array], n: int) -> list[tuple[str, Json]]:
    """The members an event row fills itself (for :func:`event_content`)."""
    return [
        *_present([("event_type", "EventType"), ("package_name", "AppPackageName"), ("title", "AppTitle")], columns),
        ("event_timestamp", _millis(columns["Timestamp"])),
        *_present(
            [("version_code", "AppVersionCode"), ("sdk_name", "SdkName"), ("sdk_version", "ClientSdkVersion")], columns
        ),
        *_session(columns, n),
        *_maps(columns, n),
    ]


def _endpoint_slice(
    columns: Mapping[str, pa.Array], event_ids: pa.Array, application_id: str, loaded_at_ms: int
) -> pa.Array:
    n = len(event_ids)
    effective = columns.get("EffectiveDate")
    loaded = pa.repeat(pa.scalar(loaded_at_ms, pa.int64()), n)
    stamps = loaded if effective is None else pc.coalesce(pc.cast(effective, pa.int64()), loaded)
    endpoint = endpoint_content(columns, n)
    application = [
        ("app_id", _constant_text(application_id, n)),
        *_present([("version_name", "Demographic.AppVersion")], columns),
    ]
    members = [
        ("event_type", _constant_text(ENDPOINT_EVENT_TYPE, n)),
        ("event_timestamp", Json("", [pc.cast(stamps, pa.string())], np.ones(n, dtype=bool))),
        ("event_version", _constant_text(EVENT_VERSION, n)),
        ("event_id", json_value(event_ids)),
        ("application", json_object(application, n)),
        ("client", json_object([("client_id", json_value(columns["Id"]))], n)),
        *_device(columns, n),
        ("endpoint", Json("", [endpoint], np.ones(n, dtype=bool))),
    ]
    return _text(json_object(members, n), n)


def _device(endpoint: Mapping[str, pa.Array], n: int) -> list[tuple[str, Json]]:
    """``device`` from the endpoint's Demographic columns: ``locale`` {code, country, language} from
    ``Locale`` (validated as ll_CC), ``make``, ``model``, ``platform`` {name, version}."""
    members: list[tuple[str, Json]] = []
    locale = endpoint.get("Demographic.Locale")
    if locale is not None:
        parts = [
            ("code", json_value(locale)),
            ("country", json_value(pc.utf8_slice_codeunits(locale, 3, 5))),
            ("language", json_value(pc.utf8_slice_codeunits(locale, 0, 2))),
        ]
        members.append(("locale", json_object(parts, n)))
    members += _present([("make", "Demographic.Make"), ("model", "Demographic.Model")], endpoint)
    members += _nested(
        "platform", [("name", "Demographic.Platform"), ("version", "Demographic.PlatformVersion")], endpoint, n
    )
    return [("device", json_object(members, n))] if members else []


def _session(columns: Mapping[str, pa.Array], n: int) -> list[tuple[str, Json]]:
    members = _present([("session_id", "Session.Id")], columns)
    for key, name in (("start_timestamp", "Session.StartTimestamp"), ("stop_timestamp", "Session.StopTimestamp")):
        if name in columns:
            members.append((key, _millis(columns[name])))
    members += _present([("duration", "Session.Duration")], columns)
    return [("session", json_object(members, n))] if members else []


def _maps(columns: Mapping[str, pa.Array], n: int) -> list[tuple[str, Json]]:
    """``attributes`` and ``metrics`` from the ``Attributes.*`` and ``Metrics.*`` columns (NaN and
    infinite metrics are already absent after coercion); both are always there, ``{}`` when empty,
    as in Pinpoint's own records."""
    maps = []
    for key, family in (("attributes", "Attributes."), ("metrics", "Metrics.")):
        entries = [
            (name[len(family) :], json_value(values)) for name, values in columns.items() if name.startswith(family)
        ]
        maps.append((key, _always_object(json_object(entries, n), n) if entries else _empty_object(n)))
    return maps


def _always_object(value: Json, n: int) -> Json:
    """An object's text in every row: its members where any is present, ``{}`` elsewhere (where
    :func:`json_object` leaves the key out)."""
    text = pc.binary_join_element_wise(*value.parts, "", null_handling="replace", null_replacement="")
    text = pc.if_else(pa.array(value.present), text, pa.scalar("}", pa.string()))
    return Json("{", [text], np.ones(n, dtype=bool))


def _empty_object(n: int) -> Json:
    return Json("{", [constant("}", np.ones(n, dtype=bool))], np.ones(n, dtype=bool))


def _present(keys: list[tuple[str, str]], columns: Mapping[str, pa.Array]) -> list[tuple[str, Json]]:
    """(record key, text) of each column that the table has."""
    return [(key, json_value(columns[name])) for key, name in keys if name in columns]


def _nested(key: str, keys: list[tuple[str, str]], columns: Mapping[str, pa.Array], n: int) -> list[tuple[str, Json]]:
    members = _present(keys, columns)
    return [(key, json_object(members, n))] if members else []


def _millis(stamps: pa.Array) -> Json:
    """Timestamps (ms, UTC after coercion) as Unix milliseconds, a JSON integer."""
    millis = pc.cast(stamps, pa.int64())
    return Json("", [pc.cast(millis, pa.string())], valid_mask(stamps))


def _constant_text(text: str, n: int) -> Json:
    everywhere = np.ones(n, dtype=bool)
    inner = escaped(pa.array([text], pa.string()))[0].as_py()
    return Json('"', [constant(inner + '"', everywhere)], everywhere)


def _text(body: Json, n: int) -> pa.Array:
    """The whole JSON object of each row (``{}`` where nothing is present)."""
    everywhere = np.ones(n, dtype=bool)
    parts = [constant("{", everywhere), *body.parts[:-1], constant("}", everywhere)]
    return pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")


def _slice(columns: Mapping[str, pa.Array] | None, start: int, rows: int) -> dict[str, pa.Array]:
    return {} if columns is None else {name: values.slice(start, rows) for name, values in columns.items()}


def _sliced(build: Callable[[int, int], pa.Array], length: int) -> pa.Array:
    """``build(start, rows)`` over slices of at most :data:`_SLICE_ROWS` rows, concatenated."""
    if length <= _SLICE_ROWS:
        return build(0, length)
    return pa.concat_arrays([build(start, min(_SLICE_ROWS, length - start)) for start in range(0, length, _SLICE_ROWS)])

"""Item-level rules of PutEvents: botocore's service model plus the documented quotas.

Types, required members and enums come from botocore's own model (the same one boto3 validates
parameters against), compiled once into plain tables so checking a 100-event request stays cheap.
Quotas come from :mod:`airflow_provider_pinpoint.quotas`. Per-application quotas (event types,
attribute keys, endpoint custom attributes, endpoints per user id) need what the application has
already seen: that lives in a :class:`Catalog`, which the store keeps across restarts.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from types import GenericAlias
from typing import Any, Literal

import msgspec

from airflow_provider_pinpoint import quotas, service_model

# Members typed as plain strings in the model but documented as enums or ISO 8601 dates.
_EXTRA_ENUMS: dict[tuple[str | None, str | None], frozenset[str]] = {
    ("PublicEndpoint", "EndpointStatus"): frozenset(service_model.ENDPOINT_STATUS_VALUES),
    ("PublicEndpoint", "OptOut"): frozenset(service_model.OPT_OUT_VALUES),
}
_DATES: set[tuple[str | None, str | None]] = {
    ("PublicEndpoint", "EffectiveDate"),
    ("Event", "Timestamp"),
    ("Session", "StartTimestamp"),
    ("Session", "StopTimestamp"),
}

# Catalog kinds: names an application accumulates, each capped per application.
EVENT_TYPE = "event_type"
EVENT_ATTRIBUTE = "event_attribute"
EVENT_METRIC = "event_metric"
ENDPOINT_ATTRIBUTE = "endpoint_attribute"
_APP_LIMITS = {
    EVENT_TYPE: quotas.MAX_EVENT_TYPES_PER_APP,
    EVENT_ATTRIBUTE: quotas.MAX_EVENT_ATTRIBUTE_KEYS_PER_APP,
    EVENT_METRIC: quotas.MAX_EVENT_METRIC_KEYS_PER_APP,
    ENDPOINT_ATTRIBUTE: quotas.MAX_ENDPOINT_CUSTOM_ATTRIBUTES_PER_APP,
}
_APP_LIMIT_WHAT = {
    EVENT_TYPE: "custom event types",
    EVENT_ATTRIBUTE: "event attribute keys",
    EVENT_METRIC: "event metric keys",
    ENDPOINT_ATTRIBUTE: "endpoint custom attributes",
}


@dataclass(slots=True)
class Spec:
    """One shape of the model, reduced to what a JSON value is checked against."""

    name: str
    kind: str
    members: dict[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    enum: frozenset[str] | None = None
    is_date: bool = False
    value: Spec | None = None  # map values and list members

    @property
    def item(self) -> Spec:
        """The spec of this map's values or this list's members."""
        if self.value is None:
            raise TypeError(f"{self.name} is a {self.kind}: it has no values or members")
        return self.value


def _compile(
    shape: Any, owner: str | None = None, member: str | None = None, seen: dict[str, Spec] | None = None
) -> Spec:
    """``shape`` (a botocore Shape) as a :class:`Spec`; ``seen`` ties recursive structures together."""
    seen = {} if seen is None else seen
    spec = Spec(shape.name, shape.type_name)
    if getattr(shape, "enum", None):
        spec.enum = frozenset(shape.enum)
    if (owner, member) in _EXTRA_ENUMS:
        spec.enum = _EXTRA_ENUMS[(owner, member)]
    spec.is_date = (owner, member) in _DATES
    if shape.type_name == "structure":
        if shape.name in seen:
            return seen[shape.name]
        seen[shape.name] = spec
        spec.required = tuple(shape.required_members)
        spec.members = {name: _compile(sub, shape.name, name, seen) for name, sub in shape.members.items()}
    elif shape.type_name == "map":
        spec.value = _compile(shape.value, seen=seen)
    elif shape.type_name == "list":
        spec.value = _compile(shape.member, seen=seen)
    return spec


@cache
def spec(shape_name: str) -> Spec:
    return _compile(service_model.shape(shape_name))


def check_shape(value: object, spec_: Spec, path: str) -> str | None:
    """The first way ``value`` breaks the model at ``path``, or None."""
    kind = spec_.kind
    if kind == "structure":
        if not isinstance(value, dict):
            return f"{path} must be an object"
        for name in spec_.required:
            if name not in value:
                return f"{path}.{name} is required"
        for name, sub in value.items():
            member = spec_.members.get(name)
            if member is None:
                return f"{path}.{name} is not a member of {spec_.name}"
            problem = check_shape(sub, member, f"{path}.{name}")
            if problem:
                return problem
        return None
    if kind == "map":
        if not isinstance(value, dict):
            return f"{path} must be an object"
        for key, sub in value.items():
            problem = check_shape(sub, spec_.item, f"{path}.{key}")
            if problem:
                return problem
        return None
    if kind == "list":
        if not isinstance(value, list):
            return f"{path} must be a list"
        for index, sub in enumerate(value):
            problem = check_shape(sub, spec_.item, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if kind == "string":
        if not isinstance(value, str):
            return f"{path} must be a string"
        if spec_.enum is not None and value not in spec_.enum:
            return f"{path} must be one of {', '.join(sorted(spec_.enum))}, not {value!r}"
        if spec_.is_date and not _is_iso8601(value):
            return f"{path} must be an ISO 8601 date-time, not {value!r}"
        return None
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{path} must be a number"
        return None
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{path} must be an integer"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else f"{path} must be true or false"
    return None


def _is_iso8601(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value or len(value) == 10


@dataclass(slots=True)
class Catalog:
    """Names one application has accepted, for the per-application quotas.

    ``added`` lists what changed since the store last saved the catalog, so a persistent store
    writes only the difference.
    """

    names: dict[str, set[str]] = field(default_factory=lambda: {kind: set() for kind in _APP_LIMITS})
    user_endpoints: dict[str, set[str]] = field(default_factory=dict)
    added: list[tuple[str, str, str]] = field(default_factory=list)

    def new_names_over_limit(self, kind: str, candidates: AbstractSet[str]) -> str | None:
        known = self.names[kind]
        new = candidates - known
        if new and len(known) + len(new) > _APP_LIMITS[kind]:
            return (
                f"Exceeded the maximum of {_APP_LIMITS[kind]} {_APP_LIMIT_WHAT[kind]} per application "
                f"(new: {', '.join(sorted(new)[:3])})"
            )
        return None

    def add(self, kind: str, names: AbstractSet[str]) -> None:
        new = names - self.names[kind]
        if new:
            self.names[kind] |= new
            self.added.extend((kind, name, "") for name in new)

    def add_user_endpoint(self, user_id: str, endpoint_id: str) -> None:
        endpoints = self.user_endpoints.setdefault(user_id, set())
        if endpoint_id not in endpoints:
            endpoints.add(endpoint_id)
            self.added.append(("user_endpoint", user_id, endpoint_id))


def check_endpoint_id(endpoint_id: str) -> str | None:
    bad = sorted(set(endpoint_id) & quotas.ENDPOINT_ID_FORBIDDEN_CHARACTERS)
    if bad:
        return f"Endpoint id {endpoint_id!r} contains forbidden characters: {' '.join(bad)}"
    if not endpoint_id:
        return "Endpoint id must not be empty"
    return None


def check_endpoint(endpoint_id: str, endpoint: dict, size: int, catalog: Catalog) -> str | None:
    """Why the endpoint update is refused (one 400 message), or None. Records its names on success."""
    problem = check_shape(endpoint, spec("PublicEndpoint"), "Endpoint")
    if problem:
        return problem
    if size > quotas.MAX_ENDPOINT_BYTES:
        return f"Endpoint size {size} bytes exceeds the maximum of {quotas.MAX_ENDPOINT_BYTES} bytes"
    user = endpoint.get("User") or {}
    attribute_maps = [("Attributes", endpoint.get("Attributes") or {})]
    attribute_maps.append(("User.UserAttributes", user.get("UserAttributes") or {}))
    for where, attributes in attribute_maps:
        for name, values in attributes.items():
            if len(name) > quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH:
                return (
                    f"{where} name {name[:60]!r} is longer than {quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH} characters"
                )
            if len(values) > quotas.MAX_VALUES_PER_ENDPOINT_ATTRIBUTE:
                return (
                    f"{where}.{name} has {len(values)} values; "
                    f"the maximum is {quotas.MAX_VALUES_PER_ENDPOINT_ATTRIBUTE}"
                )
            for value in values:
                if len(value) > quotas.MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH:
                    return (
                        f"{where}.{name} has a value longer than "
                        f"{quotas.MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH} characters"
                    )
    for name in endpoint.get("Metrics") or {}:
        if len(name) > quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH:
            return f"Metrics name {name[:60]!r} is longer than {quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH} characters"
    custom = (
        set(endpoint.get("Attributes") or ())
        | set(endpoint.get("Metrics") or ())
        | set(user.get("UserAttributes") or ())
    )
    problem = catalog.new_names_over_limit(ENDPOINT_ATTRIBUTE, custom)
    if problem:
        return problem
    user_id = user.get("UserId")
    if user_id is not None:
        known = catalog.user_endpoints.get(user_id, set())
        if (
            endpoint_id not in known
            and len(known) >= quotas.MAX_ENDPOINTS_PER_USER_ID
            and endpoint.get("ChannelType") in quotas.USER_ENDPOINT_LIMIT_CHANNELS
        ):
            return f"Exceeded maximum endpoint per user count {quotas.MAX_ENDPOINTS_PER_USER_ID}"
        catalog.add_user_endpoint(user_id, endpoint_id)
    catalog.add(ENDPOINT_ATTRIBUTE, custom)
    return None


DROPPED = "dropped"


def _struct_type(spec_: Spec, made: dict[str, type]) -> object:
    """The msgspec type that accepts exactly what :func:`check_shape` accepts (dates aside)."""
    kind = spec_.kind
    if kind == "structure":
        if spec_.name not in made:
            fields = []
            for name, member in spec_.members.items():
                member_type = _struct_type(member, made)
                fields.append((name, member_type) if name in spec_.required else (name, member_type, None))
            made[spec_.name] = msgspec.defstruct(spec_.name, fields, kw_only=True, forbid_unknown_fields=True, gc=False)
        return made[spec_.name]
    if kind == "map":
        return GenericAlias(dict, (str, _struct_type(spec_.item, made)))
    if kind == "list":
        return GenericAlias(list, _struct_type(spec_.item, made))
    if kind == "string":
        return Literal[tuple(sorted(spec_.enum))] if spec_.enum else str
    return {"double": float, "integer": int, "long": int, "boolean": bool}[kind]


@cache
def _decoder(shape_name: str) -> msgspec.json.Decoder:
    """A decoder that checks a shape in C; :func:`check_shape` explains what it refuses."""
    return msgspec.json.Decoder(_struct_type(spec(shape_name), {}))


def _model_problem(raw: bytes, shape_name: str, error: msgspec.ValidationError) -> str:
    return check_shape(msgspec.json.decode(raw), spec(shape_name), shape_name) or f"{shape_name}: {error}"


def _date_problem(path: str, value: str | None) -> str | None:
    if value is not None and not _is_iso8601(value):
        return f"{path} must be an ISO 8601 date-time, not {value!r}"
    return None


DROPPED = "dropped"


def check_event(raw: bytes, catalog: Catalog) -> str | None:
    """Why the event (its JSON) is refused (one 400 message), :data:`DROPPED` if the service would
    silently drop it, or None. Records the event's names in the catalog when it is accepted."""
    try:
        event = _decoder("Event").decode(raw)
    except msgspec.ValidationError as exc:
        return _model_problem(raw, "Event", exc)
    session = event.Session
    problem = _date_problem("Event.Timestamp", event.Timestamp) or (
        session is not None
        and (
            _date_problem("Event.Session.StartTimestamp", session.StartTimestamp)
            or _date_problem("Event.Session.StopTimestamp", session.StopTimestamp)
        )
    )
    if problem:
        return problem
    if len(raw) > quotas.MAX_EVENT_BYTES:
        return f"Event size {len(raw)} bytes exceeds the maximum of {quotas.MAX_EVENT_BYTES} bytes"
    attributes = event.Attributes or {}
    metrics = event.Metrics or {}
    if len(attributes) + len(metrics) > quotas.MAX_EVENT_ATTRIBUTES_AND_METRICS:
        return (
            f"Event has {len(attributes) + len(metrics)} attributes and metrics; "
            f"the count should be less than {quotas.MAX_EVENT_ATTRIBUTES_AND_METRICS}"
        )
    for where, keys in (("Attributes", attributes), ("Metrics", metrics)):
        if keys and max(map(len, keys)) > quotas.MAX_EVENT_KEY_LENGTH:
            key = max(keys, key=len)
            return f"Event {where} key {key[:60]!r} is longer than {quotas.MAX_EVENT_KEY_LENGTH} characters"
    event_type = event.EventType
    checks = (
        # Types starting with "_" are the standard ones (_session.start, ...): not custom.
        (EVENT_TYPE, set() if event_type.startswith("_") else {event_type}),
        (EVENT_ATTRIBUTE, attributes.keys()),
        (EVENT_METRIC, metrics.keys()),
    )
    for kind, names in checks:
        problem = catalog.new_names_over_limit(kind, names)
        if problem:
            return problem
    if attributes and max(map(len, attributes.values())) > quotas.MAX_EVENT_ATTRIBUTE_VALUE_LENGTH:
        return DROPPED
    for kind, names in checks:
        catalog.add(kind, names)
    return None

"""The input column convention: which column names the loader understands, and how users map theirs.

The names are Amazon Pinpoint's own import-job CSV names (``Id``, ``Demographic.Locale``,
``Attributes.<name>``, ...), so files made for import jobs load as they are. The fixed names are
derived from botocore's service model (every member of ``PublicEndpoint`` and ``Event``, with their
nested structures flattened by ``.``), so the convention cannot drift from what the API accepts;
the map members (``Attributes``, ``Metrics``, ``User.UserAttributes``) become name families whose
suffix is the attribute or metric name.

Anything else in an input is an error rather than silently ignored: a column the loader does not
send is almost always a typo or a forgotten mapping, and dropping it quietly would lose data.

Error messages quote column names, but never one that looks like a value (an email address, a URL, a phone
number, a device token): a CSV without its header line has its first data row read as names, and
those errors reach terminals and Airflow logs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from airflow_provider_pinpoint import service_model
from airflow_provider_pinpoint.errors import InputError

Kind = Literal["events", "endpoints"]
KINDS: tuple[Kind, ...] = ("events", "endpoints")

Role = Literal["field", "attribute", "metric", "user_attribute", "bookkeeping"]

SOURCE = "_source"
SOURCE_ROW = "_source_row"
# The largest row number a results row can hold (compaction keys a row by 40 bits of its number).
MAX_SOURCE_ROW = (1 << 40) - 1
BOOKKEEPING = (SOURCE, SOURCE_ROW)
# Why a row could not be read (a CSV row with the wrong number of fields); validation rejects it with that.
READ_ERROR = "_read_error"

# Columns that name the record rather than describe it: they are not members of the API shapes.
_ID_FIELDS: dict[Kind, tuple[str, ...]] = {"endpoints": ("Id",), "events": ("EndpointId", "EventId")}
_TOP_SHAPE: dict[Kind, str] = {"endpoints": "PublicEndpoint", "events": "Event"}

# A device token (APNs: 64 hex digits; FCM: 150+ characters of [A-Za-z0-9:_-]) read as a column name.
_TOKEN = re.compile(r"[A-Za-z0-9:_\-]{32,}")

# Convention columns whose values are numbers in the API; everything else is a string or a timestamp.
NUMERIC_FIELDS = frozenset({"Location.Latitude", "Location.Longitude", "Session.Duration"})
# Convention columns that hold an ISO 8601 timestamp in the API.
TIMESTAMP_FIELDS = frozenset({"Timestamp", "Session.StartTimestamp", "Session.StopTimestamp", "EffectiveDate"})


@dataclass(frozen=True, slots=True)
class Column:
    """What one convention column means: a fixed field, or one key of a map member."""

    name: str
    role: Role
    key: str  # the dotted field path for "field"; the attribute/metric name for the map families
    multi_valued: bool = False  # a list of strings per row (endpoint Attributes, User.UserAttributes)

    @property
    def numeric(self) -> bool:
        return self.role == "metric" or self.name in NUMERIC_FIELDS


@cache
def _layout(kind: Kind) -> tuple[tuple[str, ...], tuple[tuple[str, Role, bool], ...]]:
    """(fixed column names, (map family prefix, role, multi-valued)) for one table, from the service model."""
    fixed: list[str] = list(_ID_FIELDS[kind])
    families: list[tuple[str, Role, bool]] = []

    def walk(shape_name: str, prefix: str) -> None:
        for member, member_shape in service_model.shape(shape_name).members.items():
            path = prefix + member
            if member_shape.type_name == "structure":
                walk(member_shape.name, path + ".")
            elif member_shape.type_name == "map":
                role: Role
                if member == "Metrics":
                    role = "metric"
                elif member == "UserAttributes":
                    role = "user_attribute"
                else:
                    role = "attribute"
                families.append((path + ".", role, member_shape.value.type_name == "list"))
            else:
                fixed.append(path)

    walk(_TOP_SHAPE[kind], "")
    return tuple(fixed), tuple(families)


def fixed_fields(kind: Kind) -> tuple[str, ...]:
    """The fixed convention names of one table, e.g. ``Id``, ``ChannelType``, ``Demographic.Locale``."""
    return _layout(kind)[0]


def families(kind: Kind) -> tuple[str, ...]:
    """The map-family prefixes of one table, e.g. ``Attributes.``, ``Metrics.``, ``User.UserAttributes.``."""
    return tuple(family[0] for family in _layout(kind)[1])


def classify(name: str, kind: Kind) -> Column | None:
    """The meaning of a column name in one table, or None when the convention has no such column."""
    if name in BOOKKEEPING or name == READ_ERROR:
        return Column(name, "bookkeeping", name)
    fixed, fams = _layout(kind)
    if name in fixed:
        return Column(name, "field", name)
    for prefix, role, multi_valued in fams:
        if name.startswith(prefix) and len(name) > len(prefix):
            return Column(name, role, name[len(prefix) :], multi_valued)
    return None


def nearest_names(name: str, kind: Kind) -> list[str]:
    """Convention names a misspelt or unmapped column most likely meant, best first.

    A close fixed name wins; otherwise the map families with the same suffix (``price`` -> ``Metrics.price``).
    """
    fixed, fams = _layout(kind)
    suffix = name.split(".", 1)[1] if "." in name else name
    in_families = [family[0] + suffix for family in fams]
    for candidates in (fixed, in_families):
        by_lower = {candidate.lower(): candidate for candidate in candidates}
        matches = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
        if matches:
            return [by_lower[match] for match in matches]
    return in_families


def table_mapping(column_mapping: Mapping[str, object] | None, kind: Kind) -> tuple[dict[str, str | None], bool]:
    """The mapping that applies to one table, and whether it was given for this table alone.

    ``column_mapping`` is either one dict for both tables or ``{"events": {...}, "endpoints": {...}}``.
    A mapping given for one table must name only columns that table has; a shared one may name
    columns of the other table too.
    """
    if not column_mapping:
        return {}, False
    if set(column_mapping) <= set(KINDS) and all(isinstance(v, Mapping) for v in column_mapping.values()):
        per_table = column_mapping.get(kind)
        return _checked(per_table if isinstance(per_table, Mapping) else {}, "column_mapping[" + repr(kind) + "]"), True
    return _checked(column_mapping, "column_mapping"), False


def _checked(mapping: Mapping[str, object], label: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for source, target in mapping.items():
        if not isinstance(source, str) or not (target is None or isinstance(target, str)):
            raise InputError(
                f"{label}: {source!r} -> {target!r}: keys and values must be column names (or None to drop)"
            )
        out[source] = target
    return out


def apply_mapping(
    names: Iterable[str], kind: Kind, column_mapping: Mapping[str, object] | None, *, where: str
) -> list[str | None]:
    """The convention name of each input column (None: dropped), checked against the convention.

    ``where`` names the file in error messages. Raises InputError when the mapping names a column
    the input lacks (for a per-table mapping), maps onto a name the convention does not have, or
    when an input column is neither a convention name nor mapped.
    """
    names = list(names)
    mapping, strict = table_mapping(column_mapping, kind)
    present = set(names)
    if strict:
        missing = [source for source in mapping if source not in present]
        if missing:
            raise InputError(
                f"{where}: column_mapping names {_quoted(missing)}, which the {kind} input does not have; "
                f"its columns are {listed(names)}"
            )
    # A shared mapping may target the other table's names, but only for columns this input lacks.
    bad_targets = [
        f"{source!r} -> {target!r} (nearest {', '.join(nearest_names(target, kind))})"
        for source, target in mapping.items()
        if target is not None
        and classify(target, kind) is None
        and (strict or source in present or all(classify(target, other) is None for other in KINDS))
    ]
    if bad_targets:
        raise InputError(
            f"{where}: column_mapping maps onto names the {kind} convention does not have: "
            f"{', '.join(bad_targets)}; see docs/columns.md for the convention names"
        )
    targets = [mapping[name] if name in mapping else name for name in names]
    unknown = [
        name
        for name, target in zip(names, targets, strict=True)
        if target is not None and name not in mapping and classify(name, kind) is None
    ]
    if unknown:
        raise InputError(f"{where}: {_unknown_message(unknown, kind)}")
    return targets


def _unknown_message(unknown: list[str], kind: Kind) -> str:
    """What is wrong with the unknown columns and what to do, quoting only those that look like names."""
    named = [name for name in unknown if not looks_like_data(name)]
    parts = []
    if len(named) < len(unknown):
        parts.append(f"{_looking_like_data(len(unknown) - len(named))}: is the header line missing?")
    if named:
        hints = "; ".join(f"{name!r}: nearest {', '.join(nearest_names(name, kind))}" for name in named[:10])
        other = next(k for k in KINDS if k != kind)
        if all(classify(name, other) is not None for name in named):
            hints += f"; these are {other} columns: is this the {other} table?"
        parts.append(
            f"unknown {kind} column{'s' if len(named) > 1 else ''} {_quoted(named)} ({hints}); "
            f"rename them to the convention, map them with column_mapping={{{named[0]!r}: '<convention name>'}} "
            f"or drop them with column_mapping={{{named[0]!r}: None}}"
        )
    return "; ".join(parts)


def looks_like_data(name: str) -> bool:
    """Whether a column name is more likely a value than a name: an email, a URL, a phone number or a device token.

    Such a name is not quoted in messages (it is probably a headerless CSV's first row, which may
    hold addresses). Erring towards "data" only costs a less specific message.
    """
    digits = sum(character.isdigit() for character in name)
    return (
        "@" in name
        or "://" in name
        or name.lower().startswith("www.")
        or (digits >= 5 and 2 * (digits + name.count("+")) > len(name))
        or (_TOKEN.fullmatch(name) is not None and 4 * digits >= len(name))
    )


def listed(names: Iterable[str], limit: int = 20) -> str:
    """Column names for a message: the first ``limit`` that look like names, quoted; the others only counted."""
    names = list(names)
    named = [name for name in names if not looks_like_data(name)]
    text = _quoted(named[:limit])
    if len(named) > limit:
        text += f" and {len(named) - limit} more"
    if len(named) < len(names):
        text = (text + " and " if text else "") + _looking_like_data(len(names) - len(named))
    return text


def _looking_like_data(count: int) -> str:
    if count == 1:
        return "1 column that looks like data, not a name"
    return f"{count} columns that look like data, not names"


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)

"""Normalised columns -> the JSON text of each row's ``Endpoint`` or ``Event`` map, column by column.

Building a Python dict per row and calling ``json.dumps`` is slow per event; here the
JSON is assembled with Arrow instead: each column is escaped once, keys and punctuation become
constant columns built straight from buffers (null where the value is absent), and all parts of a
body are concatenated row-wise in a single kernel call. Key order follows botocore's service model.
Absent values (null, NaN, empty text) leave no key at all, and a nested map or structure with no
present member is omitted too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from botocore.model import Shape

from airflow_provider_pinpoint import service_model
from airflow_provider_pinpoint.common.arrow import valid_mask
from airflow_provider_pinpoint.prepare import coerce

_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def escaped(strings: pa.Array) -> pa.Array:
    """The text of a string column as it goes between JSON quotes (escaped only where needed)."""
    if needs_escape(strings):
        strings = pc.replace_substring(strings, "\\", "\\\\")
        strings = pc.replace_substring(strings, '"', '\\"')
        for code in range(32):
            if pc.any(pc.match_substring(strings, chr(code))).as_py():
                strings = pc.replace_substring(strings, chr(code), f"\\u{code:04x}")
    return strings


def needs_escape(strings: pa.Array) -> bool:
    """Whether any value holds a quote, a backslash or a control character: one scan of the raw bytes."""
    if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
        return bool(pc.any(pc.match_substring_regex(strings, _NEEDS_ESCAPE)).as_py())
    _, offsets, data = strings.buffers()
    if data is None:
        return False
    width = np.int32 if pa.types.is_string(strings.type) else np.int64
    bounds = np.frombuffer(offsets, dtype=width)[[strings.offset, strings.offset + len(strings)]]
    octets = np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[1]]
    return bool(((octets < 0x20) | (octets == 0x22) | (octets == 0x5C)).any())


@dataclass(frozen=True, slots=True)
class Json:
    """The JSON text of one member's value in every row: ``opening`` (joined to the key), then ``parts``.

    ``present`` marks the rows that have the value; every part is null elsewhere, so the parts of
    absent values vanish when all parts of a body are concatenated in one pass.
    """

    opening: str
    parts: list[pa.Array]
    present: np.ndarray


def constant(text: str, present: np.ndarray) -> pa.Array:
    """``text`` in every row where ``present``, null elsewhere, built from buffers (no kernel)."""
    raw = text.encode()
    offsets = np.arange(0, (len(present) + 1) * len(raw), len(raw), dtype=np.int32)
    validity = None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(), len(present), [validity, pa.py_buffer(offsets), pa.py_buffer(raw * len(present))]
    )


def json_value(values: pa.Array) -> Json:
    present = valid_mask(values)
    if pa.types.is_timestamp(values.type):
        text, _ = coerce.to_iso(values, "", '"')
        return Json('"', [text], present)
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
        return Json("", [pc.cast(values, pa.string())], present)
    if pa.types.is_list(values.type):
        offsets = pc.subtract(values.offsets, values.offsets[0])
        quoted = pc.binary_join_element_wise('"', escaped(values.flatten()), '"', "")
        lists = pa.ListArray.from_arrays(offsets, quoted, mask=values.is_null())
        return Json("[", [pc.binary_join(lists, ","), constant("]", present)], present)
    return Json('"', [escaped(values), constant('"', present)], present)


def json_object(members: list[tuple[str, Json]], length: int) -> Json:
    """A JSON object from its members' text: a comma goes before a member only in rows where an
    earlier member is present, so no row needs trimming afterwards."""
    parts: list[pa.Array] = []
    earlier = np.zeros(length, dtype=bool)
    for key, value in members:
        head = json.dumps(key, ensure_ascii=False) + ":" + value.opening
        if not earlier.any():
            parts.append(constant(head, value.present))
        elif earlier.all():
            parts.append(constant("," + head, value.present))
        else:
            choice = pa.array(earlier.astype(np.int8), mask=~value.present)
            parts.append(pc.take(pa.array([head, "," + head], pa.string()), choice))
        parts.extend(value.parts)
        earlier |= value.present
    parts.append(constant("}", earlier))
    return Json("{", parts, earlier)


def _members(shape: Shape, prefix: str, columns: Mapping[str, pa.Array], length: int) -> list[tuple[str, Json]]:
    members = []
    for name, member_shape in shape.members.items():
        path = prefix + name
        if member_shape.type_name == "structure":
            inner = _members(member_shape, path + ".", columns, length)
            if inner:
                members.append((name, json_object(inner, length)))
        elif member_shape.type_name == "map":
            family = path + "."
            entries = [
                (column[len(family) :], json_value(values))
                for column, values in columns.items()
                if column.startswith(family)
            ]
            if entries:
                members.append((name, json_object(entries, length)))
        elif path in columns:
            members.append((name, json_value(columns[path])))
    return members


# Rows whose JSON parts are built at once: every key and punctuation mark is a column of its own
# until the final join, several times the size of the bodies; over a whole large endpoints table
# they would set the loader's peak memory.
_SLICE_ROWS = 65_536


def _bodies(shape_name: str, columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    """Every row's JSON object, concatenated from all its parts in one pass per slice of rows."""
    if length > _SLICE_ROWS:
        return pa.concat_arrays(
            [
                _bodies(shape_name, {name: column.slice(start, _SLICE_ROWS) for name, column in columns.items()}, rows)
                for start in range(0, length, _SLICE_ROWS)
                for rows in [min(_SLICE_ROWS, length - start)]
            ]
        )
    body = json_object(_members(service_model.shape(shape_name), "", columns, length), length)
    everywhere = np.ones(length, dtype=bool)
    parts = [constant("{", everywhere), *body.parts[:-1], constant("}", everywhere)]
    return pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")


def event_bodies(columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    """The ``Event`` map of every row, as JSON text."""
    return _bodies("Event", columns, length)


def endpoint_bodies(columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    """The ``Endpoint`` (PublicEndpoint) map of every row, as JSON text (``{}`` when nothing is set)."""
    return _bodies("PublicEndpoint", columns, length)

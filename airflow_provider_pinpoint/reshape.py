"""Normalised columns -> the JSON text of each row's ``Endpoint`` or ``Event`` map, column by column.

Building a Python dict per row and calling ``json.dumps`` costs microseconds per event; here the
JSON is assembled with Arrow string kernels instead: each column is escaped once, turned into
``,"Key":value`` fragments (null where the value is absent), and the fragments are concatenated
row-wise. Key order follows botocore's service model. Absent values (null, NaN, empty text) leave
no key at all, and a nested map or structure with no present member is omitted too.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from botocore.model import Shape

from airflow_provider_pinpoint import normalise, service_model

_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def escaped(strings: pa.Array) -> pa.Array:
    """The text of a string column as it goes between JSON quotes (escaped only where needed)."""
    if _needs_escape(strings):
        strings = pc.replace_substring(strings, "\\", "\\\\")
        strings = pc.replace_substring(strings, '"', '\\"')
        for code in range(32):
            if pc.any(pc.match_substring(strings, chr(code))).as_py():
                strings = pc.replace_substring(strings, chr(code), f"\\u{code:04x}")
    return strings


def _needs_escape(strings: pa.Array) -> bool:
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


def member(key: str, values: pa.Array, lead: str = ",") -> pa.Array:
    """``,"key":<JSON of the value>`` for each row of a normalised column; null where the value is absent.

    The key's quoting and the value's JSON text are produced by one concatenation per column.
    """
    prefix = lead + json.dumps(key, ensure_ascii=False) + ":"
    if pa.types.is_timestamp(values.type):
        text, _ = normalise.to_iso(values, prefix + '"', '"')
        return text
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
        return pc.binary_join_element_wise(prefix, pc.cast(values, pa.string()), "")
    if pa.types.is_list(values.type):
        offsets = pc.subtract(values.offsets, values.offsets[0])
        quoted = pc.binary_join_element_wise('"', escaped(values.flatten()), '"', "")
        lists = pa.ListArray.from_arrays(offsets, quoted, mask=values.is_null())
        return pc.binary_join_element_wise(prefix + "[", pc.binary_join(lists, ","), "]", "")
    return pc.binary_join_element_wise(prefix + '"', escaped(values), '"', "")


def _joined(fragments: list[pa.Array]) -> pa.Array:
    """The fragments of each row concatenated: ``,"a":1,"b":2``, or an empty string when all are absent.

    (Arrow's ``null_handling="skip"`` would be the obvious tool, but it drops rows whose inputs are
    all null, so nulls are replaced by empty strings instead.)
    """
    return pc.binary_join_element_wise(*fragments, "", null_handling="replace", null_replacement="")


def nested(key: str, fragments: list[pa.Array], led: bool) -> pa.Array:
    """``,"key":{...}`` from member fragments; null where every member is absent.

    When the first fragment is a required member (``led``, written without a leading comma), the
    object is one concatenation, present exactly where that member is: a row that has other members
    but lacks a required one is rejected by validation, so its text does not matter.
    """
    opening = "," + json.dumps(key, ensure_ascii=False) + ":{"
    fragments, led = _with_lead(fragments, led)
    if led:
        text = pc.binary_join_element_wise(opening, *fragments, "}", "", null_handling="replace", null_replacement="")
        return normalise.with_validity(text, np.asarray(fragments[0].is_valid().to_numpy(zero_copy_only=False)))
    joined = _joined(fragments)
    text = pc.binary_join_element_wise(opening, pc.utf8_slice_codeunits(joined, 1), "}", "")
    lengths = pc.binary_length(joined).to_numpy(zero_copy_only=False)
    return normalise.with_validity(text, lengths > 0)


def _fragments(shape: Shape, prefix: str, columns: Mapping[str, pa.Array]) -> tuple[list[pa.Array], bool]:
    """The member fragments of one structure, and whether the first is a required member (``led``)."""
    fragments = []
    lead = next((name for name in shape.required_members if prefix + name in columns), None)
    if lead is not None:
        fragments.append(member(lead, columns[prefix + lead], lead=""))
    for name, member_shape in shape.members.items():
        path = prefix + name
        if name == lead:
            continue
        if member_shape.type_name == "structure":
            inner, led = _fragments(member_shape, path + ".", columns)
            if inner:
                fragments.append(nested(name, inner, led))
        elif member_shape.type_name == "map":
            family = path + "."
            entries = [
                member(column[len(family) :], values) for column, values in columns.items() if column.startswith(family)
            ]
            if entries:
                fragments.append(nested(name, entries, led=False))
        elif path in columns:
            fragments.append(member(name, columns[path]))
    return fragments, lead is not None


def _with_lead(fragments: list[pa.Array], led: bool) -> tuple[list[pa.Array], bool]:
    """Put first a fragment present in every row, without its comma, if there is one.

    Then the object needs no comma trimming over its whole text (only over that one short column).
    """
    if led:
        return fragments, True
    for index, fragment in enumerate(fragments):
        if fragment.null_count == 0:
            rest = fragments[:index] + fragments[index + 1 :]
            return [pc.utf8_slice_codeunits(fragment, 1), *rest], True
    return fragments, False


def _bodies(shape_name: str, columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    fragments, led = _fragments(service_model.shape(shape_name), "", columns)
    if not fragments:
        return pa.array(["{}"] * length, pa.string())
    fragments, led = _with_lead(fragments, led)
    if led:
        return pc.binary_join_element_wise("{", *fragments, "}", "", null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(_joined(fragments), 1), "}", "")


def event_bodies(columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    """The ``Event`` map of every row, as JSON text."""
    return _bodies("Event", columns, length)


def endpoint_bodies(columns: Mapping[str, pa.Array], length: int) -> pa.Array:
    """The ``Endpoint`` (PublicEndpoint) map of every row, as JSON text (``{}`` when nothing is set)."""
    return _bodies("PublicEndpoint", columns, length)


def event_ids(
    given: pa.Array | None, endpoint_ids: pa.Array, bodies: pa.Array, sources: pa.Array, rows: pa.Array
) -> pa.Array:
    """The EventId of each row: the given one, or one derived from the row.

    A derived id is 32 hex digits: a CRC-32 of the row's source name, a CRC-32 of its content (endpoint
    id and canonical Event JSON) and its row number in the source. The same input gives the same ids
    on every run, also on a resumed run that skips rows already sent (an occurrence count among
    identical rows would shift then); identical rows still get different ids, by their row numbers;
    and an edited row gets a new id.
    """
    if given is not None and given.null_count == 0:
        return given
    content = pc.cast(pc.binary_join_element_wise(endpoint_ids, bodies, "\x1f"), pa.binary())
    content_crc = np.fromiter(map(zlib.crc32, content.to_pylist()), dtype=np.uint64, count=len(content))
    encoded = pc.dictionary_encode(sources)
    source_crc = np.array([zlib.crc32(name.encode()) for name in encoded.dictionary.to_pylist()], dtype=np.uint64)
    high = (source_crc[encoded.indices.to_numpy(zero_copy_only=False)] << np.uint64(32)) | content_crc
    low = pc.cast(rows, pa.uint64()).to_numpy(zero_copy_only=False)
    derived = _hex(np.column_stack([high, low]))
    if given is None:
        return derived
    return pc.if_else(given.is_valid(), given, derived)


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex(words: np.ndarray) -> pa.Array:
    """Lower-case hex text of each row of big-endian uint64 words, without a Python loop."""
    octets = np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(len(words), words.shape[1] * 8)
    digits = np.empty((len(words), octets.shape[1] * 2), dtype=np.uint8)
    digits[:, 0::2] = _HEX_DIGITS[octets >> 4]
    digits[:, 1::2] = _HEX_DIGITS[octets & 15]
    width = digits.shape[1]
    offsets = np.arange(0, (len(words) + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(len(words), pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()))

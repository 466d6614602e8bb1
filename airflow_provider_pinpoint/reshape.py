"""Normalised columns -> the JSON text of each row's ``Endpoint`` or ``Event`` map, column by column.

Building a Python dict per row and calling ``json.dumps`` costs microseconds per event; here the
JSON is assembled with Arrow instead: each column is escaped once, keys and punctuation become
constant columns built straight from buffers (null where the value is absent), and all parts of a
body are concatenated row-wise in a single kernel call. Key order follows botocore's service model.
Absent values (null, NaN, empty text) leave no key at all, and a nested map or structure with no
present member is omitted too.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from botocore.model import Shape

from airflow_provider_pinpoint import normalise, service_model

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
class _Json:
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


def _value(values: pa.Array) -> _Json:
    present = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_timestamp(values.type):
        text, _ = normalise.to_iso(values, "", '"')
        return _Json('"', [text], present)
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
        return _Json("", [pc.cast(values, pa.string())], present)
    if pa.types.is_list(values.type):
        offsets = pc.subtract(values.offsets, values.offsets[0])
        quoted = pc.binary_join_element_wise('"', escaped(values.flatten()), '"', "")
        lists = pa.ListArray.from_arrays(offsets, quoted, mask=values.is_null())
        return _Json("[", [pc.binary_join(lists, ","), constant("]", present)], present)
    return _Json('"', [escaped(values), constant('"', present)], present)


def _object(members: list[tuple[str, _Json]], length: int) -> _Json:
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
    return _Json("{", parts, earlier)


def _members(shape: Shape, prefix: str, columns: Mapping[str, pa.Array], length: int) -> list[tuple[str, _Json]]:
    members = []
    for name, member_shape in shape.members.items():
        path = prefix + name
        if member_shape.type_name == "structure":
            inner = _members(member_shape, path + ".", columns, length)
            if inner:
                members.append((name, _object(inner, length)))
        elif member_shape.type_name == "map":
            family = path + "."
            entries = [
                (column[len(family) :], _value(values))
                for column, values in columns.items()
                if column.startswith(family)
            ]
            if entries:
                members.append((name, _object(entries, length)))
        elif path in columns:
            members.append((name, _value(columns[path])))
    return members


# Rows whose JSON parts are built at once: every key and punctuation mark is a column of its own
# until the final join, several times the size of the bodies; over a whole endpoints table of
# 500,000 rows they were the loader's peak memory.
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
    body = _object(_members(service_model.shape(shape_name), "", columns, length), length)
    everywhere = np.ones(length, dtype=bool)
    parts = [constant("{", everywhere), *body.parts[:-1], constant("}", everywhere)]
    return pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")


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

    A derived id is 32 hex digits: a CRC-32 of the row's source name, a 32-bit hash of its content
    (endpoint id and canonical Event JSON, see :func:`_content_hashes`) and its row number in the
    source. The same input gives the same ids on every run, also on a resumed run that skips rows
    already sent (an occurrence count among identical rows would shift then); identical rows still
    get different ids, by their row numbers; and an edited row gets a new id.
    """
    if given is not None and given.null_count == 0:
        return given
    content_hash = _content_hashes(endpoint_ids, bodies)
    encoded = pc.dictionary_encode(sources)
    source_crc = np.array([zlib.crc32(name.encode()) for name in encoded.dictionary.to_pylist()], dtype=np.uint64)
    high = (source_crc[encoded.indices.to_numpy(zero_copy_only=False)] << np.uint64(32)) | content_hash
    low = pc.cast(rows, pa.uint64()).to_numpy(zero_copy_only=False)
    derived = _hex(np.column_stack([high, low]))
    if given is None:
        return derived
    return pc.if_else(given.is_valid(), given, derived)


# The content hash: the j-th 8-byte word of a row (from 0) is multiplied by _MULTIPLIER ** (j + 1), the
# products and the row's length are summed modulo 2**64 and the sum goes through MurmurHash3's 64-bit
# finaliser (a bijection that spreads every bit over all others).
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_FINALISER = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_NUL_PADDING = pa.array(["\0" * count for count in range(8)], pa.string())
# Rows whose words are hashed at once: a few MB of temporary arrays that stay in cache, rather than
# several arrays the size of the batch's content (faster as well as smaller).
_HASH_ROWS = 8192


def _content_hashes(endpoint_ids: pa.Array, bodies: pa.Array) -> np.ndarray:
    """A 32-bit hash of each row's endpoint id and body, from the Arrow buffers without a Python call per row.

    Each row is joined as ``endpoint id, 0x1f, body, 0x1f`` and padded with NUL bytes to a multiple
    of 8 bytes, so that every row starts on a word of the joined buffer and is read as little-endian
    64-bit words wherever it sits in the batch. The hash depends only on the row's bytes (not on the
    rows around it, the batch or the machine) and on every one of them: each word's multiplier is
    odd, so changing any byte changes the 64-bit sum, and the finaliser keeps it different; of that
    the top 32 bits are kept, which, as with any 32-bit hash, miss one edit in about 4 billion.
    """
    if len(bodies) == 0:
        return np.zeros(0, dtype=np.uint64)
    lengths = pc.add(pc.binary_length(endpoint_ids), pc.binary_length(bodies)).to_numpy(zero_copy_only=False)
    padding = pc.take(_NUL_PADDING, pa.array((-(lengths.astype(np.int64) + 2)) % 8))
    content = pc.binary_join_element_wise(endpoint_ids, bodies, padding, "\x1f")
    _, offsets, data = content.buffers()
    width = np.int32 if pa.types.is_string(content.type) else np.int64
    bounds = np.frombuffer(offsets, dtype=width)[content.offset : content.offset + len(content) + 1]
    words = np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[-1]].view("<u8")
    starts = (bounds[:-1] - bounds[0]) // 8
    counts = np.diff(bounds) // 8
    powers = np.cumprod(np.full(int(counts.max()), _MULTIPLIER, dtype=np.uint64))
    hashes = lengths.astype(np.uint64)
    for first in range(0, len(starts), _HASH_ROWS):
        row_starts, row_words = starts[first : first + _HASH_ROWS], counts[first : first + _HASH_ROWS]
        begin, end = row_starts[0], row_starts[-1] + row_words[-1]
        terms = powers.take(np.arange(begin, end, dtype=width) - np.repeat(row_starts, row_words))
        np.multiply(terms, words[begin:end], out=terms)
        hashes[first : first + _HASH_ROWS] += np.add.reduceat(terms, row_starts - begin)
    for multiplier in _FINALISER:
        hashes ^= hashes >> np.uint64(33)
        hashes *= multiplier
    hashes ^= hashes >> np.uint64(33)
    return hashes >> np.uint64(32)


# Byte -> its two lower-case hex digits, as a little-endian pair so that the high digit comes first in memory.
_HEX_PAIRS = np.array([ord(f"{octet:02x}"[0]) | ord(f"{octet:02x}"[1]) << 8 for octet in range(256)], dtype="<u2")


def _hex(words: np.ndarray) -> pa.Array:
    """Lower-case hex text of each row of big-endian uint64 words, without a Python loop."""
    octets = np.ascontiguousarray(words, dtype=">u8").view(np.uint8)
    digits = _HEX_PAIRS.take(octets)
    width = digits.shape[1] * 2
    offsets = np.arange(0, (len(words) + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(len(words), pa.py_buffer(offsets), pa.py_buffer(digits))

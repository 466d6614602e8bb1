"""The EventId of each event row: the one given, or one derived from the row's content.

Derived ids make a rerun send the same ids (so the results table and consumers can tell a resend
from a new event) while identical rows still get different ids.
"""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def event_ids_for(
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

"""A 128-bit hash of each row's normalised values, computed column by column with numpy.

The sync state compares endpoint rows by what they would send. The JSON body is a deterministic
function of the normalised (validated, coerced) columns, so hashing those columns tells the same
without building the body: bodies are then built only for the rows that changed. Hashing the body
text instead took one Python call per row (blake2b) on top of building every body.

How: each column gives every row two 64-bit lanes. Text of up to 256 bytes is cut into 8-byte
words, each mixed with a key of its position through the splitmix64 finaliser and summed (the
second lane weighs the mixed words by odd keys of its own), then mixed with the length; longer
values are hashed whole with blake2b, one call each; numbers by their bits; lists
by their elements' hashes, each mixed with its position. Nulls, empty lists and values have
distinct hashes. A row's hash sums its columns', each times an odd key made from the column's name
and kind, plus a key of :data:`FORMAT` and the set of columns, through the finaliser again; so a column added or removed, a value moved to another
column, or a change of :data:`FORMAT` (bump it whenever the body code changes what a body says)
makes every row count as changed.

This is not a cryptographic hash: it guards against accidental collisions (two 64-bit lanes with
independent multipliers), not crafted ones. A collision could only ever make a changed row look
unchanged; see docs/sync.md for the odds.
"""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import blake2b

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Part of every row's hash: bump when the body code changes what a body holds for the same values,
# so that the next sync sends every endpoint once rather than skip a row whose body changed.
FORMAT = "endpoint-values-v1"

_LANES = 2
# Values longer than _LONG bytes are hashed one by one (blake2b); shorter ones a word at a time.
_LONG = 256
_SAMPLE = 1_024
_NULL = np.uint64(0x9E3779B97F4A7C15)
_word_key_cache: dict[tuple[int, int], np.ndarray] = {}
_LANE_KEYS = (np.uint64(0x2545F4914F6CDD1D), np.uint64(0x5851F42D4C957F2D))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise (uint64 wraps around as intended). The first step makes
    a new array; the others work in it in place (half the temporaries of millions of values)."""
    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _key(text: str) -> np.ndarray:
    """Two 64-bit keys, one per lane, for ``text``."""
    return np.frombuffer(blake2b(text.encode(), digest_size=8 * _LANES).digest(), dtype=np.uint64).copy()


def _word_keys(words: int, lane: int) -> np.ndarray:
    """Pseudo-random keys of one lane for the 8-byte words ``0..words`` of a value (odd for lane 1)."""
    size = 1 << max(int(words - 1).bit_length(), 3)
    if (size, lane) not in _word_key_cache:
        positions = np.arange(size, dtype=np.uint64)
        with np.errstate(over="ignore"):
            mixed = _mix(positions * np.uint64(0x9E3779B97F4A7C15) + _LANE_KEYS[lane])
        _word_key_cache[size, lane] = mixed | np.uint64(lane)
    return _word_key_cache[size, lane]


def _text(array: pa.Array) -> np.ndarray:
    if len(array) > 4 * _SAMPLE and len(pc.unique(array.slice(0, _SAMPLE))) * 4 < _SAMPLE:
        encoded = pc.dictionary_encode(array)  # few distinct values (a sample says): hash each once
        if not len(encoded.dictionary):  # nothing but nulls: column_hash marks them
            return np.zeros((len(array), _LANES), dtype=np.uint64)
        if len(encoded.dictionary) * 2 < len(array):
            return _text(encoded.dictionary)[encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)]
    width = np.int64 if pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type) else np.int32
    _, offsets_buffer, data = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[array.offset : array.offset + len(array) + 1].astype(np.int64)
    start = int(offsets[0])
    offsets -= start
    lengths = np.diff(offsets)
    sized = lengths.astype(np.uint64) * np.uint64(0xFF51AFD7ED558CCD)
    out = np.empty((len(array), _LANES), dtype=np.uint64)
    span = int(offsets[-1])  # the bytes of these values only: a slice's column shares its whole buffer
    octets = np.zeros(0, dtype=np.uint8) if data is None else np.frombuffer(data, dtype=np.uint8)[start : start + span]
    every_word = _words_at(octets)
    used = -(-np.minimum(lengths, _LONG) // 8)  # the words each value fills; longer values are hashed below
    totals = [np.zeros(len(array), dtype=np.uint64) for _ in range(_LANES)]
    for word in range(int(used.max(initial=0))):
        # Each word is mixed with its position's key before the sum, so a change of any byte moves
        # every bit of the lane (a plain weighted sum carried a byte's change only upwards); lane 1
        # weighs the mixed words by odd keys of its own. Word by word over the values that fill it:
        # no padded matrix, and a value's sum is the same whatever the longest value beside it.
        fills = used > word
        fill = None if fills.all() else np.flatnonzero(fills)
        starts = offsets[:-1] if fill is None else offsets[fill]
        left = lengths if fill is None else lengths[fill]
        value = every_word[starts + 8 * word] & _BYTE_MASKS[np.clip(left - 8 * word, 0, 8)]
        spread = _mix(value ^ _word_keys(word + 1, 0)[word])
        for lane in range(_LANES):
            weighted = spread * _word_keys(word + 1, lane)[word] if lane else spread
            if fill is None:
                totals[lane] += weighted
            else:
                totals[lane][fill] += weighted
    for lane in range(_LANES):
        out[:, lane] = _mix((totals[lane] ^ sized) + _LANE_KEYS[lane])
    for row in np.flatnonzero(lengths > _LONG):  # few, each hashed whole by blake2b
        value = octets[int(offsets[row]) : int(offsets[row + 1])].tobytes()
        out[row] = np.frombuffer(blake2b(value, digest_size=8 * _LANES, person=b"long value").digest(), np.uint64)
    return out


_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _words_at(octets: np.ndarray) -> np.ndarray:
    """The 8 bytes starting at each byte of ``octets``, read as one little-endian word (the bytes
    past the end read as zeros): a strided view over one padded copy, so that a value's words are
    gathered a word at a time rather than scattered a byte at a time."""
    padded = np.zeros(len(octets) + 8, dtype=np.uint8)
    padded[: len(octets)] = octets
    return np.ndarray((len(octets) + 1,), dtype="<u8", buffer=padded, strides=(1,))


def _segment_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per segment ``offsets[i]..offsets[i+1]`` the sum of ``values`` (wrapping)."""
    totals = np.zeros(len(values) + 1, dtype=np.uint64)
    np.cumsum(values, out=totals[1:])
    return totals[offsets[1:]] - totals[offsets[:-1]]


def _numbers(array: pa.Array) -> np.ndarray:
    if pa.types.is_boolean(array.type):
        array = array.cast(pa.uint8())
    elif pa.types.is_temporal(array.type):
        array = array.cast(pa.int64())
    values = array.fill_null(0).to_numpy(zero_copy_only=False)
    if values.dtype.kind == "f":
        bits = values.astype(np.float64).view(np.uint64)
    else:
        bits = values.astype(np.int64).view(np.uint64)
    lanes = bits[:, None] + np.arange(1, _LANES + 1, dtype=np.uint64)[None, :] * np.uint64(0xC2B2AE3D27D4EB4F)
    return _mix(lanes)


def _list(array: pa.Array) -> np.ndarray:
    offsets = np.asarray(array.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    start = int(offsets[0])
    offsets = offsets - start
    items = array.values.slice(start, int(offsets[-1]))  # what a null list spans is hashed, then overwritten
    hashes = column_hash(items)
    lengths = np.diff(offsets)
    positions = np.arange(len(items), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    placed = positions.astype(np.uint64) * np.uint64(0x9FB21C651E98DF25)
    sized = lengths.astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)
    out = np.empty((len(array), _LANES), dtype=np.uint64)
    for lane in range(_LANES):
        spread = _mix(hashes[:, lane] ^ placed)
        out[:, lane] = _mix((_segment_sums(spread, offsets) ^ sized) + _LANE_KEYS[lane])
    return out


def column_hash(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each value's hash, shape (n, 2); raises TypeError for a column of a kind it cannot hash."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], array.type)
    kind = array.type
    if pa.types.is_dictionary(kind):
        return column_hash(array.dictionary_decode())
    with np.errstate(over="ignore"):
        if pa.types.is_null(kind):
            out = np.zeros((len(array), _LANES), dtype=np.uint64)
        elif (
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind)
        ):
            out = _text(array)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            out = _list(array)
        elif (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_temporal(kind)
        ):
            out = _numbers(array)
        else:
            raise TypeError(f"no values hash for a column of type {kind}")
        if array.null_count:
            null = ~np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            out[null] = _NULL
    return out


def _kind(kind: pa.DataType) -> str:
    """The type as hashed: the width of a text or list offset does not change a body."""
    if pa.types.is_dictionary(kind):
        return _kind(kind.value_type)
    if pa.types.is_large_string(kind):
        return "string"
    if pa.types.is_large_binary(kind):
        return "binary"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"list<{_kind(kind.value_type)}>"
    return str(kind)


def row_hashes(columns: Mapping[str, pa.Array], length: int) -> np.ndarray | None:
    """Each row's hash over every column (shape (length, 2)), or None when a column is of a kind
    not hashed here (the caller then compares nothing: every row counts as changed)."""
    names = sorted(columns)
    total = np.zeros((length, _LANES), dtype=np.uint64) + _key(FORMAT + "|" + ",".join(names))
    for name in names:
        column = columns[name]
        try:
            hashes = column_hash(column)
        except TypeError:
            return None
        with np.errstate(over="ignore"):  # times an odd key of its own: a bijection per column
            hashes *= _key(f"{name}\0{_kind(column.type)}") | np.uint64(1)  # column_hash's own array
            total += hashes
    with np.errstate(over="ignore"):
        return _mix(total)

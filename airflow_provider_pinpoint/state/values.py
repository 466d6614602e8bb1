"""A 128-bit hash of each row's normalised values, computed a column at a time with numpy.

The sync state compares endpoint rows by what they would send. The JSON body is a deterministic
function of the normalised (validated, coerced) columns, so hashing those columns tells the same
without building the body: bodies are then built only for the rows that changed. Hashing the body
text instead took one Python call per row (blake2b) on top of building every body.

How: a row's hash is two 64-bit lanes, each a sum of terms, one term per 8-byte word of its values.
Every column has keys of its own, made from its name and kind: a key per word position (and for
the length, a null, a long value) and an odd weight per position. A text value of up to 256 bytes
is cut into words; each word, xored with its position's key, goes through the splitmix64
finaliser (so a change of any byte moves every bit), less what a word of zeros gives there (so
that zeros past a value's end add nothing); lane 0 adds the mixed words, lane 1 adds them times
their weights; the value's length is one more such word. Longer values are hashed whole
with blake2b, numbers by their bits, a null by a key of its own. A list's items are hashed as a
column of their own, each item's two lanes then mixed with its position, one lane at a time, and
summed with the list's length (items of few distinct values are each hashed once, and short lists
of them take their lanes from a table of every such list, which gives the same). The lanes of a
row start from a key of :data:`FORMAT` and the set of columns, and go through the finaliser once
more. So a column added or removed, a value moved to
another column, or a change of :data:`FORMAT` (bump it whenever the body code changes what a body
says, or this hash changes) makes every row count as changed.

Format ``endpoint-values-v2`` (this one) sums every column's words into the row's lanes, a block
of rows at a time, for about half the CPU of v1, which mixed each column's lanes on their own
first. A state written by v1 matches no row: the first sync after the upgrade sends every
endpoint once.

This is not a cryptographic hash: it guards against accidental collisions (two 64-bit lanes with
independent weights), not crafted ones. A collision could only ever make a changed row look
unchanged; see docs/sync.md for the odds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from hashlib import blake2b

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Part of every row's hash: bump when the body code changes what a body holds for the same values,
# so that the next sync sends every endpoint once rather than skip a row whose body changed.
FORMAT = "endpoint-values-v2"

_LANES = 2
# Values longer than _LONG bytes are hashed one by one (blake2b); shorter ones a word at a time.
_LONG = 256
_WORDS = _LONG // 8
# Key slots after the word positions: a value's length, a long value, a null, a list item's position.
_LENGTH, _WHOLE, _NULL, _PLACE = _WORDS, _WORDS + 1, _WORDS + 2, _WORDS + 3
_SAMPLE = 1_024
_GLANCE, _ITEM_SAMPLE = 64, 256  # a list column's items: a glance, then a sample
_FEW_BYTES = 24
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_STEPS = (
    (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9)),
    (np.uint64(27), np.uint64(0x94D049BB133111EB)),
    (np.uint64(31), None),
)


def _mix(x: np.ndarray, spare: np.ndarray | None = None) -> np.ndarray:
    """splitmix64's finaliser in place (uint64 wraps around as intended), with ``spare`` (as long
    as ``x``) for the shifted copies: each step writes into one of two arrays, since a fresh array
    per step cost more than the arithmetic (memory handed back and taken again)."""
    spare = np.empty_like(x) if spare is None else spare
    for shift, factor in _MIX_STEPS:
        np.right_shift(x, shift, out=spare)
        np.bitwise_xor(x, spare, out=x)
        if factor is not None:
            np.multiply(x, factor, out=x)
    return x


@lru_cache(maxsize=1_024)
def _keys(name: str) -> np.ndarray:
    """The keys of a column (or of a list column's items), shape (2, slots): row 0 the keys xored
    into each word before the finaliser, row 1 the odd weights of lane 1; read-only."""
    seeds = np.frombuffer(blake2b(name.encode(), digest_size=8 * _LANES).digest(), dtype=np.uint64)
    with np.errstate(over="ignore"):
        keys = np.arange(_PLACE + 1, dtype=np.uint64)[None, :] * _GOLDEN + seeds[:, None]
        _mix(keys[0])
        _mix(keys[1])
    keys[1] |= np.uint64(1)
    keys.flags.writeable = False
    return keys


def _term(lanes: np.ndarray, words: np.ndarray, slot: int, keys: np.ndarray, spare: np.ndarray) -> None:
    """Add ``words`` (consumed) as the words of ``slot``: each xored with the slot's key and mixed,
    added as it is to lane 0 and times the slot's odd weight to lane 1."""
    np.bitwise_xor(words, keys[0, slot], out=words)
    mixed = _mix(words, spare)
    lanes[0] += mixed
    np.multiply(mixed, keys[1, slot], out=mixed)
    lanes[1] += mixed


def _text(array: pa.Array, keys: np.ndarray) -> np.ndarray:
    """Each value's two lanes, shape (2, n), before nulls are marked."""
    n = len(array)
    if not n:
        return _nothing(array)
    width = np.int64 if pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type) else np.int32
    _, offsets_buffer, data = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[array.offset : array.offset + n + 1].astype(np.int64)
    start = int(offsets[0])
    offsets -= start
    span = int(offsets[-1])  # the bytes of these values only: a slice's column shares its whole buffer
    # Few distinct values (a sample says), long enough that hashing each once and taking its lanes
    # costs less than hashing every row (Arrow's dictionary costs about what three words do).
    if n > 4 * _SAMPLE and span > _FEW_BYTES * n and len(pc.unique(array.slice(0, _SAMPLE))) * 4 < _SAMPLE:
        encoded = pc.dictionary_encode(array)
        if len(encoded.dictionary) * 2 < n:
            return _dictionary(encoded, keys)
    octets = np.zeros(0, dtype=np.uint8) if data is None else np.frombuffer(data, dtype=np.uint8)[start : start + span]
    lengths = np.diff(offsets)
    shortest, longest = int(lengths.min()), int(lengths.max())
    if shortest == longest <= _LONG:
        return _same_length(octets, n, longest, keys)
    most = (min(longest, _LONG) + 7) >> 3  # words up to _LONG bytes; longer values go whole
    # The word positions most values fill are computed over every row: a value that ended before
    # one reads zeros there, which the key of zeros (taken off) makes add nothing. The rare later
    # positions go over the few values that fill them.
    every = 0
    while every < most and np.count_nonzero(lengths > 8 * every) * 4 >= n:
        every += 1
    words = np.zeros((span >> 3) + every + 2, dtype="<u8")
    words.view(np.uint8)[:span] = octets
    # The lanes start from each value's length term, less what the words of zeros past its end add,
    # taken from a table of the lengths there are (a value longer than _LONG is hashed whole below).
    table = _length_terms(min(longest, _LONG), every, keys)
    lanes = np.empty((_LANES, n), dtype=np.uint64)
    for lane in range(_LANES):  # (clipped: a take into ``out`` that checks its indices is buffered, slow)
        np.take(table[lane], lengths, out=lanes[lane], mode="clip")
    low, high, spare = (np.empty(n, dtype=np.uint64) for _ in range(3))
    # A value's word is read from the two aligned words around it: the first shifted down by where
    # the value starts in it, the second shifted up into the top (by 64, to nothing, when aligned).
    at = offsets[:-1] >> 3
    down = (offsets[:-1] & 7).view(np.uint64)
    down <<= np.uint64(3)
    up = np.uint64(64) - down
    left = np.empty(n, dtype=np.int64)
    if every:
        np.take(words, at, out=high, mode="clip")
    for word in range(every):  # the key of each position inside the finaliser: a change of any byte moves every bit
        low, high = high, low
        at += 1
        np.take(words, at, out=high, mode="clip")
        value = np.right_shift(low, down, out=low)
        value |= np.left_shift(high, up, out=spare)
        if shortest < 8 * (word + 1):  # keep each value's own bytes (none of a value already ended)
            np.subtract(lengths, 8 * word, out=left)  # the bytes left: clipped to 0..8, a mask of them
            np.take(_BYTE_MASKS, left, out=spare, mode="clip")
            value &= spare
        _term(lanes, value, word, keys, spare)
    for word in range(every, most):
        fill = np.flatnonzero(lengths > 8 * word)
        lanes[:, fill] += _sparse(words, offsets[fill] + 8 * word, lengths[fill] - 8 * word, word, keys)
    if longest > _LONG:
        for row in np.flatnonzero(lengths > _LONG):  # few, each hashed whole by blake2b
            text = octets[int(offsets[row]) : int(offsets[row + 1])].tobytes()
            digest = np.frombuffer(blake2b(text, digest_size=8 * _LANES, person=b"long value").digest(), np.uint64)
            lanes[:, row] = _mix(digest ^ keys[:, _WHOLE])
    return lanes


def _length_terms(longest: int, every: int, keys: np.ndarray) -> np.ndarray:
    """For each length up to ``longest``, shape (2, longest + 1): what the length adds to the lanes
    as its word, less what words of zeros add at the first ``every`` positions."""
    lengths = np.arange(longest + 1, dtype=np.uint64)
    terms = np.zeros((_LANES, longest + 1), dtype=np.uint64)
    _term(terms, lengths, _LENGTH, keys, np.empty_like(lengths))
    zeros = _mix(keys[0, :every].copy())  # what a word of zeros mixes to, at each position
    terms[0] -= zeros.sum(dtype=np.uint64)
    terms[1] -= (zeros * keys[1, :every]).sum(dtype=np.uint64)
    return terms


def _same_length(octets: np.ndarray, n: int, length: int, keys: np.ndarray) -> np.ndarray:
    """The lanes of ``n`` values of ``length`` bytes each (up to _LONG), back to back in ``octets``:
    value i's word w is read in place, 8 bytes at byte i * length + 8 * w (a strided view), its
    bytes past the value masked off; the length's term is the same for every row."""
    words = np.zeros(((n * length) >> 3) + 2, dtype="<u8")  # room for the last value's word read past its end
    words.view(np.uint8)[: n * length] = octets
    lanes = np.empty((_LANES, n), dtype=np.uint64)
    lanes[:] = _length_terms(length, (length + 7) >> 3, keys)[:, length:]
    value, spare = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.uint64)
    for word in range((length + 7) >> 3):
        place = np.ndarray((n,), dtype="<u8", buffer=words, offset=8 * word, strides=(length,))
        if length - 8 * word < 8:
            np.bitwise_and(place, _BYTE_MASKS[length - 8 * word], out=value)
        else:
            np.copyto(value, place)
        _term(lanes, value, word, keys, spare)
    return lanes


def _sparse(words: np.ndarray, starts: np.ndarray, left: np.ndarray, word: int, keys: np.ndarray) -> np.ndarray:
    """The lanes of the words at byte ``starts`` (of which ``left`` bytes, up to 8, are the value's)
    as the words of position ``word``, less what a word of zeros adds (as on the rows computed whole)."""
    down = (starts & 7).view(np.uint64) << np.uint64(3)
    value = words[starts >> 3] >> down
    value |= words[(starts >> 3) + 1] << (np.uint64(64) - down)
    value &= _BYTE_MASKS[np.clip(left, 0, 8)]
    zero = _mix(keys[0, word : word + 1].copy())[0]
    part = np.empty((_LANES, len(starts)), dtype=np.uint64)
    part[0] = -zero
    part[1] = -(zero * keys[1, word])
    _term(part, value, word, keys, np.empty_like(value))
    return part


_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _dictionary(array: pa.DictionaryArray, keys: np.ndarray) -> np.ndarray:
    """Each value's two lanes through its dictionary's (each distinct value hashed once)."""
    hashed = _lanes(array.dictionary, keys)
    indices = array.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return np.stack([np.take(hashed[lane], indices) for lane in range(_LANES)]) if len(hashed[0]) else _nothing(array)


def _nothing(array: pa.Array) -> np.ndarray:
    """Lanes of zeros, one per value of ``array`` (for nulls, marked later, and as a start)."""
    return np.zeros((_LANES, len(array)), dtype=np.uint64)


def _numbers(array: pa.Array, keys: np.ndarray) -> np.ndarray:
    """Each value's two lanes, shape (2, n): its bits as one word."""
    if pa.types.is_boolean(array.type):
        array = array.cast(pa.uint8())
    elif pa.types.is_temporal(array.type):
        array = array.cast(pa.int64())
    values = array.fill_null(0).to_numpy(zero_copy_only=False)
    if values.dtype.kind == "f":
        bits = values.astype(np.float64).view(np.uint64)
    else:
        bits = values.astype(np.int64).view(np.uint64)
    lanes = _nothing(array)
    _term(lanes, bits.copy(), 0, keys, np.empty_like(bits))
    return lanes


def _list(array: pa.Array, keys: np.ndarray, name: str) -> np.ndarray:
    """Each list's two lanes, shape (2, n): its items' lanes (items hashed as a column of their own),
    each lane mixed with the item's position and summed, and the list's length."""
    offsets = np.asarray(array.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    start = int(offsets[0])
    offsets = offsets - start
    items = array.values.slice(start, int(offsets[-1]))  # what a null list spans is hashed, then overwritten
    item_name = name + "\0item"
    # Short lists of items of few distinct values (interests, segments): each distinct item is
    # hashed once, and each list's lanes taken from a table of every list there can be of those
    # items (both kept from block to block, which mostly see the same values). Finding the items'
    # values costs about what hashing them does: it pays only with the table.
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    longest = int(lengths.max(initial=0))
    few = _few_items(items, lambda values: _tabled(values, longest, n))
    if few is None:
        return _summed(_lanes(items, _keys(item_name), item_name), offsets, lengths, keys)
    values, codes = few
    token = (keys.tobytes(), item_name, values)
    if not _tabled(len(values), longest, n):  # values the sample did not see made the table too long
        hashed = _item_lanes(*token)
        return _summed(np.stack([np.take(hashed[lane], codes) for lane in range(_LANES)]), offsets, lengths, keys)
    table = _list_table(*token, longest)
    place = _places(codes, offsets, lengths, len(values), longest)
    lanes = np.empty((_LANES, n), dtype=np.uint64)
    for lane in range(_LANES):
        np.take(table[lane], place, out=lanes[lane], mode="clip")
    return lanes


def _tabled(values: int, longest: int, rows: int) -> bool:
    """Whether a table of every list of up to ``longest`` items of ``values`` is short enough: at most
    ``rows`` entries (it costs no more than the lists it serves) and at most :data:`_TABLE` (what the
    tables kept may hold)."""
    return longest < _TABLE.bit_length() and (longest + 1) * values**longest <= min(rows, _TABLE)


# Tables of lists' lanes of up to this many entries (each of 16 bytes); this many tables (and as many
# sets of item lanes) are kept, one per column's set of values and longest list met (8 MB at most).
_TABLE = 1 << 14
_KEPT = 32


def _few_items(items: pa.Array, enough: Callable[[int], bool]) -> tuple[tuple[bytes | None, ...], np.ndarray] | None:
    """The distinct values of text ``items`` and each item's index among them, when they are few:
    a glance and a sample say so, which ``enough`` (given a count of values) finds few enough, then
    every item is found among the sample's values and the few the sample did not see. Else None.
    The items of lists of interests or segments mostly draw from a few values."""
    kind = items.type
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    if not (text or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)) or len(items) <= 4 * _SAMPLE:
        return None
    # A glance first, which tells items nearly all distinct (addresses, ids) at a fraction of a
    # sample's cost, then a sample; both spread over the items, so that items sorted or grouped by
    # value show their variety.
    glance = len(pc.unique(_spread(items, _GLANCE)))  # at most the values there are
    if glance * 16 >= _GLANCE * 15 or not enough(glance):
        return None
    sample = pc.unique(_spread(items, _ITEM_SAMPLE))
    if len(sample) * 4 >= _ITEM_SAMPLE or not enough(2 * len(sample)):  # room for values it did not see
        return None
    sample = sample.take(pc.array_sort_indices(sample))  # in one order whatever the block, for the tables kept
    found = pc.index_in(items, value_set=sample)  # a null item is found as the sample's null, if it has one
    if not found.null_count:
        return _bytes(sample), found.to_numpy(zero_copy_only=False)
    if found.null_count * 16 > len(items):  # many items of values the sample did not see: not few
        return None
    # Values the sample did not see (the rare values of a long tail): found among themselves, after it.
    missing = pc.is_null(found)
    unseen = items.filter(missing)
    rare = pc.unique(unseen)
    if (len(sample) + len(rare)) * 4 >= _ITEM_SAMPLE:
        return None
    rare = rare.take(pc.array_sort_indices(rare))
    codes = found.fill_null(0).to_numpy(zero_copy_only=False).copy()
    codes[missing.to_numpy(zero_copy_only=False)] = pc.index_in(unseen, value_set=rare).to_numpy() + len(sample)
    return _bytes(sample) + _bytes(rare), codes


def _spread(items: pa.Array, count: int) -> pa.Array:
    """``count`` of ``items`` at even steps from the first to the last."""
    return items.take(pa.array(np.linspace(0, len(items) - 1, count).astype(np.int64)))


def _bytes(values: pa.Array) -> tuple[bytes | None, ...]:
    """Text or binary ``values`` as bytes: a value is hashed by its bytes, and text that is not
    UTF-8 (Parquet readers do not check) would fail to become a Python string."""
    return tuple(values.cast(pa.large_binary()).to_pylist())


@lru_cache(maxsize=_KEPT)
def _item_lanes(keys: bytes, item_name: str, values: tuple[bytes | None, ...]) -> np.ndarray:
    """The lanes of the distinct items ``values`` (shape (2, values)); read-only. Text and binary
    items of the same bytes hash alike (``item_name`` tells the column's type)."""
    hashed = _lanes(pa.array(values, pa.large_binary()), _keys(item_name), item_name)
    hashed.flags.writeable = False
    return hashed


@lru_cache(maxsize=_KEPT)
def _list_table(keys: bytes, item_name: str, values: tuple[bytes | None, ...], longest: int) -> np.ndarray:
    """The lanes of every list of up to ``longest`` items of ``values`` (shape (2, (longest + 1) *
    values ** longest)), at the place :func:`_places` gives it: what :func:`_summed` gives that
    list, built from the length's term and the term of each item at each position before the
    length (the digits past it, whatever they are, add nothing)."""
    column = np.frombuffer(keys, dtype=np.uint64).reshape(_LANES, -1)
    hashed = _item_lanes(keys, item_name, values)
    base = len(values)
    table = np.zeros((_LANES, longest + 1) + (base,) * longest, dtype=np.uint64)
    with np.errstate(over="ignore"):
        table += _length_terms(longest, 0, column).reshape((_LANES, longest + 1) + (1,) * longest)
        for position in range(longest):
            terms = hashed ^ np.uint64(position) * _GOLDEN
            terms ^= column[:, _PLACE, None]
            for lane in range(_LANES):
                _mix(terms[lane])
            shape = [1] * longest
            shape[position] = base
            table[:, position + 1 :] += terms.reshape(_LANES, 1, *shape)  # lists longer than the position
    table = table.reshape(_LANES, -1)
    table.flags.writeable = False
    return table


def _places(codes: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, base: int, longest: int) -> np.ndarray:
    """Each list's place in a table of lists: its length, then the indices ``codes`` of the items
    at its first ``longest`` positions, as the digits of a number in base ``base`` (most significant
    first). Past a list's end the digits are those of the items after it (or of the last item):
    any digit there gives the same lanes, so no list's digits need masking."""
    n = len(offsets) - 1
    starts = offsets[:-1]
    place = np.multiply(lengths, base**longest)
    digit = np.empty(n, dtype=codes.dtype)
    for position in range(longest):
        np.take(codes[position:], starts, out=digit, mode="clip")
        np.multiply(digit, base ** (longest - 1 - position), out=digit)  # below the table's length: no overflow
        place += digit
    return place


def _summed(hashed: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Each list's lanes from its items' lanes ``hashed`` (consumed), the lists' items from
    ``offsets`` (from 0), of ``lengths``."""
    n = len(offsets) - 1
    longest = int(lengths.max(initial=0))
    if longest <= _LONG:  # the lists' lengths' terms from a table of the lengths there are
        table = _length_terms(longest, 0, keys)
        lanes = np.empty((_LANES, n), dtype=np.uint64)
        for lane in range(_LANES):
            np.take(table[lane], lengths, out=lanes[lane], mode="clip")
    else:
        lanes = np.zeros((_LANES, n), dtype=np.uint64)
        _term(lanes, lengths.view(np.uint64).copy(), _LENGTH, keys, np.empty(n, dtype=np.uint64))
    items = hashed.shape[1]
    if longest * n <= items + items // 2 + n:
        _short_lists(lanes, hashed, offsets[:-1], lengths, longest, keys)
        return lanes
    starts = np.zeros(items + 1, dtype=np.int64)  # each item's list's start: the last start at or before it
    starts[offsets[:-1]] = offsets[:-1]
    np.maximum.accumulate(starts, out=starts)
    positions = np.arange(items, dtype=np.int64)
    positions -= starts[:-1]
    placed = positions.view(np.uint64)
    placed *= _GOLDEN
    spare = np.empty(items, dtype=np.uint64)
    sums = np.zeros(items + 1, dtype=np.uint64)
    for lane in range(_LANES):  # each lane on its own: the items' lanes are independent hashes
        mixed = np.bitwise_xor(hashed[lane], placed, out=hashed[lane])
        mixed ^= keys[lane, _PLACE]
        np.cumsum(_mix(mixed, spare), out=sums[1:])
        lanes[lane] += sums[offsets[1:]]
        lanes[lane] -= sums[offsets[:-1]]
    return lanes


def _short_lists(
    lanes: np.ndarray, hashed: np.ndarray, starts: np.ndarray, lengths: np.ndarray, longest: int, keys: np.ndarray
) -> None:
    """Add to ``lanes`` the items' mixed lanes a position at a time, for lists of about one length
    (a position's item gathered for every list, masked off where the list is shorter): fewer
    operations than placing each item and summing the lists through a running sum."""
    at, value, spare = (
        np.empty(len(lengths), dtype=np.int64),
        *(np.empty(len(lengths), dtype=np.uint64) for _ in range(2)),
    )
    shortest = int(lengths.min(initial=0))
    for position in range(longest):
        np.add(starts, position, out=at)
        keep = None if position < shortest else np.negative((lengths > position).view(np.uint8), dtype=np.uint64)
        placed = np.uint64(position) * _GOLDEN
        for lane in range(_LANES):
            np.take(hashed[lane], at, out=value, mode="clip")
            value ^= placed ^ keys[lane, _PLACE]
            _mix(value, spare)
            if keep is not None:
                value &= keep
            lanes[lane] += value


def _lanes(array: pa.Array | pa.ChunkedArray, keys: np.ndarray, name: str = "") -> np.ndarray:
    """Each value's two lanes, shape (2, n), under a column's ``keys`` (``name`` names its items' keys)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], array.type)
    kind = array.type
    with np.errstate(over="ignore"):
        if pa.types.is_dictionary(kind):
            out = _dictionary(array, keys)
        elif pa.types.is_null(kind):
            out = _nothing(array)
        elif (
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind)
        ):
            out = _text(array, keys)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            out = _list(array, keys, name)
        elif (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_temporal(kind)
        ):
            out = _numbers(array, keys)
        else:
            raise TypeError(f"no values hash for a column of type {kind}")
        if array.null_count:
            null = ~np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            out[:, null] = keys[:, _NULL, None]
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


def column_hash(array: pa.Array | pa.ChunkedArray, name: str = "") -> np.ndarray:
    """Each value's part of a row's lanes as a column ``name``, shape (n, 2); raises TypeError for a
    column of a kind it cannot hash."""
    column = f"{name}\0{_kind(array.type)}"
    return _lanes(array, _keys(column), column).T


def row_hashes(columns: Mapping[str, pa.Array], length: int) -> np.ndarray | None:
    """Each row's hash over every column (shape (length, 2)), or None when a column is of a kind
    not hashed here (the caller then compares nothing: every row counts as changed)."""
    names = sorted(columns)
    start = _keys(FORMAT + "|" + ",".join(names))[:, :1]
    keys = {name: f"{name}\0{_kind(columns[name].type)}" for name in names}
    out = np.empty((length, _LANES), dtype=np.uint64)
    # A block at a time: the arrays of a block are small enough for the allocator to hand the same
    # memory back block after block, where arrays of a whole slice were each new pages to fault in
    # (which cost more than the arithmetic on them).
    for first in range(0, length, _BLOCK):
        rows = min(_BLOCK, length - first)
        total = np.empty((_LANES, rows), dtype=np.uint64)
        total[:] = start
        for name in names:
            try:
                total += _lanes(columns[name].slice(first, rows), _keys(keys[name]), keys[name])
            except TypeError:
                return None
        with np.errstate(over="ignore"):
            for lane in range(_LANES):
                out[first : first + rows, lane] = _mix(total[lane])
    return out


_BLOCK = 16_384

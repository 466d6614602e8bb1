"""16-byte hashes of ids and bodies, held as pairs of uint64 so that numpy sorts and compares them.

blake2b from the standard library, one call per row: Arrow has no hashing kernel, and 16 bytes
make a collision (which could only ever make a changed row look unchanged) vanishingly unlikely.
"""

from __future__ import annotations

from functools import partial
from hashlib import blake2b
from operator import methodcaller

import numpy as np
import pyarrow as pa

HASH_BYTES = 16
HASH_TYPE = pa.binary(HASH_BYTES)


def _digests(values: list[bytes]) -> np.ndarray:
    joined = b"".join(map(_DIGEST, map(_HASHER, values)))  # no Python frame per row
    return np.frombuffer(joined, dtype=np.uint64).reshape(-1, 2)


_HASHER = partial(blake2b, digest_size=HASH_BYTES)
_DIGEST = methodcaller("digest")


def _bytes(strings: pa.Array) -> list[bytes]:
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    return strings.cast(pa.binary()).to_pylist()


def text_hashes(strings: pa.Array) -> np.ndarray:
    """Each string's hash, shape (n, 2): endpoint ids (keys) and endpoint bodies."""
    return _digests(_bytes(strings))


def event_keys(endpoint_ids: pa.Array, event_ids: pa.Array) -> np.ndarray:
    """The key of each (endpoint id, event id) pair; the endpoint id is length-prefixed, so no two
    pairs share the text hashed."""
    return _digests([b"%d:%b%b" % (len(a), a, b) for a, b in zip(_bytes(endpoint_ids), _bytes(event_ids), strict=True)])


def to_arrow(hashes: np.ndarray, valid: np.ndarray | None = None) -> pa.FixedSizeBinaryArray:
    """Hashes as a ``binary(16)`` column, as stored; null where not ``valid``. The column shares the
    memory of ``hashes`` when they are contiguous uint64 (a commit's million hashes copied took
    as long as the rest of building its entries): they must not change afterwards."""
    data = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = len(data)
    bitmap = None
    nulls = 0
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        nulls = n - int(np.count_nonzero(valid))
    return pa.FixedSizeBinaryArray.from_buffers(HASH_TYPE, n, [bitmap, pa.py_buffer(data)], null_count=nulls)


def from_arrow(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A stored ``binary(16)`` column as hashes (n, 2), and where it is valid (nulls read as zeros)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], HASH_TYPE)
    valid = column.is_valid().to_numpy(zero_copy_only=False).astype(bool)
    filled = column.fill_null(b"\0" * HASH_BYTES) if column.null_count else column
    data = filled.buffers()[1]
    raw = np.frombuffer(data, dtype=np.uint8)[filled.offset * HASH_BYTES : (filled.offset + len(filled)) * HASH_BYTES]
    return raw.copy().view(np.uint64).reshape(-1, 2), valid


class SortedKeys:
    """Keys sorted for lookups by binary search.

    Two different keys with the same first half can hide each other: such a lookup finds nothing,
    which only ever makes a row go again, never skips one.
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.order = np.lexsort((keys[:, 1], keys[:, 0])) if len(keys) else np.zeros(0, dtype=np.int64)
        self.hi = keys[self.order, 0]
        self.lo = keys[self.order, 1]

    def __len__(self) -> int:
        return len(self.hi)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Each key's position in the sorted keys, or -1 where it is absent."""
        found = np.full(len(keys), -1, dtype=np.int64)
        if not len(self.hi) or not len(keys):
            return found
        at = np.searchsorted(self.hi, keys[:, 0], side="left")
        inside = at < len(self.hi)
        clipped = np.where(inside, at, 0)
        hit = inside & (self.hi[clipped] == keys[:, 0]) & (self.lo[clipped] == keys[:, 1])
        found[hit] = at[hit]
        return found

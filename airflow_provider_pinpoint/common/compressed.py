"""Text held zstd-compressed in blocks of rows: for JSON that waits in memory for most of a load.

The endpoint rows' JSON bodies wait until their events go out, so on a large endpoints table they
are the part of the loader's memory that grows with the input. JSON repeats its keys row after row,
so it compresses well in blocks of rows; a block is decompressed only when one of its rows is taken.
``pyarrow`` ships the codec. Why zstd rather than LZ4: ``benchmarks/results/loader.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

BLOCK_ROWS = 1024
_CODEC = "zstd"


class CompressedStrings:
    """A column of non-null strings, compressed up to ``BLOCK_ROWS`` rows a block; built by :meth:`extend`."""

    def __init__(self, parts: Iterable[pa.Array] = ()) -> None:
        """The strings of ``parts``, one after the other (string or large_string arrays, no nulls)."""
        self._blocks: list[tuple[np.ndarray, bytes, int]] = []  # (offsets from 0, compressed bytes, raw size)
        self._starts: list[int] = [0]  # the first row of each block, then the length
        for part in parts:
            self.extend(part)

    def extend(self, strings: pa.Array) -> None:
        """Append ``strings`` (a block holds rows of one call only, so few large calls keep blocks full)."""
        if strings.null_count:
            raise ValueError("CompressedStrings holds no nulls")
        if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
            strings = strings.cast(pa.string())
        for start in range(0, len(strings), BLOCK_ROWS):
            self._add(strings.slice(start, BLOCK_ROWS))

    def _add(self, strings: pa.Array) -> None:
        width = np.int32 if pa.types.is_string(strings.type) else np.int64
        _, offsets, data = strings.buffers()
        bounds = np.frombuffer(offsets, dtype=width)[strings.offset : strings.offset + len(strings) + 1]
        first, last = int(bounds[0]), int(bounds[-1])
        packed = pa.compress(data.slice(first, last - first), codec=_CODEC, asbytes=True) if last > first else b""
        self._blocks.append(((bounds - first).astype(np.int32), packed, last - first))
        self._starts.append(self._starts[-1] + len(strings))

    def __len__(self) -> int:
        return self._starts[-1]

    @property
    def nbytes(self) -> int:
        """Bytes held (compressed data and offsets)."""
        return sum(len(packed) + offsets.nbytes for offsets, packed, _ in self._blocks)

    def _block(self, index: int) -> pa.Array:
        offsets, packed, size = self._blocks[index]
        data = pa.decompress(packed, size, codec=_CODEC) if size else pa.py_buffer(b"")
        return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), data)

    def take(self, at: np.ndarray) -> pa.Array:
        """The strings at these positions, in this order; each block concerned is decompressed once."""
        at = np.asarray(at, dtype=np.int64)
        if not len(at):
            return pa.array([], pa.string())
        if at.min() < 0 or at.max() >= len(self):
            raise IndexError(f"position out of range for {len(self)} strings")
        starts = np.asarray(self._starts, dtype=np.int64)
        blocks = np.searchsorted(starts, at, side="right") - 1
        ascending = bool(np.all(blocks[1:] >= blocks[:-1]))
        order = np.arange(len(at)) if ascending else np.argsort(blocks, kind="stable")
        ordered = blocks[order]
        edges = np.flatnonzero(np.diff(ordered)) + 1
        pieces = []
        for first, stop in zip([0, *edges.tolist()], [*edges.tolist(), len(at)], strict=True):
            block = int(ordered[first])
            pieces.append(self._block(block).take(pa.array(at[order[first:stop]] - starts[block])))
        joined = pa.concat_arrays(pieces)
        del pieces  # the strings are held three times at most otherwise: pieces, joined, reordered
        if ascending:
            return joined
        inverse = np.empty(len(at), dtype=np.int64)
        inverse[order] = np.arange(len(at))
        return joined.take(pa.array(inverse))

    def subset(self, at: np.ndarray) -> CompressedStrings:
        """A new column of the strings at these positions, decompressed ``BLOCK_ROWS * 64`` rows at a time."""
        step = BLOCK_ROWS * 64
        return CompressedStrings(self.take(at[start : start + step]) for start in range(0, len(at), step))

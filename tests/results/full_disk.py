"""A local filesystem that runs out of space: ``fullfs://<path>`` refuses writes past a byte budget.

Tests run as root, where a read-only directory still takes writes; this fails the way a full disk
does, with OSError(ENOSPC) from ``write``, through the same fsspec seam object storage uses.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileOpener, LocalFileSystem

PROTOCOL = "fullfs"


class FullFileSystem(LocalFileSystem):
    """Local files, with at most ``space`` bytes written across all files (None: no limit).

    Once a write is refused, nothing more fits until ``space`` is raised: the disk is full.
    """

    protocol = (PROTOCOL,)
    space: int | None = None
    used = 0
    _lock = threading.Lock()

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, **kwargs: Any) -> LocalFileOpener:
        path = self._strip_protocol(path)
        if "w" in mode or "a" in mode or "x" in mode:
            self.makedirs(self._parent(path), exist_ok=True)
            return _FullOpener(path, mode, fs=self, **kwargs)
        return LocalFileOpener(path, mode, fs=self, **kwargs)


class _FullOpener(LocalFileOpener):
    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        with FullFileSystem._lock:
            if FullFileSystem.space is not None and FullFileSystem.used + size > FullFileSystem.space:
                FullFileSystem.space = FullFileSystem.used  # full: no smaller write fits after a refused one
                raise OSError(errno.ENOSPC, "No space left on device")
            FullFileSystem.used += size
        return super().write(data)


@contextmanager
def full_disk() -> Iterator[type[FullFileSystem]]:
    """Register ``fullfs://`` for the test; set ``.space`` on what it yields to fill the disk."""
    fsspec.register_implementation(PROTOCOL, FullFileSystem, clobber=True)
    FullFileSystem.space, FullFileSystem.used = None, 0
    try:
        yield FullFileSystem
    finally:
        FullFileSystem.space, FullFileSystem.used = None, 0

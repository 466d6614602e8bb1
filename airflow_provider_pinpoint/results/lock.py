"""One run at a time per location: a lock file next to it names the run holding it.

Two runs on one results location would send the same rows twice, and one's cleanup could remove
the other's journal. So a run holds the location's lock from before it reads what to skip until
its table is written; a second run is refused with one line naming the holder.

On a local filesystem the lock is an ``flock`` on ``.<name>.lock``: exclusive between processes
and between threads (each holder opens the file itself), and released by the kernel when the holder
dies, even by ``kill -9``; the next run then takes it over, never two at once. The file's text
(run id, host, pid, start) is for the message only. (On NFS, ``flock`` relies on the server's
lock manager.)

Object storage has no exclusive create or lock through fsspec, so there the guarantee is weaker,
best effort: the holder rewrites the lock file every ``heartbeat_s`` seconds; a lock whose
heartbeat is older than ``stale_s`` (or whose holder's pid is gone on this host) is taken over;
a run writes its lock, waits a moment and reads it back, and proceeds only if it still names
itself. Two runs starting within that moment of each other can still both proceed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.results.journal import ResultsWriteError

log = logging.getLogger(__name__)

# A heartbeat further ahead than this is no clock skew but damage: its lock is taken over.
_FUTURE_S = 86_400.0


class LocationBusy(InputError):
    """Another run holds the location: nothing was read or sent."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what the lock file says."""

    run_id: str
    host: str
    pid: int
    since: str  # UTC, ISO 8601, to the second
    heartbeat: float  # seconds since the epoch, when last refreshed

    @classmethod
    def parse(cls, text: bytes) -> Holder | None:
        """The holder a lock file names, or None when it names none (empty, being written, damaged)."""
        try:
            holder = cls(**json.loads(text))
        except (ValueError, TypeError):
            return None
        # The fields are used, not only shown (a pid is signalled, a heartbeat compared): a file
        # naming them with other types, a pid no process can have or a heartbeat that is no time
        # names no holder, rather than failing the run or holding the location for ever.
        texts = (holder.run_id, holder.host, holder.since)
        if not all(isinstance(value, str) for value in texts) or type(holder.pid) is not int:
            return None
        if not 0 < holder.pid < 1 << 31 or type(holder.heartbeat) not in (int, float):
            return None
        if not math.isfinite(holder.heartbeat):
            return None
        return holder

    def text(self) -> bytes:
        return json.dumps(asdict(self)).encode()


class LocationLock:
    """The lock on one location (``path`` on ``fs``), held by ``run_id`` inside ``with``.

    ``location`` is the location's text for messages. ``local``: ``fs`` is the local filesystem
    (an ``flock``); otherwise the heartbeat scheme of the module docstring.
    """

    def __init__(
        self,
        fs: Any,
        path: str,
        location: str,
        run_id: str,
        *,
        local: bool,
        heartbeat_s: float = 15.0,
        stale_s: float = 120.0,
        settle_s: float = 1.0,
    ) -> None:
        self._fs = fs
        self._path = path
        self._location = location
        self._me = Holder(run_id, socket.gethostname(), os.getpid(), _now_text(), time.time())
        self._local = local
        self._heartbeat_s = heartbeat_s
        self._stale_s = stale_s
        self._settle_s = settle_s
        self._fd: int | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> LocationLock:
        try:
            if self._local:
                self._acquire_local()
            else:
                self._acquire_shared()
        except LocationBusy:
            raise
        except Exception as exc:  # a read-only or missing directory, an object store refusing: one line
            raise ResultsWriteError.of(self._location, exc) from exc
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()

    # Local: flock ---------------------------------------------------------------------------

    def _acquire_local(self) -> None:
        import fcntl

        while True:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = Holder.parse(os.pread(fd, 4096, 0))
                os.close(fd)
                raise self._busy(holder) from None
            # A holder releasing removes the file: locking the removed file holds nothing, so retry.
            try:
                same = os.fstat(fd).st_ino == os.stat(self._path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._took_over(Holder.parse(os.pread(fd, 4096, 0)))
        os.ftruncate(fd, 0)
        os.pwrite(fd, self._me.text(), 0)
        os.fsync(fd)
        self._fd = fd

    # Elsewhere: a heartbeat -------------------------------------------------------------------

    def _acquire_shared(self) -> None:
        holder = self._read()
        if holder is not None and not self._stale(holder):
            raise self._busy(holder)
        self._write()
        time.sleep(self._settle_s)
        now = self._read()
        if now is None or now.run_id != self._me.run_id:
            raise self._busy(now)
        self._took_over(holder)
        self._beat = threading.Thread(target=self._heartbeat, name="results-lock-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            try:
                now = self._read()
                if now is not None and now.run_id != self._me.run_id:
                    # Taken over while this run was stalled past stale_s: beating on would overwrite
                    # the new holder's lock and let a third run in too.
                    log.warning(
                        "the lock of the results at %s was taken over by run %s; run %s no longer holds it",
                        self._location,
                        now.run_id,
                        self._me.run_id,
                    )
                    return
                self._write()
            except Exception as exc:  # the next beat tries again; the run goes on
                log.warning("could not refresh the lock of the results at %s (%s)", self._location, type(exc).__name__)

    def _read(self) -> Holder | None:
        try:
            with self._fs.open(self._path, "rb") as f:
                return Holder.parse(f.read())
        except FileNotFoundError:
            return None

    def _write(self) -> None:
        self._me = Holder(**{**asdict(self._me), "heartbeat": time.time()})
        with self._fs.open(self._path, "wb") as f:
            f.write(self._me.text())

    def _stale(self, holder: Holder) -> bool:
        now = time.time()
        if now - holder.heartbeat > self._stale_s or holder.heartbeat - now > _FUTURE_S:
            return True
        return holder.host == self._me.host and not _alive(holder.pid)

    # Both -------------------------------------------------------------------------------------

    def release(self) -> None:
        """Give the location up and remove the lock file (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.unlink(self._path)  # while still locked: a run waiting on this file retries on the new one
            except FileNotFoundError:  # removed by hand meanwhile: the lock is given up all the same
                pass
            finally:
                os.close(fd)
        elif self._beat is not None:
            self._stop.set()
            self._beat.join()
            self._beat = None
            try:
                holder = self._read()
                if holder is not None and holder.run_id == self._me.run_id:
                    self._fs.rm(self._path)
            except Exception as exc:  # left behind, the lock goes stale: no error to hide the run's own
                log.warning(
                    "could not remove the lock of the results at %s (%s); it lapses after %s s",
                    self._location,
                    type(exc).__name__,
                    self._stale_s,
                )

    def _took_over(self, holder: Holder | None) -> None:
        if holder is not None and holder.run_id != self._me.run_id:
            log.warning(
                "the results at %s were held by run %s (since %s), which is gone; run %s takes them over",
                self._location,
                holder.run_id,
                holder.since,
                self._me.run_id,
            )

    def _busy(self, holder: Holder | None) -> LocationBusy:
        who = (
            "another run"
            if holder is None
            else f"run {holder.run_id} (since {holder.since}, pid {holder.pid} on {holder.host})"
        )
        return LocationBusy(
            f"the results at {self._location} are in use by {who}; "
            "wait for it to end, or choose another results location"
        )


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

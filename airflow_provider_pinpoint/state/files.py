"""Where a sync state lives, its file format, its lock, and writing it so that a crash loses nothing.

Layout under the state location, per destination::

    <state>/<destination>/<application id>/endpoints/<part>.parquet           endpoint_id, body_hash, accepted_at
    <state>/<destination>/<application id>/endpoints/<part>.pending.parquet   endpoints about to change (body_hash null)
    <state>/<destination>/<application id>/events/<part>.parquet              endpoint_id, event_id, key, accepted_at
    <state>/<destination>/<application id>/.<part>.lock

``body_hash`` is the 16-byte blake2b hash of the body last accepted (null: the endpoint must go
again); an event's ``key`` that of its endpoint id and event id, which is what lookups hold in memory. A run writes only
its own part (``main`` unless given, e.g. one per shard, so that shards run at once) and reads every
part: where parts disagree about an endpoint, the latest ``accepted_at`` wins.

Every write goes to a new file first and replaces the old one in one step (``os.replace`` locally,
a move elsewhere, as the results table does), so a kill at any moment leaves the old file or the
new one, never half of one.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_pinpoint.common.locations import filesystem, location_text
from airflow_provider_pinpoint.common.text import without_userinfo
from airflow_provider_pinpoint.errors import InputError, PinpointLoaderError
from airflow_provider_pinpoint.results.lock import Holder, LocationBusy, LocationLock
from airflow_provider_pinpoint.state.keys import HASH_TYPE

log = logging.getLogger(__name__)

# Event ids older than this are forgotten (an event loaded again after that is sent again). A week
# covers reruns and overlapping backfills of recent partitions, where duplicates come from; each
# million ids remembered costs every run about 24 MB of memory and the state 19-28 MB on disk.
DEFAULT_RETENTION_DAYS = 7
DEFAULT_PART = "main"
DEFAULT_SINK = "pinpoint"

_TIME = pa.timestamp("ms", tz="UTC")
ENDPOINTS_SCHEMA = pa.schema([("endpoint_id", pa.string()), ("body_hash", HASH_TYPE), ("accepted_at", _TIME)])
EVENTS_SCHEMA = pa.schema(
    [("endpoint_id", pa.string()), ("event_id", pa.string()), ("key", HASH_TYPE), ("accepted_at", _TIME)]
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PENDING = ".pending.parquet"
_TMP_TOKEN_BYTES = 4  # a temporary file's random token (hex, twice as many characters)


class StateError(PinpointLoaderError):
    """The state could not be read or written: one line naming the location."""


def _checked_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise InputError(f"{what} must be letters, digits, '.', '_' or '-' (a file name), not {value!r}")
    return value


def _checked_part(value: str) -> str:
    """A part's name: a file name that is not another part's pending file (part ``x.pending``'s own
    file would be ``x.pending.parquet``, part ``x``'s pending file)."""
    name = _checked_name(value, "state_part")
    if name.lower().endswith(PENDING.removesuffix(".parquet")):
        raise InputError(f"state_part may not end in '.pending' (the name of another part's pending file): {value!r}")
    return name


class StateFiles:
    """The state of one destination at ``location``; this run writes the part ``part``."""

    def __init__(self, location: Any, *, application_id: str, sink: str = DEFAULT_SINK, part: str = DEFAULT_PART):
        if not isinstance(location, str | os.PathLike) and not hasattr(location, "fs"):
            raise InputError(f"state must be a path or a URL, not a {type(location).__name__}")
        self.location = without_userinfo(location_text(location))
        self.part = _checked_part(part)
        self.fs, root = filesystem(location)
        self.is_local = "file" in ((self.fs.protocol,) if isinstance(self.fs.protocol, str) else self.fs.protocol)
        if self.is_local:
            root = os.path.abspath(root)
        root = root.replace(os.sep, "/")
        self.root = posixpath.join(root, _checked_name(sink, "sink"), _checked_name(application_id, "application_id"))
        self.endpoints_dir = posixpath.join(self.root, "endpoints")
        self.events_dir = posixpath.join(self.root, "events")

    def where(self) -> str:
        return self.location

    def lock(self, run_id: str) -> AbstractContextManager[Any]:
        """Hold this part of the state for ``run_id``: a second run on it is refused with one line."""
        try:
            for directory in (self.endpoints_dir, self.events_dir):
                self.fs.makedirs(directory, exist_ok=True)
        except Exception as exc:
            raise StateError(f"cannot use the sync state at {self.location}: {type(exc).__name__}: {exc}") from None
        return _StateLock(
            self.fs, posixpath.join(self.root, f".{self.part}.lock"), self.location, run_id, local=self.is_local
        )

    # Reading ----------------------------------------------------------------------------------

    def endpoint_files(self) -> list[str]:
        """Every part's endpoint file and pending file (this run's own included)."""
        return self._files(self.endpoints_dir)

    def event_files(self) -> list[str]:
        return self._files(self.events_dir)

    def _files(self, directory: str) -> list[str]:
        try:
            if not self.fs.exists(directory):
                return []
            names = self.fs.ls(directory, detail=False)
        except Exception as exc:
            raise StateError(f"cannot read the sync state at {self.location}: {type(exc).__name__}") from None
        return sorted(name for name in names if name.endswith(".parquet"))

    def batches(
        self, path: str, columns: list[str] | Callable[[pq.FileMetaData], list[str]], rows: int = 1_000_000
    ) -> Iterator[pa.RecordBatch]:
        """The file's rows, ``rows`` at a time, only ``columns``: a list, or chosen from the footer of
        the file as opened (its row count and key-value metadata). A local file, once open, is the
        one read to the end; on object storage, what keeps it from being replaced meanwhile is the
        state's lock."""
        try:
            with self.fs.open(path, "rb") as f:
                parquet = pq.ParquetFile(f)
                chosen = columns(parquet.metadata) if callable(columns) else columns
                yield from parquet.iter_batches(batch_size=rows, columns=chosen)
        except FileNotFoundError:
            return
        except PinpointLoaderError:
            raise
        except Exception as exc:
            name = posixpath.basename(path)
            raise StateError(
                f"the sync state at {self.location} is damaged ({name}: {type(exc).__name__}); "
                "rerun with a full refresh to rebuild it"
            ) from None

    def own(self, kind: str, *, pending: bool = False) -> str:
        directory = self.endpoints_dir if kind == "endpoints" else self.events_dir
        return posixpath.join(directory, self.part + (PENDING if pending else ".parquet"))

    # Writing ----------------------------------------------------------------------------------

    def replace(
        self,
        path: str,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        metadata: Callable[[], Mapping[str, str]] | None = None,
    ) -> int:
        """Write ``batches`` as the new file at ``path`` in one step; the rows written. ``metadata``,
        asked once every batch is written, gives key-value metadata for the file's footer."""
        tmp = f"{path}.{secrets.token_hex(_TMP_TOKEN_BYTES)}.tmp"
        rows = 0
        try:
            with open(tmp, "wb") if self.is_local else self.fs.open(tmp, "wb") as f:
                with pq.ParquetWriter(f, schema, **_writer_options(schema)) as writer:
                    for batch in batches:
                        if batch.num_rows:
                            writer.write_batch(batch)
                            rows += batch.num_rows
                    extra = metadata() if metadata is not None else None
                    if extra:
                        writer.add_key_value_metadata(dict(extra))
                if self.is_local:
                    f.flush()
                    os.fsync(f.fileno())
            if self.is_local:
                os.replace(tmp, path)
                _sync_directory(posixpath.dirname(path))
            else:
                self.fs.mv(tmp, path)
        except BaseException as exc:
            _remove_quietly(self.fs, tmp)
            if isinstance(exc, PinpointLoaderError | KeyboardInterrupt | SystemExit):
                raise
            raise StateError(f"cannot write the sync state at {self.location}: {type(exc).__name__}") from None
        return rows

    def remove(self, path: str) -> None:
        _remove_quietly(self.fs, path)

    def remove_leftovers(self) -> None:
        """Half-written files of this part's earlier runs (killed mid-write): the lock is held, so none is live."""
        # As replace() names them: <part>.parquet or <part>.pending.parquet, a token, .tmp
        own = re.compile(
            rf"{re.escape(self.part)}(?:{re.escape(PENDING)}|\.parquet)\.[0-9a-f]{{{2 * _TMP_TOKEN_BYTES}}}\.tmp"
        )
        for directory in (self.endpoints_dir, self.events_dir):
            try:
                names = self.fs.ls(directory, detail=False) if self.fs.exists(directory) else []
            except Exception:  # nothing to tidy is no error
                continue
            for name in names:
                if own.fullmatch(posixpath.basename(name)):  # not part ``x.y``'s, which starts ``x.`` too
                    _remove_quietly(self.fs, name)


class _StateLock(LocationLock):
    """The results' lock (flock locally, a heartbeat elsewhere), refusing with the state's words."""

    def _busy(self, holder: Holder | None) -> LocationBusy:
        who = "another run" if holder is None else f"run {holder.run_id} (since {holder.since}, pid {holder.pid})"
        return LocationBusy(
            f"the sync state at {self._location} is in use by {who}; wait for it to end, or give each run "
            "at once its own state part"
        )

    def _took_over(self, holder: Holder | None) -> None:
        if holder is not None and holder.run_id != self._me.run_id:
            log.warning(
                "the sync state at %s was held by run %s (since %s), which is gone; run %s takes it over",
                self._location,
                holder.run_id,
                holder.since,
                self._me.run_id,
            )


def describe(location: Any) -> dict[str, Any]:
    """What a state location holds: per destination and part, the endpoints (with a body), those to
    send again, the events and the oldest and newest ``accepted_at``; and bytes on disk."""
    fs, root = filesystem(location)
    text = without_userinfo(location_text(location))
    out: dict[str, Any] = {"state": text, "destinations": []}
    try:
        found = sorted(fs.glob(posixpath.join(root.replace(os.sep, "/"), "*", "*", "*", "*.parquet")))
    except Exception as exc:
        raise StateError(f"cannot read the sync state at {text}: {type(exc).__name__}") from None
    by_destination: dict[tuple[str, str], dict[str, Any]] = {}
    for path in found:
        parts = path.split("/")
        sink, application_id, kind, name = parts[-4:]
        entry = by_destination.setdefault(
            (sink, application_id),
            {"sink": sink, "application_id": application_id, "endpoints": 0, "to_send_again": 0, "events": 0},
        )
        entry.setdefault("files", []).append(f"{kind}/{name}")
        entry["bytes"] = entry.get("bytes", 0) + int(fs.size(path))
        with fs.open(path, "rb") as f:
            table = pq.read_table(f, columns=["body_hash", "accepted_at"] if kind == "endpoints" else ["accepted_at"])
        if kind == "endpoints":
            valid = table.num_rows - table.column("body_hash").null_count
            entry["endpoints"] += valid
            entry["to_send_again"] += table.num_rows - valid
        else:
            entry["events"] += table.num_rows
        if table.num_rows:
            import pyarrow.compute as pc

            span = pc.min_max(table.column("accepted_at")).as_py()
            for key, value, pick in (("oldest", span["min"], min), ("newest", span["max"], max)):
                if value is not None:
                    entry[key] = pick(entry.get(key, value), value)
    for entry in by_destination.values():
        for key in ("oldest", "newest"):
            if key in entry:
                entry[key] = entry[key].isoformat()
        out["destinations"].append(entry)
    return out


def _sync_directory(directory: str) -> None:
    """Make a rename durable (on Linux a rename is only on disk once its directory is)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(fs: Any, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path)
    except Exception:  # the caller reports the first error
        pass


def _writer_options(schema: pa.Schema) -> dict[str, Any]:
    """Zstd, and a dictionary only for the :func:`_repeating` columns, except: the hash columns
    (random bytes) are not compressed, as zstd found nothing to save in them (16,004,550 bytes for a
    million hashes against 16,003,650 raw) but spent CPU looking; and only the times get minimum
    and maximum statistics, as no reader filters on ids or hashes. Together a fifth to a third
    less CPU for writing a million entries (77-106 ms against 119-131 ms), the file 4 KB smaller."""
    hashes = {field.name for field in schema if field.type == HASH_TYPE}
    return {
        "compression": {field.name: "none" if field.name in hashes else "zstd" for field in schema},
        "use_dictionary": _repeating(schema),
        "write_statistics": ["accepted_at"],
    }


def _repeating(schema: pa.Schema) -> list[str]:
    """The columns worth a dictionary: the times, and an event file's endpoint ids. Ids of endpoints
    and hashes are unique, and the writer's attempt at a dictionary for them (given up once it grew
    too large) took most of the time writing a state of a million endpoints, and reading it back."""
    return ["accepted_at", *(["endpoint_id"] if "event_id" in schema.names else [])]

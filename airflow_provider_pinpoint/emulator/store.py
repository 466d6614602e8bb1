"""What the emulator accepted: endpoint state, every event with its receive count, statistics.

Reads are served from memory. :class:`SqliteStore` writes every accepted request through to a
SQLite file in one transaction and loads it back on start, so a restarted emulator still knows
what it accepted (the evidence a resumed load is checked against).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import msgspec

from airflow_provider_pinpoint.emulator.validation import Catalog

# An event's JSON as received: a slice of the request body, or bytes read back from SQLite.
EventJson = bytes | msgspec.Raw

STAT_KEYS = (
    "requests",
    "events_accepted",
    "events_rejected",
    "events_dropped",
    "events_duplicated",
    "endpoints_accepted",
    "endpoints_rejected",
)


def empty_stats() -> dict:
    stats: dict = dict.fromkeys(STAT_KEYS, 0)
    stats["faults"] = {}
    return stats


class MemoryStore:
    """Everything in dictionaries; gone when the process ends."""

    def __init__(self) -> None:
        self.stats = empty_stats()
        # app -> endpoint id -> event id -> event JSON. The inner dicts hold only strings and byte
        # slices, which CPython leaves out of garbage collection: millions of events cost it nothing.
        self._events: dict[str, dict[str, dict[str, EventJson]]] = {}
        # app -> endpoint id -> event id -> receive count, only for events received more than once
        self._counts: dict[str, dict[str, dict[str, int]]] = {}
        self._endpoints: dict[str, dict[str, dict]] = {}
        self._catalogs: dict[str, Catalog] = {}

    def catalog(self, app: str) -> Catalog:
        catalog = self._catalogs.get(app)
        if catalog is None:
            catalog = self._catalogs[app] = Catalog()
        return catalog

    def record_endpoint(self, app: str, endpoint_id: str, endpoint: dict) -> None:
        self._endpoints.setdefault(app, {})[endpoint_id] = endpoint

    def record_events(self, app: str, endpoint_id: str, events: Mapping[str, EventJson]) -> int:
        """Keep one endpoint's accepted events (event id -> JSON); returns how many were received before."""
        app_events = self._events.get(app)
        if app_events is None:
            app_events = self._events[app] = {}
        known = app_events.get(endpoint_id)
        if known is None:
            app_events[endpoint_id] = dict(events)
            return 0
        repeated = known.keys() & events.keys()
        if repeated:
            counts = self._counts.setdefault(app, {}).setdefault(endpoint_id, {})
            for event_id in repeated:
                counts[event_id] = counts.get(event_id, 1) + 1
        known.update(events)
        return len(repeated)

    def save(self, app: str | None = None) -> None:
        """Persist what changed since the last save (nothing to do in memory)."""
        if app is not None:
            self.catalog(app).added.clear()

    def events(self, app: str) -> list[tuple[str, str, EventJson, int]]:
        """(endpoint id, event id, event JSON, receive count), grouped by endpoint; endpoints and the
        events of each in order of first receipt."""
        counts = self._counts.get(app, {})
        return [
            (endpoint_id, event_id, body, counts[endpoint_id].get(event_id, 1) if endpoint_id in counts else 1)
            for endpoint_id, events in self._events.get(app, {}).items()
            for event_id, body in events.items()
        ]

    def endpoints(self, app: str) -> dict[str, dict]:
        return dict(self._endpoints.get(app, {}))

    def reset(self) -> None:
        self.stats = empty_stats()
        self._events.clear()
        self._counts.clear()
        self._endpoints.clear()
        self._catalogs.clear()

    def close(self) -> None:
        """Nothing to release in memory."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    app TEXT NOT NULL, endpoint_id TEXT NOT NULL, event_id TEXT NOT NULL,
    body BLOB NOT NULL, receive_count INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (app, endpoint_id, event_id));
CREATE TABLE IF NOT EXISTS endpoints (
    app TEXT NOT NULL, endpoint_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (app, endpoint_id));
CREATE TABLE IF NOT EXISTS catalog (
    app TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (app, kind, name, value));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqliteStore(MemoryStore):
    """:class:`MemoryStore` written through to a SQLite file, loaded back on start."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._seq = 0
        self._event_rows: list[tuple] = []
        self._endpoint_rows: list[tuple] = []
        self._load()

    def _load(self) -> None:
        for app, endpoint_id, event_id, body, count in self._db.execute(
            "SELECT app, endpoint_id, event_id, body, receive_count FROM events ORDER BY seq"
        ):
            self._events.setdefault(app, {}).setdefault(endpoint_id, {})[event_id] = body
            if count > 1:
                self._counts.setdefault(app, {}).setdefault(endpoint_id, {})[event_id] = count
        self._seq = self._db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        for app, endpoint_id, body in self._db.execute("SELECT app, endpoint_id, body FROM endpoints"):
            self._endpoints.setdefault(app, {})[endpoint_id] = json.loads(body)
        for app, kind, name, value in self._db.execute("SELECT app, kind, name, value FROM catalog"):
            catalog = self.catalog(app)
            if kind == "user_endpoint":
                catalog.user_endpoints.setdefault(name, set()).add(value)
            else:
                catalog.names[kind].add(name)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'stats'").fetchone()
        if row:
            self.stats = json.loads(row[0])

    def record_endpoint(self, app: str, endpoint_id: str, endpoint: dict) -> None:
        super().record_endpoint(app, endpoint_id, endpoint)
        self._endpoint_rows.append((app, endpoint_id, msgspec.json.encode(endpoint).decode()))

    def record_events(self, app: str, endpoint_id: str, events: Mapping[str, EventJson]) -> int:
        duplicates = super().record_events(app, endpoint_id, events)
        rows = self._event_rows
        for event_id, body in events.items():
            self._seq += 1
            rows.append((app, endpoint_id, event_id, body, self._seq))
        return duplicates

    def save(self, app: str | None = None) -> None:
        """Write what was recorded since the last save, and the statistics, in one transaction."""
        db = self._db
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (app, endpoint_id, event_id) "
            "DO UPDATE SET body = excluded.body, receive_count = receive_count + 1",
            self._event_rows,
        )
        db.executemany("INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?)", self._endpoint_rows)
        if app is not None:
            catalog = self.catalog(app)
            db.executemany(
                "INSERT OR IGNORE INTO catalog VALUES (?, ?, ?, ?)",
                [(app, kind, name, value) for kind, name, value in catalog.added],
            )
            catalog.added.clear()
        db.execute("INSERT OR REPLACE INTO meta VALUES ('stats', ?)", (json.dumps(self.stats),))
        db.execute("COMMIT")
        self._event_rows.clear()
        self._endpoint_rows.clear()

    def reset(self) -> None:
        super().reset()
        self._seq = 0
        self._event_rows.clear()
        self._endpoint_rows.clear()
        self._db.executescript("DELETE FROM events; DELETE FROM endpoints; DELETE FROM catalog; DELETE FROM meta;")

    def close(self) -> None:
        self.save()  # statistics of requests answered with a fault since the last recorded one
        self._db.close()


def open_store(path: str | Path | None) -> MemoryStore:
    return MemoryStore() if path is None else SqliteStore(path)

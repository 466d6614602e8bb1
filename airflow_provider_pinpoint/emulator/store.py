"""What the emulator accepted: endpoint state, every event with its receive count, statistics.

Reads are served from memory. :class:`SqliteStore` writes every accepted request through to a
SQLite file in one transaction and loads it back on start, so a restarted emulator still knows
what it accepted (the evidence a resumed load is checked against).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import msgspec

from airflow_provider_pinpoint.emulator.validation import Catalog

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
        # app -> (endpoint id, event id) -> [event JSON, receive count]
        self._events: dict[str, dict[tuple[str, str], list]] = {}
        self._endpoints: dict[str, dict[str, dict]] = {}
        self._catalogs: dict[str, Catalog] = {}

    def catalog(self, app: str) -> Catalog:
        catalog = self._catalogs.get(app)
        if catalog is None:
            catalog = self._catalogs[app] = Catalog()
        return catalog

    def record(self, app: str, endpoints: Iterable[tuple[str, dict]], events: Iterable[tuple[str, str, bytes]]) -> int:
        """Keep accepted endpoint updates and events; returns how many events were received before."""
        app_endpoints = self._endpoints.setdefault(app, {})
        for endpoint_id, endpoint in endpoints:
            app_endpoints[endpoint_id] = endpoint
        app_events = self._events.setdefault(app, {})
        duplicates = 0
        for endpoint_id, event_id, body in events:
            key = (endpoint_id, event_id)
            entry = app_events.get(key)
            if entry is None:
                app_events[key] = [body, 1]
            else:
                entry[0] = body
                entry[1] += 1
                duplicates += 1
        return duplicates

    def save(self, app: str | None = None) -> None:
        """Persist what changed since the last save (nothing to do in memory)."""
        if app is not None:
            self.catalog(app).added.clear()

    def events(self, app: str) -> list[tuple[str, str, bytes, int]]:
        """(endpoint id, event id, event JSON, receive count) in order of first receipt."""
        return [(key[0], key[1], entry[0], entry[1]) for key, entry in self._events.get(app, {}).items()]

    def endpoints(self, app: str) -> dict[str, dict]:
        return dict(self._endpoints.get(app, {}))

    def reset(self) -> None:
        self.stats = empty_stats()
        self._events.clear()
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
        self._load()

    def _load(self) -> None:
        for app, endpoint_id, event_id, body, count, seq in self._db.execute(
            "SELECT app, endpoint_id, event_id, body, receive_count, seq FROM events ORDER BY seq"
        ):
            self._events.setdefault(app, {})[(endpoint_id, event_id)] = [bytes(body), count]
            self._seq = seq
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

    def record(self, app: str, endpoints: Iterable[tuple[str, dict]], events: Iterable[tuple[str, str, bytes]]) -> int:
        endpoints = list(endpoints)
        events = list(events)
        duplicates = super().record(app, endpoints, events)
        rows = []
        for endpoint_id, event_id, body in events:
            self._seq += 1
            rows.append((app, endpoint_id, event_id, body, self._seq))
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (app, endpoint_id, event_id) "
            "DO UPDATE SET body = excluded.body, receive_count = receive_count + 1",
            rows,
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?)",
            [(app, endpoint_id, msgspec.json.encode(endpoint).decode()) for endpoint_id, endpoint in endpoints],
        )
        return duplicates

    def save(self, app: str | None = None) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        if app is not None:
            catalog = self.catalog(app)
            self._db.executemany(
                "INSERT OR IGNORE INTO catalog VALUES (?, ?, ?, ?)",
                [(app, kind, name, value) for kind, name, value in catalog.added],
            )
            catalog.added.clear()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('stats', ?)", (json.dumps(self.stats),))
        self._db.execute("COMMIT")

    def reset(self) -> None:
        super().reset()
        self._seq = 0
        self._db.executescript("DELETE FROM events; DELETE FROM endpoints; DELETE FROM catalog; DELETE FROM meta;")

    def close(self) -> None:
        self._db.close()


def open_store(path: str | Path | None) -> MemoryStore:
    return MemoryStore() if path is None else SqliteStore(path)

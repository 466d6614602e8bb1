"""One run's use of the sync state: take out what needs no sending, then advance the state.

Before sending (:class:`Sync`, called by ``prepare``): endpoints whose body hashes to the one last
accepted are taken out as ``unchanged``, events whose (endpoint id, event id) was accepted before as
``already_sent``; both become results rows with their reason, never requests.

Crash safety, in order:

1. Before any request can go, the endpoints about to be sent are written to this part's pending
   file, which every reader takes as "send again": a kill after that point cannot leave an entry
   claiming the destination holds a body it may no longer hold.
2. While sending, the rows accepted are noted (:meth:`Sync.observe`); nothing is written.
3. Only after the results table is compacted (durable) does :meth:`Sync.commit` write the new
   part files (each in one step) and drop the pending file. Endpoints sent but not accepted stay
   marked "send again"; rejected and failed rows are never recorded as delivered.

A kill at any point therefore leaves a state that can cause resends, never a skipped row.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_provider_pinpoint.common.arrow import as_mask
from airflow_provider_pinpoint.results.rows import (
    ACCEPTED,
    ALREADY_SENT,
    DECISION_SCHEMA,
    ITEM_COLUMNS_SCHEMA,
    UNCHANGED,
    Decision,
    Outcomes,
)
from airflow_provider_pinpoint.state.files import (
    DEFAULT_RETENTION_DAYS,
    ENDPOINTS_SCHEMA,
    EVENTS_SCHEMA,
    StateError,
    StateFiles,
)
from airflow_provider_pinpoint.state.keys import SortedKeys, event_keys, from_arrow, text_hashes, to_arrow

REASONS = {
    UNCHANGED: "not sent: the same body was accepted for this endpoint before (sync state)",
    ALREADY_SENT: "not sent: this event id was accepted for this endpoint before (sync state)",
}
_DAY_MS = 86_400_000
# What observe keeps of an answer's rows, and how many it keeps before sorting them out at once.
_OBSERVED = pa.schema([DECISION_SCHEMA.field(name) for name in ("record_type", "status", "endpoint_id", "event_id")])
_FOLD_ROWS = 65_536
# Entries a commit writes in input order per batch.
_WRITE_ROWS = 1_000_000
# What the state takes of the rows accepted.
_ACCEPTED = pa.schema([DECISION_SCHEMA.field(name) for name in ("record_type", "endpoint_id", "event_id")])
# A part's footer key (see :func:`_in_order`): its entries are, one each, the ids of the input that
# wrote them, in that input's order. JSON: how many, the first id, and a SHA-256 of them all.
_IN_ORDER = "pinpoint.endpoints_in_input_order"
_ENTRY_COLUMNS = list(ENDPOINTS_SCHEMA.names)
_VALUE_COLUMNS = ["body_hash", "accepted_at"]


@dataclass(frozen=True, slots=True)
class Known:
    """What the state holds for the rows of an endpoints table: per row its id as text, the hash of
    the values last accepted, and whether there is one (see :meth:`Sync.known`)."""

    ids: pa.Array
    hashes: np.ndarray
    valid: np.ndarray

    def same(self, start: int, ids: pa.Array, hashes: np.ndarray | None) -> np.ndarray:
        """Which rows of the slice at ``start`` (their validated ids and values hashes) hold what was
        last accepted. A row whose id validation changed, or without hashes, counts as changed."""
        n = len(ids)
        if hashes is None or not n:
            return np.zeros(n, dtype=bool)
        window = slice(start, start + n)
        same = self.valid[window] & (self.hashes[window] == hashes).all(axis=1)
        if same.any():
            same &= as_mask(pc.equal(self.ids.slice(start, n), ids.cast(pa.string())))
        return same


@dataclass(frozen=True, slots=True)
class Unsent:
    """Rows the state says need no sending: results rows with ``status`` and its reason."""

    status: str
    outcomes: Outcomes

    def __len__(self) -> int:
        return len(self.outcomes)


class Sync:
    """The state of one destination as one run uses it (see the module docstring)."""

    UNCHANGED = UNCHANGED
    ALREADY_SENT = ALREADY_SENT

    def __init__(
        self, files: StateFiles, *, full_refresh: bool = False, retention_days: float = DEFAULT_RETENTION_DAYS
    ) -> None:
        self.files = files
        self.full_refresh = full_refresh
        self.started_ms = int(time.time() * 1000)
        self.cutoff_ms = self.started_ms - int(retention_days * _DAY_MS)
        self._lock = threading.Lock()
        # Valid endpoint rows: ids, hashes (only the changed rows' once compared), whether unchanged (None: not yet compared).
        self._slices: list[tuple[pa.Array, np.ndarray, np.ndarray | None]] = []
        self._candidate_ids = pa.array([], pa.string())
        self._candidate_bodies = np.zeros((0, 2), dtype=np.uint64)
        # The input's ids in its order (:meth:`known`) and each candidate's row in it (:meth:`add_compared`
        # told the rows): commit then writes the part's entries in this order (:meth:`_ordered_rows`).
        self._order: pa.Array | None = None
        self._distinct = False  # no two of the ids in ``_order`` are the same in any case
        self._digest: str | None = None  # of ``_order`` (:func:`_ids_digest`), once asked
        self._digested = False
        # The endpoint files :meth:`known` found to hold one entry per input row, at its row: by
        # their footer's mark (:func:`_in_order`), or by comparing their ids (older parts).
        self._in_order: set[str] = set()
        self._in_place: set[str] = set()
        self._positions: list[np.ndarray] | None = []
        self._candidate_rows: np.ndarray | None = None
        self._pending_ms = 0
        self._events: SortedKeys | None = None
        self._accepted_endpoints: list[pa.Array] = []
        self._accepted_events: list[tuple[pa.Array, pa.Array]] = []
        self._observed: list[pa.RecordBatch] = []  # answers' rows not yet sorted out (see observe)
        self._observed_accepted: list[pa.RecordBatch] = []  # the ids of requests accepted whole, likewise
        self._observed_rows = 0
        # What this run's input had: a full refresh rebuilds only the kinds of rows it saw.
        self._saw_endpoints = False
        self._saw_events = False

    # Before sending ---------------------------------------------------------------------------

    def add_endpoints(self, ids: pa.Array, bodies: pa.Array) -> None:
        """A slice of valid endpoint rows (ids and the exact bodies that would be sent), compared
        with the state by :meth:`unchanged_endpoints` (the stream sinks' endpoint records)."""
        self._slices.append((ids, text_hashes(bodies), None))

    def known(self, ids: pa.Array | pa.ChunkedArray, *, distinct: bool = False) -> Known:
        """What the state holds for each of ``ids`` (an endpoints table's whole id column, as read):
        read once, so that each slice can then be compared as soon as it is validated, and only the
        rows that changed need a body at all. A full refresh knows nothing.

        ``distinct``: no two of ``ids`` are the same in any case (validation's ``seen_for`` found so);
        a state entry spelt exactly as the id at its own position is then that id's, found without a
        hash join (see :meth:`_latest`)."""
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks() if ids.num_chunks else pa.array([], ids.type)
        try:
            text = ids.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not text: the rows are rejected anyway
            text = pa.nulls(len(ids), pa.string())
        self._order, self._distinct, self._digested = text, distinct, False
        if self.full_refresh:
            return Known(text, np.zeros((len(text), 2), dtype=np.uint64), np.zeros(len(text), dtype=bool))
        hashes, valid = self._latest(text, distinct=distinct)
        return Known(text, hashes, valid)

    def _order_digest(self) -> str | None:
        """The digest of the input's ids (:func:`_ids_digest`), made once."""
        if not self._digested:
            self._digest = _ids_digest(self._order) if self._order is not None else None
            self._digested = True
        return self._digest

    def add_compared(self, ids: pa.Array, hashes: np.ndarray, same: np.ndarray, rows: np.ndarray | None = None) -> None:
        """A slice of valid endpoint rows already compared with :meth:`known`: their ids, the hashes
        to remember for them once accepted (those of the rows not ``same``), which are ``same``, and
        ``rows``: their positions in the ids given to :meth:`known` (so that commit can write the
        entries in the input's order)."""
        self._slices.append((ids, hashes[~same], same))
        if rows is None or self._positions is None:
            self._positions = None
        else:
            self._positions.append(np.asarray(rows, dtype=np.int64)[~same])

    def unchanged_endpoints(self) -> np.ndarray:
        """Which of the endpoints added (in the order added) are unchanged; the others are written
        to the pending file before this returns, so that they are sent again after any crash."""
        self._saw_endpoints = True
        if not self._slices:
            return np.zeros(0, dtype=bool)
        ids = pa.concat_arrays([pa.array(part).cast(pa.string()) for part, _, _ in self._slices])
        bodies = np.concatenate([hashes for _, hashes, _ in self._slices])
        compared = [same for _, _, same in self._slices]
        self._slices = []
        if all(same is not None for same in compared):
            same: np.ndarray = np.concatenate([part for part in compared if part is not None])
            changed = np.flatnonzero(~same)
            self._candidate_bodies = bodies
            if self._positions is not None and self._order is not None:
                self._candidate_rows = np.concatenate(self._positions) if self._positions else np.zeros(0, np.int64)
            self._positions = []
        else:
            same = np.zeros(len(ids), dtype=bool) if self.full_refresh else self._match(ids, bodies)
            changed = np.flatnonzero(~same)
            self._candidate_bodies = bodies[changed]
        self._candidate_ids = ids.take(pa.array(changed))
        self._write_pending()
        return same

    def _match(self, ids: pa.Array, bodies: np.ndarray) -> np.ndarray:
        """Whether each endpoint's latest entry, over every part, holds this body."""
        stored, valid = self._latest(ids)
        return valid & (stored == bodies).all(axis=1)

    def _latest(self, ids: pa.Array, *, distinct: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Each endpoint's latest hash over every part, and where there is one to compare with (ids
        matched in any case: Pinpoint's endpoint ids are case-insensitive, so ``EP-1`` accepted
        after ``ep-1`` is that endpoint's latest body; a repeated input id matches only its first
        row, so the others go; two entries of one time that disagree, or a "send again" entry, leave
        none).

        Commit keeps a part's entries in the order of the input that wrote them (:meth:`_commit_endpoints`),
        so on a daily table in a stable order each entry sits at its id's own row. When the input's
        ids are ``distinct`` in any case, an entry spelt exactly as the id at its position is that
        id's (exact equality implies equality in any case, and no other row folds to it); only the
        entries found otherwise go through Arrow's hash join of the lower-cased ids, which on a
        million endpoints cost several times the positional comparison. A file whose footer says
        it holds exactly these ids in this order (:func:`_in_order`, written by the commit of a run
        on the same ids) is not even asked for its ids: reading and comparing them cost twice
        what the rest of reading the file did.
        """
        best = np.full(len(ids), -1, dtype=np.int64)
        stored = np.zeros((len(ids), 2), dtype=np.uint64)
        valid = np.zeros(len(ids), dtype=bool)
        matched = _Matched(ids)

        def columns(meta: pq.FileMetaData) -> list[str]:
            mine = distinct and ids is self._order and _in_order(meta, ids, self._order_digest)
            return _VALUE_COLUMNS if mine else _ENTRY_COLUMNS

        for path in self.files.endpoint_files():
            offset = 0  # the position in the file of the batch's first entry
            every = distinct and ids is self._order  # whether each entry so far was at its own row
            for batch in self.files.batches(path, columns):
                where: slice | np.ndarray
                size = len(batch)
                if batch.num_columns == len(_VALUE_COLUMNS):  # the file is in the input's order
                    self._in_order.add(path)
                    # (the entries after the input's, if any, are of no endpoint in it: the mark says so)
                    batch = batch.slice(0, max(0, min(size, len(ids) - offset)))
                    at = np.arange(offset, offset + len(batch), dtype=np.int64)
                    where = slice(offset, offset + len(batch))
                else:
                    entries = batch.column(0)
                    at = _in_place(entries, ids, offset) if distinct else np.full(len(batch), -1, dtype=np.int64)
                    every = every and bool((at >= 0).all())
                    where = at = matched.rows(entries, at)
                offset += size
                hit = at >= 0
                if not hit.any():
                    continue
                body, body_valid = from_arrow(batch.column("body_hash"))
                stamp = _millis(batch.column("accepted_at"))
                if not hit.all():
                    at, body, body_valid, stamp = at[hit], body[hit], body_valid[hit], stamp[hit]
                    where = at
                before = best[where]
                # Newer than all seen for them: each taken (an id twice in one batch takes its last
                # row, as below; a part file holds at most one entry per id that is not "send again").
                if (stamp > before).all():
                    best[where], stored[where], valid[where] = stamp, body, body_valid
                    continue
                tie = stamp == before
                valid[at[tie]] &= body_valid[tie] & (stored[at[tie]] == body[tie]).all(axis=1)
                newer = stamp > before
                best[at[newer]] = stamp[newer]
                stored[at[newer]] = body[newer]
                valid[at[newer]] = body_valid[newer]
            if every and offset == len(ids):  # the whole file, one entry per row
                self._in_place.add(path)
        return stored, valid

    def _write_pending(self) -> None:
        path = self.files.own("endpoints", pending=True)
        if not len(self._candidate_ids):
            return
        self._pending_ms = int(time.time() * 1000)
        earlier = self._kept_rows(path, self._candidate_ids)
        fresh = _endpoint_rows(self._candidate_ids, None, self._pending_ms)
        self.files.replace(path, ENDPOINTS_SCHEMA, _chain(earlier, [fresh]))

    def already_sent(self, endpoint_ids: pa.Array, event_ids: pa.Array) -> np.ndarray:
        """Which of these events were accepted before (within the retention)."""
        with self._lock:
            self._saw_events = True
            if self._events is None:
                self._events = self._load_events()
        if not len(self._events) or not len(event_ids):
            return np.zeros(len(event_ids), dtype=bool)
        return self._events.find(event_keys(endpoint_ids, event_ids)) >= 0

    def _load_events(self) -> SortedKeys:
        if self.full_refresh:
            return SortedKeys(np.zeros((0, 2), dtype=np.uint64))
        parts = []
        for path in self.files.event_files():
            for batch in self.files.batches(path, ["key", "accepted_at"]):
                keys, _ = from_arrow(batch.column(0))
                parts.append(keys[_millis(batch.column(1)) >= self.cutoff_ms])
        return SortedKeys(np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.uint64))

    # While sending ----------------------------------------------------------------------------

    def observe(self, decided: Outcomes) -> None:
        """Note the rows accepted in ``decided`` (already written to the results journal).

        The answers' rows are kept as they come and sorted out ``_FOLD_ROWS`` at a time: filtering
        each answer's hundred rows on its own cost a dozen Arrow calls per answer, as much CPU as
        the rest of recording it (a first sync of a million endpoints makes 10,000 answers). A
        request accepted whole (:attr:`Outcomes.uniform`) is kept as its items' type and ids, as they
        come: building its rows only to find them all accepted took six times as long.
        """
        if not decided.accepted:
            return
        uniform = decided.uniform
        if uniform is not None and uniform[1].status == ACCEPTED:
            # Only the columns the state takes: the source and row number would stay alive with it.
            items = uniform[0].select(_ACCEPTED.names)
            with self._lock:
                self._observed_accepted.append(items)
                self._observed_rows += items.num_rows
                if self._observed_rows >= _FOLD_ROWS:
                    self._fold_observed()
            return
        columns = decided.batch.select(list(_OBSERVED.names))
        with self._lock:
            self._observed.append(columns)
            self._observed_rows += columns.num_rows
            if self._observed_rows >= _FOLD_ROWS:
                self._fold_observed()

    def _fold_observed(self) -> None:
        """Move the accepted rows of the answers observed into the accepted lists (under the lock)."""
        parts = []
        if self._observed:
            batch = _joined(self._observed, _OBSERVED)
            parts.append(batch.filter(pc.equal(batch.column("status"), ACCEPTED)).select(_ACCEPTED.names))
        if self._observed_accepted:
            parts.append(_joined(self._observed_accepted, _ACCEPTED))
        self._observed, self._observed_accepted, self._observed_rows = [], [], 0
        if not parts:
            return
        accepted = _joined(parts, _ACCEPTED)
        is_event = pc.equal(accepted.column("record_type"), "event")
        events = accepted.filter(is_event)
        endpoints = accepted.filter(pc.invert(is_event))
        if endpoints.num_rows:
            self._accepted_endpoints.append(endpoints.column("endpoint_id"))
        if events.num_rows:
            self._accepted_events.append((events.column("endpoint_id"), events.column("event_id")))

    # After the results are durable ------------------------------------------------------------

    def commit(self) -> dict[str, int]:
        """Write this run's part of the state from the rows accepted; drop the pending file."""
        with self._lock:
            self._fold_observed()
        stamp = max(int(time.time() * 1000), self._pending_ms + 1)
        written = {"endpoints": 0, "events": 0}
        pending = self.files.own("endpoints", pending=True)
        has_pending = bool(len(self._candidate_ids)) or pending in self.files.endpoint_files()
        if has_pending or (self.full_refresh and self._saw_endpoints):
            written["endpoints"] = self._commit_endpoints(stamp, pending)
            self.files.remove(pending)
        expired = self._expired_events()
        if self._accepted_events or (self.full_refresh and self._saw_events) or expired:
            written["events"] = self._commit_events(stamp)
        self.files.remove_leftovers()
        return written

    def _commit_endpoints(self, stamp: int, pending: str) -> int:
        """Rewrite this part's endpoints file: each candidate's entry (its hash if accepted, else
        "send again") replaces the endpoint's entries in the file, in any case; the other entries
        stay. When the endpoints step told each row's place (:meth:`known`, :meth:`add_compared`),
        the entries are written in this run's input order, then those of endpoints the input
        lacks (:meth:`_ordered_rows`), which lets the next run in the same order match them by
        position (:meth:`_latest`); otherwise each candidate's entry takes the place of the
        endpoint's entry and new ones follow. Either way, the same entries as replacing them at
        the end would give."""
        candidates = self._candidate_ids
        accepted = np.zeros(len(candidates), dtype=bool)
        if self._accepted_endpoints:
            ids = pa.concat_arrays([a.cast(pa.string()) for a in self._accepted_endpoints])
            found = pc.index_in(ids, value_set=candidates)
            accepted[found.drop_null().to_numpy(zero_copy_only=False).astype(np.int64)] = True
        # Each candidate's new entry, in candidate order (body null: not accepted, "send again").
        fresh = _endpoint_rows(candidates, self._candidate_bodies, stamp, accepted)
        placed = np.zeros(len(candidates), dtype=bool)  # candidates whose entry took an old one's place
        # Endpoints a crashed run was about to send stay marked "send again".
        earlier_pending = self._kept_rows(pending, candidates)
        # A full refresh forgets what this part held of the endpoints it did not send now (rows
        # rejected, or not in the input): their entries stay, as "send again". Dropped, another
        # part's older entry for one of them would stand for it, and a row with that older body
        # would count as unchanged though the destination holds a newer one.
        forget_at = stamp if self.full_refresh else None
        if self._order is not None and self._candidate_rows is not None:
            mark: dict[str, str] = {}  # the footer's mark of entries in the input's order, if they are
            if self._all_in_place(candidates):
                ordered = self._rows_in_order(accepted, stamp, earlier_pending, mark)
            else:

                def own_rows() -> Iterable[tuple[pa.RecordBatch, np.ndarray]]:
                    return self._own_rows(candidates, forget_at)

                ordered = self._ordered_rows(own_rows, earlier_pending, fresh, self._candidate_rows, mark, forget_at)
            return self.files.replace(self.files.own("endpoints"), ENDPOINTS_SCHEMA, ordered, lambda: mark)
        own = self._replaced_rows(self.files.own("endpoints"), fresh, placed, forget_at)

        def rest() -> Iterator[pa.RecordBatch]:  # read once ``own`` has placed what it could
            yield fresh.filter(pa.array(~placed))

        return self.files.replace(self.files.own("endpoints"), ENDPOINTS_SCHEMA, _chain(own, earlier_pending, rest()))

    def _all_in_place(self, candidates: pa.Array) -> bool:
        """Whether this part's file holds one entry per input row, each at its row, as :meth:`known`
        found (:func:`_in_order`), and each candidate is spelt as the input's row: the commit then
        needs nothing of the file but its hashes and times (:meth:`_rows_in_order`)."""
        order, rows = self._order, self._candidate_rows
        if self.full_refresh or not self._distinct or order is None or rows is None:
            return False
        own = self.files.own("endpoints")
        if (own not in self._in_order and own not in self._in_place) or len(candidates) != len(rows):
            return False
        return not len(rows) or bool(as_mask(pc.equal(candidates, order.take(pa.array(rows)))).all())

    def _rows_in_order(
        self, accepted: np.ndarray, stamp: int, pending: Iterable[pa.RecordBatch], mark: dict[str, str]
    ) -> Iterator[pa.RecordBatch]:
        """:meth:`_ordered_rows` where the file holds one entry per input row, each at its row
        (:meth:`_all_in_place`): each candidate's entry takes its row's, the others stay, the
        entries after the input's (a marked file's: of endpoints it lacks) follow as they are, then
        those of the ``pending`` file kept (every row has its entry already). Nothing is
        matched: the file's ids are not even read when its footer says they are the input's
        (:func:`_in_order`), else compared with the input's as a whole. Either must still hold (the
        lock keeps it so), or the commit stops and replaces nothing. The commit of a daily sync of a
        million endpoints in the same order: 0.13-0.17 s of CPU, against 0.46-0.58 s matching."""
        order, rows = self._order, self._candidate_rows
        assert order is not None and rows is not None
        digest = self._order_digest()
        n = len(order)
        changed = self._changed()
        path = self.files.own("endpoints")
        marked = path in self._in_order

        def columns(meta: pq.FileMetaData) -> list[str]:
            if meta.num_rows < n or (not marked and meta.num_rows != n):
                raise changed
            if marked and not _in_order(meta, order, lambda: digest):
                raise changed
            # The ids of entries after the input's are written again as they are.
            return _VALUE_COLUMNS if marked and meta.num_rows == n else _ENTRY_COLUMNS

        hashes = np.empty((n, 2), dtype=np.uint64)
        hashed = np.empty(n, dtype=bool)  # the entry holds a hash (else "send again")
        stamps = np.empty(n, dtype=np.int64)

        def ours() -> Iterator[pa.RecordBatch]:
            """The input's rows' entries, each candidate's new one in its row's place."""
            hashes[rows], hashed[rows], stamps[rows] = self._candidate_bodies, accepted, stamp
            for start in range(0, n, _WRITE_ROWS):
                part = slice(start, start + _WRITE_ROWS)
                yield _entries(order.slice(start, _WRITE_ROWS), hashes[part], hashed[part], stamps[part])

        offset = 0
        written = False
        for batch in self.files.batches(path, columns):
            head = batch.slice(0, max(0, min(len(batch), n - offset)))
            if not marked and not _same_ids(head.column(0), order.slice(offset, len(head))):
                raise changed
            part = slice(offset, offset + len(head))
            hashes[part], hashed[part] = from_arrow(head.column("body_hash"))
            stamps[part] = _millis(head.column("accepted_at"))
            offset += len(head)
            if len(head) < len(batch):  # entries of endpoints the input lacks (the mark says so): after its own
                if not written:
                    yield from ours()
                    written = True
                yield batch.slice(len(head)).cast(ENDPOINTS_SCHEMA)
        if offset != n:
            raise changed
        if not written:
            yield from ours()
        followed = False
        for batch in pending:
            followed = followed or bool(len(batch))
            yield batch.cast(ENDPOINTS_SCHEMA)
        # A pending entry kept may be of an input row's endpoint (one not sent this run): no mark
        # then, as a mark says that the entries after the input's are of no endpoint in it.
        if digest is not None and not followed:
            mark.update(_mark(order, digest))

    def _changed(self) -> StateError:
        return StateError(
            f"the sync state at {self.files.where()} changed while this run rewrote it; nothing was replaced"
        )

    def _own_rows(
        self, candidates: pa.Array, forget_at: int | None = None
    ) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        """This part's endpoint entries batch by batch, each with whether it is kept (not one of the
        ``candidates``' in any case): batches whole, so that an entry's position in the file is known;
        each "send again" at ``forget_at`` if given."""
        path = self.files.own("endpoints")
        if path not in self.files.endpoint_files():
            return
        folded = _folded(candidates)
        for batch in self.files.batches(path, list(ENDPOINTS_SCHEMA.names)):
            yield _forgotten(batch, forget_at), ~as_mask(pc.is_in(_folded(batch.column(0)), value_set=folded))

    def _ordered_rows(
        self,
        own: Callable[[], Iterable[tuple[pa.RecordBatch, np.ndarray]]],
        pending: Iterable[pa.RecordBatch],
        fresh: pa.RecordBatch,
        fresh_rows: np.ndarray,
        mark: dict[str, str],
        forget_at: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """The entries of this part's file kept (``own()`` reads them: each batch with which of its
        entries stay), those of the ``pending`` file kept and ``fresh`` (the candidates', each for the
        input row of ``fresh_rows``), in this run's input order: each
        where its endpoint's row is in the input (a kept entry at the row of its id in any case),
        then the entries of endpoints the input lacks, in their old order. The next run with the
        rows in the same order then finds each entry at its id's position (:meth:`_latest`).

        Entries are placed by row without holding them whole: per input row a 16-byte hash, a time
        and whether it has an entry; the id text is the input's, the entry's own spelling kept
        only where it differs. An entry whose id is not at its position in the input is found
        by a hash join of the lower-cased ids; a second entry for one row goes with the rest.
        The file's entries the input lacks are not held either (a shard's sync against a large
        state lacks most of them): which of each batch's entries were placed is kept, one byte
        per entry, and the file is read a second time for the others. When every row has its
        entry, spelt as the input's, and every entry after them is of no endpoint in the input,
        ``mark`` gets the footer's mark of that (:func:`_in_order`).
        """
        order = self._order
        assert order is not None
        n = len(order)
        hashes = np.zeros((n, 2), dtype=np.uint64)
        hashed = np.zeros(n, dtype=bool)  # the entry holds a hash (else "send again")
        stamps = np.zeros(n, dtype=np.int64)
        filled = np.zeros(n, dtype=bool)
        spelt: list[tuple[np.ndarray, pa.Array]] = []  # rows whose entry spells the id otherwise
        rest: list[pa.RecordBatch] = []  # entries of the pending file the input lacks, in their order
        # Per batch of the file as read: a checksum of its ids, and which of its entries are kept
        # but were not placed (those of endpoints the input lacks).
        left: list[tuple[tuple[int, int], np.ndarray]] = []
        matched = _Matched(order)
        apart = [True]  # whether every entry not placed is of no endpoint in the input (in any case)

        def place(batch: pa.RecordBatch, at: np.ndarray) -> np.ndarray:
            """Put the entries of ``batch`` at their rows ``at`` (-1: none); which were not placed."""
            free = at >= 0
            free[free] = ~filled[at[free]]
            ours = at[free]
            if len(ours) and np.bincount(ours).max() > 1:  # one row twice in the batch: its first entry only
                _, first = np.unique(ours, return_index=True)
                keep = np.zeros(len(ours), dtype=bool)
                keep[first] = True
                free[np.flatnonzero(free)[~keep]] = False
                ours = at[free]
            if apart[0] and bool(((at >= 0) & ~free).any()):  # a second entry of an input row's endpoint
                apart[0] = False
            if free.any():
                body, valid = from_arrow(batch.column(1).filter(pa.array(free)))
                hashes[ours], hashed[ours], filled[ours] = body, valid, True
                stamps[ours] = _millis(batch.column(2).filter(pa.array(free)))
                names = batch.column(0).filter(pa.array(free)).cast(pa.string())
                differs = ~as_mask(pc.equal(names, order.take(pa.array(ours))))
                if differs.any():
                    spelt.append((ours[differs], names.filter(pa.array(differs))))
            return ~free

        place(fresh, fresh_rows)  # (every candidate has its row)
        offset = 0  # the position in the file of the batch's first entry, as the next run reads it
        for batch, stays in own():
            check = _ids_check(batch.column(0))
            at = _in_place(batch.column(0), order, offset)
            offset += len(batch)
            if stays.all():
                left.append((check, place(batch, matched.rows(batch.column(0), at))))
                continue
            unplaced = np.zeros(len(batch), dtype=bool)
            batch, at = batch.filter(pa.array(stays)), at[stays]
            unplaced[np.flatnonzero(stays)[place(batch, matched.rows(batch.column(0), at))]] = True
            left.append((check, unplaced))
        for batch in pending:
            unplaced = place(batch, matched.rows(batch.column(0), np.full(len(batch), -1, dtype=np.int64)))
            if unplaced.any():
                rest.append(batch.filter(pa.array(unplaced)).cast(ENDPOINTS_SCHEMA))
        del matched  # its lower-cased ids, before the entries are written
        fixes = (np.concatenate([r for r, _ in spelt]), pa.concat_arrays([t for _, t in spelt])) if spelt else None
        for start in range(0, n, _WRITE_ROWS):
            rows = np.flatnonzero(filled[start : start + _WRITE_ROWS]) + start
            if not len(rows):
                continue
            if len(rows) == len(filled[start : start + _WRITE_ROWS]):  # every row: slices, not copies
                whole = slice(start, start + len(rows))
                ids = order.slice(start, len(rows))
                body_hashes, body_valid, times = hashes[whole], hashed[whole], stamps[whole]
            else:
                ids = order.take(pa.array(rows))
                body_hashes, body_valid, times = hashes[rows], hashed[rows], stamps[rows]
            if fixes is not None:
                where = np.flatnonzero((fixes[0] >= start) & (fixes[0] < start + _WRITE_ROWS))
                if len(where):
                    slot = np.searchsorted(rows, fixes[0][where])
                    mask = np.zeros(len(rows), dtype=bool)
                    mask[slot] = True
                    names = fixes[1].take(pa.array(where[np.argsort(slot)]))
                    ids = pc.replace_with_mask(ids, pa.array(mask), names)
            yield _entries(ids, body_hashes, body_valid, times)
        if fixes is None and filled.all() and apart[0]:
            digest = self._order_digest()
            if digest is not None:
                mark.update(_mark(order, digest))
        if any(unplaced.any() for _, unplaced in left):  # else the input has every entry: nothing to read again
            yield from self._unplaced_rows(left, forget_at)
        yield from rest

    def _unplaced_rows(
        self, left: list[tuple[tuple[int, int], np.ndarray]], forget_at: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """This part's file read again (the lock keeps it as it was), each batch's ``left`` entries
        only: a plain filter. A batch whose ids are not those of the first read stops the commit,
        which then replaces nothing (the state stays as it was: at most resends)."""
        changed = self._changed()
        batches = self.files.batches(self.files.own("endpoints"), list(ENDPOINTS_SCHEMA.names))
        try:
            seen = 0
            for batch in batches:
                if seen >= len(left) or _ids_check(batch.column(0)) != left[seen][0]:
                    raise changed
                unplaced = left[seen][1]
                seen += 1
                if unplaced.any():
                    yield _forgotten(batch.filter(pa.array(unplaced)).cast(ENDPOINTS_SCHEMA), forget_at)
            if seen != len(left):
                raise changed
        finally:
            close = getattr(batches, "close", None)  # a failed write leaves no file open
            if close is not None:
                close()

    def _replaced_rows(
        self, path: str, fresh: pa.RecordBatch, placed: np.ndarray, forget_at: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The rows of one of this part's endpoint files, each row of an endpoint in ``fresh`` (in
        any case) replaced by that endpoint's fresh row where the endpoint first appears, dropped
        where it appears again; ``placed`` marks the fresh rows so placed; the others "send again"
        at ``forget_at`` if given."""
        if path not in self.files.endpoint_files():
            return
        folded = _folded(fresh.column(0))
        for batch in self.files.batches(path, list(ENDPOINTS_SCHEMA.names)):
            batch = _forgotten(batch, forget_at)
            slots = pc.index_in(_folded(batch.column(0)), value_set=folded)
            if not slots.null_count < len(slots):  # no candidate here: the batch as it is
                yield batch
                continue
            slot = slots.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            rows = np.flatnonzero(slot >= 0)
            # The first row of each candidate not placed yet takes its fresh row; other rows of it go.
            _, first = np.unique(slot[rows], return_index=True)
            takes = np.zeros(len(batch), dtype=bool)
            takes[rows[first]] = True
            takes[rows] &= ~placed[slot[rows]]
            placed[slot[takes]] = True
            keep = (slot < 0) | takes
            # Row i of the new batch: the old row i, or (where it takes one) the fresh row of its endpoint.
            source = np.where(takes, len(batch) + slot, np.arange(len(batch)))
            both = pa.concat_batches([batch.cast(ENDPOINTS_SCHEMA), fresh])
            yield both.take(pa.array(source[keep]))

    def _expired_events(self) -> bool:
        path = self.files.own("events")
        if path not in self.files.event_files():
            return False
        for batch in self.files.batches(path, ["accepted_at"]):
            if len(batch) and int(pc.min(_millis_array(batch.column(0))).as_py()) < self.cutoff_ms:
                return True
        return False

    def _commit_events(self, stamp: int) -> int:
        def kept() -> Iterator[pa.RecordBatch]:
            if self.full_refresh:
                return
            for batch in self.files.batches(self.files.own("events"), list(EVENTS_SCHEMA.names)):
                yield batch.filter(pa.array(_millis(batch.column(3)) >= self.cutoff_ms))

        fresh = []
        for endpoint_ids, event_ids in self._accepted_events:
            keys = event_keys(endpoint_ids, event_ids)
            fresh.append(
                pa.RecordBatch.from_arrays(
                    [
                        endpoint_ids.cast(pa.string()),
                        event_ids.cast(pa.string()),
                        to_arrow(keys),
                        _stamps(stamp, len(keys)),
                    ],
                    schema=EVENTS_SCHEMA,
                )
            )
        return self.files.replace(self.files.own("events"), EVENTS_SCHEMA, _chain(kept(), fresh))

    def _kept_rows(self, path: str, without: pa.Array) -> Iterator[pa.RecordBatch]:
        """The rows of one of this part's endpoint files whose endpoint id is not in ``without``, in
        any case."""
        if path not in self.files.endpoint_files():
            return
        folded = _folded(without)
        for batch in self.files.batches(path, list(ENDPOINTS_SCHEMA.names)):
            yield batch.filter(pc.invert(pc.is_in(_folded(batch.column(0)), value_set=folded)))

    # Results rows -----------------------------------------------------------------------------

    @staticmethod
    def unsent(
        status: str,
        record_type: str,
        endpoint_ids: pa.Array,
        event_ids: pa.Array | None,
        sources: pa.Array,
        rows: pa.Array,
        *,
        chunk: int,
    ) -> Iterator[Unsent]:
        """Results rows for rows not sent because of the state, ``chunk`` rows a piece, made as they
        are taken (a day's unchanged endpoints are most of the table: made at once, their rows
        took the table's size again).

        Each piece is decided alike (:attr:`Outcomes.uniform`: the items' own columns and one
        decision): the results journal then writes the status and reason once per piece, not once
        per row; those repeated columns were most of what a sync wrote, summed and read back.
        """
        text = pa.string()
        decision = Decision(status, None, REASONS[status], 0, None, None)
        for start in range(0, len(endpoint_ids), max(chunk, 1)):
            part = slice(start, start + chunk)
            n = len(endpoint_ids[part])
            items = pa.RecordBatch.from_arrays(
                [
                    pa.repeat(pa.scalar(record_type, text), n),
                    endpoint_ids[part].cast(text),
                    pa.nulls(n, text) if event_ids is None else event_ids[part].cast(text),
                    _plain(sources[part]),
                    rows[part].cast(pa.int64()),
                ],
                schema=ITEM_COLUMNS_SCHEMA,
            )
            outcomes = Outcomes(None, 0, 0, 0, 0)
            outcomes.uniform = (items, decision)
            yield Unsent(status, outcomes)


def _joined(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    """``batches`` as one batch (calls per chunk would cost per answer again); batches of other
    column types (no sink makes them today) are cast to ``schema`` first."""
    try:
        return pa.concat_batches(batches)
    except pa.ArrowInvalid:
        return pa.concat_batches([batch.select(schema.names).cast(schema) for batch in batches])


def _folded(ids: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Endpoint ids as the state matches them: lower-cased, as Pinpoint treats ``EP-1`` and ``ep-1``
    as one endpoint (the same folding as validation's check for ids repeated in another case)."""
    return pc.utf8_lower(ids.cast(pa.string()))


def _ids_check(ids: pa.Array) -> tuple[int, int]:
    """How many ``ids`` and a CRC-32 of their text and lengths: tells a second read of a state file
    from the first, at a fraction of what hashing each id costs."""
    if not len(ids):
        return 0, 0
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        ids = ids.cast(pa.string())
    width = np.int64 if pa.types.is_large_string(ids.type) else np.int32
    _, offsets_buffer, data = ids.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[ids.offset : ids.offset + len(ids) + 1]
    crc = zlib.crc32((offsets - offsets[0]).astype(np.int64).tobytes())
    if data is not None:
        crc = zlib.crc32(memoryview(data)[int(offsets[0]) : int(offsets[-1])], crc)
    return len(ids), crc ^ ids.null_count


def _ids_digest(ids: pa.Array) -> str | None:
    """A SHA-256 of ``ids``' lengths and text (None if one is null): an input and a part's file with
    the same digest hold the same ids in the same order. About 20 ms for a million ids, against
    45 ms to read a part's ids and 15 ms to compare them."""
    if not len(ids) or ids.null_count or not pa.types.is_string(ids.type):
        return None
    _, offsets_buffer, data = ids.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[ids.offset : ids.offset + len(ids) + 1]
    digest = hashlib.sha256((offsets - offsets[0]).astype("<i4").tobytes())
    if data is not None:
        digest.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
    return digest.hexdigest()


# What a mark says of the entries after the input's, if any. Marks without it (written before it
# was, over entries that could be of an input endpoint) are trusted only where there are none.
_AFTER = "of no endpoint among the rows"


def _mark(ids: pa.Array, digest: str) -> dict[str, str]:
    """The footer's mark of a part whose entries start with one for each of ``ids``, in their
    order, the entries after them (if any) of no endpoint among ``ids`` in any case."""
    return {_IN_ORDER: json.dumps({"rows": len(ids), "first": ids[0].as_py(), "sha256": digest, "after": _AFTER})}


def _in_order(meta: pq.FileMetaData, ids: pa.Array, digest: Callable[[], str | None]) -> bool:
    """Whether the file of footer ``meta`` starts with one entry for each of ``ids``, in their order,
    as its mark (:func:`_mark`) says; the entries after those (endpoints deleted from the table, or
    another shard's) are of no endpoint among ``ids`` in any case, which the commit that wrote the
    mark made sure of. The count and the first id are compared before the digest is made (a run in
    another order pays nothing for it); a file without the mark (older parts) is read as before."""
    raw = (meta.metadata or {}).get(_IN_ORDER.encode())
    if raw is None or not len(ids) or meta.num_rows < len(ids):
        return False
    try:
        mark = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(mark, dict) or mark.get("rows") != len(ids) or mark.get("first") != ids[0].as_py():
        return False
    if meta.num_rows != len(ids) and mark.get("after") != _AFTER:
        return False
    expected = digest()
    return expected is not None and mark.get("sha256") == expected


def _entries(ids: pa.Array, hashes: np.ndarray, valid: np.ndarray, stamps: np.ndarray) -> pa.RecordBatch:
    """Entries of ``ids``: their hashes (null where not ``valid``: "send again") and times in ms."""
    time = pa.array(stamps, pa.int64()).cast(ENDPOINTS_SCHEMA.field("accepted_at").type)
    return pa.RecordBatch.from_arrays([ids, to_arrow(hashes, valid), time], schema=ENDPOINTS_SCHEMA)


class _Matched:
    """An input's ids as state entries are matched to them: the rows found by position, completed
    by a hash join of the other entries against the ids lower-cased (made once, when first needed)."""

    def __init__(self, ids: pa.Array) -> None:
        self.ids = ids
        self._folded: pa.Array | None = None

    def rows(self, entries: pa.Array, at: np.ndarray) -> np.ndarray:
        """``at`` (each entry's row found by position, -1 where none) with the others' rows, or -1."""
        elsewhere = at < 0
        if elsewhere.any():
            if self._folded is None:
                self._folded = _folded(self.ids)
            probed = entries if elsewhere.all() else entries.filter(pa.array(elsewhere))
            at[elsewhere] = _first_rows(probed, self._folded)
        return at


def _first_rows(entries: pa.Array, folded: pa.Array) -> np.ndarray:
    """For each of ``entries`` (endpoint ids), the first of the ``folded`` ids (lower-cased, see
    :func:`_folded`) equal to it in any case, or -1.

    Arrow's ``index_in`` builds a hash table of its value set: of the input's ids when there are
    many entries, of the entries when they are few (those not in place after a row was deleted or
    added: the table then costs a fraction of one of a million ids)."""
    probed = _folded(entries)
    if len(probed) * 16 >= len(folded):
        return pc.index_in(probed, value_set=folded).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    unique = pc.unique(probed)
    which = pc.index_in(probed, value_set=unique).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    found = pc.index_in(folded, value_set=unique).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.flatnonzero(found >= 0)
    first = np.full(len(unique) + 1, -1, dtype=np.int64)  # the last slot answers ``which`` = -1
    keys, at = np.unique(found[rows], return_index=True)  # rows ascending: each key's first row
    first[keys] = rows[at]
    return first[which]


def _same_ids(a: pa.Array, b: pa.Array) -> bool:
    """Whether ``a`` and ``b`` are the same ids (none null) in the same order, compared as buffers:
    under 10 ms for a million, where comparing them id by id took 15 ms."""
    if len(a) != len(b) or a.null_count or b.null_count:
        return False
    if not (pa.types.is_string(a.type) and pa.types.is_string(b.type)):
        return False
    if not len(a):
        return True
    (_, offsets_a, data_a), (_, offsets_b, data_b) = a.buffers(), b.buffers()
    ends_a = np.frombuffer(offsets_a, dtype=np.int32)[a.offset : a.offset + len(a) + 1]
    ends_b = np.frombuffer(offsets_b, dtype=np.int32)[b.offset : b.offset + len(b) + 1]
    if not np.array_equal(ends_a - ends_a[0], ends_b - ends_b[0]):
        return False
    if ends_a[-1] == ends_a[0]:
        return True
    text_a = np.frombuffer(data_a, dtype=np.uint8)[ends_a[0] : ends_a[-1]]
    text_b = np.frombuffer(data_b, dtype=np.uint8)[ends_b[0] : ends_b[-1]]
    return bool(np.array_equal(text_a, text_b))


def _in_place(entries: pa.Array, ids: pa.Array, offset: int) -> np.ndarray:
    """For each state entry (the batch at ``offset`` in its file), the input row at the same
    position if it holds exactly the entry's id, else -1."""
    at = np.full(len(entries), -1, dtype=np.int64)
    n = min(len(entries), max(len(ids) - offset, 0))
    if n and _same_ids(entries.slice(0, n), ids.slice(offset, n)):  # the usual daily case, at once
        at[:n] = np.arange(offset, offset + n)
        return at
    if n:
        equal = np.flatnonzero(as_mask(pc.equal(entries.slice(0, n).cast(pa.string()), ids.slice(offset, n))))
        at[equal] = offset + equal
    return at


def _plain(sources: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(sources.type):
        sources = sources.dictionary_decode()
    return sources.cast(pa.string())


def _endpoint_rows(
    ids: pa.Array, bodies: np.ndarray | None, stamp: int, accepted: np.ndarray | None = None
) -> pa.RecordBatch:
    """Entries for ``ids`` at ``stamp``: their ``bodies`` hashes, null ("send again") where there
    are none or where not ``accepted``."""
    n = len(ids)
    body = pa.nulls(n, ENDPOINTS_SCHEMA.field("body_hash").type) if bodies is None else to_arrow(bodies)
    if bodies is not None and accepted is not None and not accepted.all():
        body = pc.if_else(pa.array(accepted), body, pa.nulls(n, ENDPOINTS_SCHEMA.field("body_hash").type))
    return pa.RecordBatch.from_arrays([ids.cast(pa.string()), body, _stamps(stamp, n)], schema=ENDPOINTS_SCHEMA)


def _forgotten(batch: pa.RecordBatch, forget_at: int | None) -> pa.RecordBatch:
    """``batch`` of endpoint entries as it is, or each entry "send again" at ``forget_at``."""
    if forget_at is None:
        return batch
    return _endpoint_rows(batch.column(0), None, forget_at)


def _stamps(stamp: int, n: int) -> pa.Array:
    return pa.repeat(
        pa.scalar(datetime.fromtimestamp(stamp / 1000, UTC), ENDPOINTS_SCHEMA.field("accepted_at").type), n
    )


def _millis_array(column: pa.Array) -> pa.Array:
    return column.cast(pa.int64())


def _millis(column: pa.Array) -> np.ndarray:
    return _millis_array(column).to_numpy(zero_copy_only=False)


def _chain(*groups: object) -> Iterator[pa.RecordBatch]:
    for group in groups:
        yield from group  # type: ignore[misc]

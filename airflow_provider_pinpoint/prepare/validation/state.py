"""What validation carries from one batch to the next: ids and their first spellings, event types, event ids.

Endpoint ids are compared case-insensitively over the whole load, and (endpoint id, event id)
pairs must not repeat; millions of them are kept as 64-bit hashes in :class:`HashSet` s, 8 bytes
each, rather than as Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.common.arrow import as_mask, none_of, repeats, valid_mask
from airflow_provider_pinpoint.prepare.validation.checked import Checked, source_label


class HashSet:
    """A set of 64-bit hashes, 8 bytes each (a Python set costs many times that), in sorted runs.

    Membership of a batch of hashes is a binary search per run. Runs stop merging at ``MAX_RUN``
    hashes: a merge holds both runs and the result at once, and merging two halves of millions of
    hashes late in a load would set the loader's peak memory. So there are at most log2(MAX_RUN)
    runs plus one per ``MAX_RUN`` hashes.
    """

    MAX_RUN = 1 << 20

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(len(hashes), dtype=bool)
        if not self._runs or not len(hashes):
            return found
        # Needles in order: numpy starts each search where the last ended (several times faster
        # over millions of hashes than needles in random order).
        order = np.argsort(hashes)
        ordered = hashes[order]
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, ordered), len(run) - 1)
            found[order] |= run[at] == ordered
        return found

    def add(self, hashes: np.ndarray) -> None:
        run = _distinct(np.sort(np.asarray(hashes, dtype=np.uint64)))
        while self._runs and len(self._runs[-1]) <= len(run) and len(self._runs[-1]) + len(run) <= self.MAX_RUN:
            run = _merged(self._runs.pop(), run)
        if len(run):
            self._runs.append(run)


def _merged(older: np.ndarray, newer: np.ndarray) -> np.ndarray:
    """The distinct values of two sorted runs, sorted: what ``np.union1d`` gives, in about half its memory.

    ``union1d`` holds its inputs, their concatenation, a sorted copy and the result at once, on a
    long load the loader's peak. Here the inputs go as soon as they are concatenated,
    the concatenation is sorted in place (two sorted runs: one linear merge pass), then deduplicated.
    """
    both = np.concatenate((older, newer))
    del older, newer
    both.sort(kind="stable")
    return _distinct(both)


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array, in order: ``np.unique`` of it, without numpy's hash table.

    numpy 2's ``np.unique`` of 64-bit integers builds a hash table and sorts what it kept; on the
    hashes of a 65,536-row batch that took about 20 ms against under 1 ms for a sort and one pass.
    """
    distinct = np.empty(len(ordered), dtype=bool)
    distinct[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=distinct[1:])
    return ordered[distinct]


def hashed(values: pa.Array) -> np.ndarray:
    """64-bit hashes of text values for a :class:`HashSet` (a collision is an accepted risk).

    Python's own string hash (SipHash), seeded per process: a hash lives only in the process that
    made it, never written anywhere.
    """
    return np.fromiter(map(hash, values.to_pylist()), dtype=np.int64, count=len(values)).view(np.uint64)


@dataclass
class EventState:
    """What validation remembers across event batches: endpoint id spellings, event types and event ids seen.

    Endpoint ids are compared lower-cased, as 64-bit hashes in :class:`HashSet` s of 8 bytes an id:
    ``lowered`` holds every id met. Only ids whose winning (first) spelling has capitals need more:
    the hashes of that spelling (``capital_spellings``) and of its lower-cased form
    (``capital_lowered``). A spelling of a known id then loses if it is the lower-cased form of an
    id won by a capitalised spelling, or if it has capitals and is no winning spelling. While every
    id is in lower case only ``lowered`` grows; no Python object is kept per id.

    Messages name the winning spelling, which hashes cannot give back: the endpoints table's rows
    (``endpoint_rows``: the very arrays the pending endpoint rows hold, lower-cased only when a
    message first needs a row) name theirs, and the spellings with capitals first met in the events
    are kept as text (``capitalised``), rare with an endpoints table.
    """

    lowered: HashSet = field(default_factory=lambda: HashSet())
    capital_spellings: HashSet = field(default_factory=lambda: HashSet())
    capital_lowered: HashSet = field(default_factory=lambda: HashSet())
    capitalised: dict[str, str] = field(default_factory=dict)
    # The endpoints table's accepted ids (as spelt), sources and row numbers, to name a winner's row.
    endpoint_rows: tuple[pa.Array, pa.Array, pa.Array] | None = None
    _endpoints_lowered: pa.Array | None = field(default=None, init=False, repr=False)
    event_types: set[str] = field(default_factory=set)
    event_keys: HashSet = field(default_factory=lambda: HashSet())  # (endpoint id, event id) pairs sent so far

    def accept_endpoints(self, ids: pa.Array, sources: pa.Array, rows: pa.Array) -> None:
        """The endpoints table's accepted ids (distinct in any case) win: remember them, and their rows."""
        self.endpoint_rows = (ids, pc.dictionary_encode(sources), rows)  # cheap on a dictionary array: same buffers
        self._endpoints_lowered = None  # derived from endpoint_rows when a message first needs it
        self._remember(ids, keep_capitalised=False)

    def misspelt(self, ids: pa.Array) -> pa.Array:
        """Record the first spelling of each new id; return the (distinct) spellings that lose to an earlier one."""
        return self._remember(ids, keep_capitalised=True)

    def _remember(self, ids: pa.Array, *, keep_capitalised: bool) -> pa.Array:
        """:meth:`misspelt`, keeping the text of new winners with capitals only if ``keep_capitalised``.

        A batch's distinct spellings come in order of first appearance (``pc.unique``), so of two
        spellings of a new id the batch's first wins, as it would row by row.
        """
        distinct = pc.unique(ids.drop_null())
        lowered = pc.utf8_lower(distinct)
        capitals = ~as_mask(pc.equal(lowered, distinct))
        low_hashes = hashed(lowered)
        spelling_hashes = np.zeros(len(distinct), dtype=np.uint64)
        if capitals.any():
            spelling_hashes[capitals] = hashed(distinct.filter(pa.array(capitals)))
        known = self.lowered.contains(low_hashes)
        loses = np.zeros(len(distinct), dtype=bool)
        if known.any() and len(self.capital_lowered):
            loses |= known & ~capitals & self.capital_lowered.contains(low_hashes)
        if (known & capitals).any():
            loses |= known & capitals & ~self.capital_spellings.contains(spelling_hashes)
        fresh = ~known
        if capitals[fresh].any():  # two spellings of one new id: the first wins
            again = np.zeros(len(distinct), dtype=bool)
            again[fresh] = repeats(low_hashes[fresh])
            loses |= again
            fresh &= ~again
        self.lowered.add(low_hashes[fresh])
        won = fresh & capitals
        if won.any():
            self.capital_spellings.add(spelling_hashes[won])
            self.capital_lowered.add(low_hashes[won])
            if keep_capitalised:
                keep = pa.array(won)
                winners = distinct.filter(keep).to_pylist()
                self.capitalised.update(zip(lowered.filter(keep).to_pylist(), winners, strict=True))
        return distinct.filter(pa.array(loses))

    def winners(self, spellings: pa.Array) -> dict[str, tuple[str, str | None]]:
        """For distinct spellings of ids met before: each one's winning spelling, and its endpoints table row if any.

        The endpoints table's ids are lower-cased the first time (only losing spellings need it), and
        probed with the batch's few losers at once rather than searched once per rejected row.
        """
        lowered = pc.utf8_lower(spellings)
        rows_of: dict[int, tuple[str, str]] = {}
        if self.endpoint_rows is not None:
            ids, sources, rows = self.endpoint_rows
            if self._endpoints_lowered is None:
                self._endpoints_lowered = pc.utf8_lower(ids)
            slots = pc.index_in(self._endpoints_lowered, value_set=lowered)
            hit = pa.array(valid_mask(slots))
            for index, slot in zip(np.flatnonzero(hit).tolist(), slots.filter(hit).to_pylist(), strict=True):
                rows_of[slot] = ids[index].as_py(), f"{source_label(sources[index].as_py())} row {rows[index].as_py()}"
        return {
            spelling: rows_of.get(slot) or (self.capitalised.get(low, low), None)
            for slot, (spelling, low) in enumerate(zip(spellings.to_pylist(), lowered.to_pylist(), strict=True))
        }


class EndpointsSeen:
    """What validating an endpoints table slice by slice carries from one slice to the next.

    The ids of the rows counted so far (lower-cased, each with the spelling and the row that came
    first, to name it) and each user id's number of endpoints, as Arrow columns: some tens of bytes
    per endpoint, where validating a whole table at once held several times the table. Each slice's
    rows are probed against them by 64-bit hash (kept sorted, so a probe costs the slice's size, not
    everything seen so far) and confirmed by their text, so a table validated in slices gets the
    same rejections and messages as the table validated whole.
    """

    def __init__(self) -> None:
        self._lowered: list[pa.Array] = []  # one chunk per slice: ids first met there, lower-cased
        self._firsts: list[tuple[pa.Array, pa.Array, pa.Array]] = []  # their spellings, sources, rows
        self._users: pa.Array = pa.array([], pa.string())  # distinct user ids so far
        self._user_counts: np.ndarray = np.zeros(0, dtype=np.int64)  # endpoints of each so far
        # Hashes of the same, so that a slice is probed in time of its own size: probing the Arrow
        # columns rebuilt a hash of everything seen for every slice (quadratic in the table).
        # A hash only proposes a match; the text confirms it.
        self._id_hashes = HashSet()  # the lowered ids of ``_lowered``
        self._user_keys: np.ndarray = np.zeros(0, dtype=np.uint64)  # of ``_users``, sorted
        self._user_slots: np.ndarray = np.zeros(0, dtype=np.int64)  # each key's position in ``_users``
        # Set by ``endpoint_rules.seen_for`` from the whole table: no slice needs the others' ids
        # (no id repeats in any case) or user counts (no user has more rows than Pinpoint allows).
        self.ids_distinct = False
        self.users_within_limit = False

    @staticmethod
    def id_hashes(lowered: pa.Array) -> np.ndarray:
        """The hashes of a slice's lower-cased ids, made once for :meth:`earlier` and :meth:`add_ids`."""
        return hashed(lowered)

    def earlier(self, lowered: pa.Array, hashes: np.ndarray) -> np.ndarray:
        """Rows whose (lower-cased) id an earlier slice already had (``hashes``: :meth:`id_hashes`)."""
        if not self._lowered:
            return none_of(lowered)
        maybe = self._id_hashes.contains(hashes)
        found = np.zeros(len(lowered), dtype=bool)
        if maybe.any():  # only ids met before or sharing a hash with one: the text decides
            candidates = lowered.filter(pa.array(maybe))
            found[maybe] = as_mask(pc.is_in(candidates, value_set=pa.chunked_array(self._lowered, pa.string())))
        return found

    def first(self, lowered: str) -> tuple[str, str]:
        """The first spelling of an id met in an earlier slice, and its row's label."""
        at = pc.index(pa.chunked_array(self._lowered, pa.string()), lowered).as_py()
        for chunk, (spellings, sources, rows) in zip(self._lowered, self._firsts, strict=True):
            if at < len(chunk):
                return spellings[at].as_py(), f"{source_label(sources[at].as_py())} row {rows[at].as_py()}"
            at -= len(chunk)
        raise KeyError(lowered)

    def add_ids(self, checked: Checked, lowered: pa.Array, firsts: np.ndarray, hashes: np.ndarray) -> None:
        """Remember the rows ``firsts`` marks as the first of their id (``hashes`` as for :meth:`earlier`)."""
        if firsts.any():
            keep = pa.array(firsts)
            self._lowered.append(lowered.filter(keep).cast(pa.string()))
            self._id_hashes.add(hashes[firsts])
            spellings = checked.columns["Id"].filter(keep)
            self._firsts.append(
                (spellings, pc.dictionary_encode(checked.sources.filter(keep)), checked.rows.filter(keep))
            )

    def count_users(self, users: pa.Array, counts: np.ndarray) -> np.ndarray:
        """How many endpoints earlier slices gave each of these (distinct) user ids; then add this
        slice's ``counts`` to them. Each id is hashed and found once for both."""
        at, hashes = self._user_positions(users)
        found = at >= 0
        before = np.zeros(len(users), dtype=np.int64)
        before[found] = self._user_counts[at[found]]
        np.add.at(self._user_counts, at[found], counts[found])
        if not found.all():
            fresh = pa.array(~found)
            first = len(self._users)
            self._users = pa.concat_arrays([self._users, users.filter(fresh).cast(pa.string())])
            self._user_counts = np.concatenate([self._user_counts, counts[~found]])
            keys = np.concatenate([self._user_keys, hashes[~found]])
            slots = np.concatenate([self._user_slots, np.arange(first, len(self._users), dtype=np.int64)])
            order = np.argsort(keys, kind="stable")  # a sorted run and a new one: one merge pass
            self._user_keys, self._user_slots = keys[order], slots[order]
        return before

    def _user_positions(self, users: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Each (distinct) user id's position in ``_users`` or -1, and the ids' hashes.

        Found by hash, confirmed by text; should two ids ever share a hash, Arrow's lookup decides.
        """
        hashes = hashed(users)
        at = np.full(len(users), -1, dtype=np.int64)
        keys = self._user_keys
        if not len(keys) or not len(users):
            return at, hashes
        order = np.argsort(hashes)  # needles in order, as in HashSet.contains
        near = np.empty(len(hashes), dtype=np.int64)
        near[order] = np.minimum(np.searchsorted(keys, hashes[order]), len(keys) - 1)
        hit = keys[near] == hashes
        at[hit] = self._user_slots[near[hit]]
        if hit.any():
            same = pc.equal(users.filter(pa.array(hit)).cast(pa.string()), self._users.take(pa.array(at[hit])))
            if not as_mask(same).all():
                exact = pc.index_in(users, value_set=self._users)
                return np.where(valid_mask(exact), exact.fill_null(-1).to_numpy(zero_copy_only=False), -1), hashes
        return at, hashes

"""Client-side validation: every rule the service would enforce that one can check before sending.

Each rule is a vectorised mask over a whole batch; Python only touches the few rows that fail, to
word their message (file, row, column, rule). A row fails on its first broken rule. Column values
are normalised here too (see :mod:`normalise`), so reshaping works on clean, typed columns.

Decisions (documented in docs/validation.md):
- NaN and infinite metrics are dropped from the row (the key is omitted), not rejected.
- Endpoint ids are case-insensitive in Pinpoint: the first spelling seen wins (endpoints table
  first, then events in order; rows rejected for another rule do not count); later rows spelling
  it differently are rejected, naming the first.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint import quotas, service_model
from airflow_provider_pinpoint.common.text import shown
from airflow_provider_pinpoint.prepare import coerce, columns
from airflow_provider_pinpoint.prepare.columns import SOURCE, SOURCE_ROW, Kind

_LOCALE = r"^[a-z]{2}_[A-Z]{2}$"
_FORBIDDEN_ID = "[" + re.escape("".join(sorted(quotas.ENDPOINT_ID_FORBIDDEN_CHARACTERS))) + "]"

# ISO 3166-1 alpha-2, officially assigned codes.
_COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
    BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM
    FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN
    MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT
    PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL
    TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""".split()
)


@cache
def _timezones() -> pa.Array:
    return pa.array(sorted(zoneinfo.available_timezones()), pa.string())


def source_label(source: str) -> str:
    """The file name of a source for messages (``events.csv``), without directories or URL scheme."""
    return source.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1] or source


@dataclass
class Checked:
    """A batch after validation: normalised columns for every row, and why each rejected row failed."""

    kind: Kind
    columns: dict[str, pa.Array]
    sources: pa.Array
    rows: pa.Array
    raw: pa.Table
    rejected: np.ndarray
    reasons: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rejected)

    def label(self, i: int) -> str:
        return f"{source_label(self.sources[i].as_py())} row {self.rows[i].as_py()}"

    def reject(self, mask: np.ndarray | pa.Array, column: str, rule: str | Callable[[int], str]) -> None:
        """Reject the rows of ``mask`` not already rejected; ``rule`` words the message (may look at the row)."""
        if isinstance(mask, (pa.Array, pa.ChunkedArray)):
            mask = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
        fresh = np.flatnonzero(mask & ~self.rejected)
        for i in fresh.tolist():
            text = rule(i) if callable(rule) else rule
            self.reasons[i] = f"{self.label(i)}: {column} {text}"
        self.rejected |= mask

    def raw_value(self, column: str, i: int) -> object:
        return self.raw.column(column)[i].as_py()

    def present(self, column: str) -> np.ndarray:
        array = self.columns.get(column)
        if array is None:
            return np.zeros(len(self), dtype=bool)
        return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


class HashSet:
    """A set of 64-bit hashes in 8 bytes each: sorted runs that merge as they double (a Python set costs ~70).

    Membership of a batch of hashes is a binary search per run. Runs stop merging at ``MAX_RUN``
    hashes: a merge holds both runs and the result at once, and merging the two halves of 5 million
    hashes (80 MB for a moment, late in a load) set the loader's peak memory. So there are at most
    log2(MAX_RUN) runs plus one per ``MAX_RUN`` hashes.
    """

    MAX_RUN = 1 << 20

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            found |= run[at] == hashes
        return found

    def add(self, hashes: np.ndarray) -> None:
        run = np.unique(np.asarray(hashes, dtype=np.uint64))
        while self._runs and len(self._runs[-1]) <= len(run) and len(self._runs[-1]) + len(run) <= self.MAX_RUN:
            run = _merged(self._runs.pop(), run)
        if len(run):
            self._runs.append(run)


def _merged(older: np.ndarray, newer: np.ndarray) -> np.ndarray:
    """The distinct values of two sorted runs, sorted: what ``np.union1d`` gives, in about half its memory.

    ``union1d`` holds its inputs, their concatenation, a sorted copy and the result at once; at 5
    million events that peak was the loader's. Here the inputs go as soon as they are concatenated,
    the concatenation is sorted in place (two sorted runs: one linear merge pass), then deduplicated.
    """
    both = np.concatenate((older, newer))
    del older, newer
    both.sort(kind="stable")
    distinct = np.empty(len(both), dtype=bool)
    distinct[:1] = True
    np.not_equal(both[1:], both[:-1], out=distinct[1:])
    return both[distinct]


def _hashed(ids: pa.Array) -> np.ndarray:
    """64-bit hashes of text values (as the event-key set uses: a collision is the same accepted risk)."""
    return pd.util.hash_array(ids.to_numpy(zero_copy_only=False), categorize=False)


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
        capitals = ~np.asarray(pc.equal(lowered, distinct).to_numpy(zero_copy_only=False), dtype=bool)
        low_hashes = _hashed(lowered)
        spelling_hashes = np.zeros(len(distinct), dtype=np.uint64)
        if capitals.any():
            spelling_hashes[capitals] = _hashed(distinct.filter(pa.array(capitals)))
        known = self.lowered.contains(low_hashes)
        loses = np.zeros(len(distinct), dtype=bool)
        if known.any() and len(self.capital_lowered):
            loses |= known & ~capitals & self.capital_lowered.contains(low_hashes)
        if (known & capitals).any():
            loses |= known & capitals & ~self.capital_spellings.contains(spelling_hashes)
        fresh = ~known
        if capitals[fresh].any():  # two spellings of one new id: the first wins
            again = np.zeros(len(distinct), dtype=bool)
            again[fresh] = pd.Index(low_hashes[fresh]).duplicated(keep="first")
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
            hit = pa.array(np.asarray(slots.is_valid().to_numpy(zero_copy_only=False), dtype=bool))
            for index, slot in zip(np.flatnonzero(hit).tolist(), slots.filter(hit).to_pylist(), strict=True):
                rows_of[slot] = ids[index].as_py(), f"{source_label(sources[index].as_py())} row {rows[index].as_py()}"
        return {
            spelling: rows_of.get(slot) or (self.capitalised.get(low, low), None)
            for slot, (spelling, low) in enumerate(zip(spellings.to_pylist(), lowered.to_pylist(), strict=True))
        }


def _normalised(table: pa.Table, kind: Kind) -> Checked:
    n = table.num_rows
    checked = Checked(
        kind,
        {},
        coerce.single_chunk(table.column(SOURCE)),
        coerce.single_chunk(table.column(SOURCE_ROW)),
        table,
        np.zeros(n, dtype=bool),
    )
    if columns.READ_ERROR in table.column_names:
        _reject_unreadable(checked, coerce.single_chunk(table.column(columns.READ_ERROR)))
    for name in table.column_names:
        column = columns.classify(name, kind)
        if column is None or column.role == "bookkeeping":
            continue
        array = table.column(name)
        if column.multi_valued:
            values, failed = coerce.to_string_lists(array)
            rule = "holds a value that is not text; attribute values are strings"
        elif column.name == "Session.Duration":
            values, failed = coerce.to_int(array)
            rule = _not_a(checked, name, "a whole number of milliseconds")
        elif column.numeric:
            values, failed = coerce.to_float(array)
            rule = _not_a(checked, name, "a number")
        elif column.name in columns.TIMESTAMP_FIELDS:
            values, failed = coerce.to_timestamp(array)
            rule = _not_a(checked, name, "an ISO 8601 timestamp")
        else:
            values, failed = coerce.to_string(array)
            rule = _not_a(checked, name, "a single text value or whole number")
        checked.columns[name] = values
        if failed.any():
            checked.reject(failed, name, rule)
    return checked


def _reject_unreadable(checked: Checked, errors: pa.Array) -> None:
    """Rows reading could not make sense of (a CSV row with the wrong number of fields): its message, first."""
    unreadable = np.asarray(errors.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    for i in np.flatnonzero(unreadable).tolist():
        checked.reasons[i] = f"{checked.label(i)}: {errors[i].as_py()}"
    checked.rejected |= unreadable


def _not_a(checked: Checked, name: str, what: str) -> Callable[[int], str]:
    def rule(i: int) -> str:
        value = checked.raw_value(name, i)
        if name == "Address":
            return f"is not {what}"
        if isinstance(value, (int, float)) and "timestamp" in what:
            return f"is a number ({value}), not {what}; epoch numbers are ambiguous, convert them to timestamps"
        return f"is {shown(value)}, not {what}"

    return rule


def _check_endpoint_id(checked: Checked, name: str, what: str) -> None:
    ids = checked.columns.get(name)
    if ids is None:
        checked.columns[name] = pa.nulls(len(checked), pa.string())
        checked.reject(np.ones(len(checked), dtype=bool), name, f"is missing; {what}")
        return
    checked.reject(~checked.present(name), name, f"is empty; {what}")
    checked.reject(
        pc.match_substring_regex(ids, _FORBIDDEN_ID),
        name,
        lambda i: f"{shown(ids[i].as_py())} contains $, {{ or }}, which Pinpoint endpoint ids may not contain",
    )


def _not_in(values: pa.Array, allowed: pa.Array) -> np.ndarray:
    """Rows holding a value outside ``allowed`` (absent values are not outside)."""
    outside = pc.invert(pc.is_in(values, value_set=allowed)).to_numpy(zero_copy_only=False)
    return np.asarray(outside, dtype=bool) & np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _check_enum(checked: Checked, name: str, allowed: tuple[str, ...]) -> None:
    values = checked.columns.get(name)
    if values is None:
        return
    checked.reject(
        _not_in(values, pa.array(allowed, pa.string())),
        name,
        lambda i: f"is {shown(values[i].as_py())}; Pinpoint accepts {', '.join(allowed)}",
    )


def _check_lengths(checked: Checked, prefix: str, name_limit: int, value_limit: int | None, consequence: str) -> None:
    for name, values in checked.columns.items():
        if not name.startswith(prefix):
            continue
        key = name[len(prefix) :]
        if len(key) > name_limit:
            checked.reject(
                checked.present(name),
                name,
                f"has a {len(key)}-character name; Pinpoint allows {name_limit}",
            )
        if value_limit is None:
            continue
        if pa.types.is_list(values.type):
            counts = pc.fill_null(pc.list_value_length(values), 0)
            checked.reject(
                pc.greater(counts, quotas.MAX_VALUES_PER_ENDPOINT_ATTRIBUTE),
                name,
                lambda i, counts=counts: (
                    f"has {counts[i].as_py()} values; Pinpoint allows "
                    f"{quotas.MAX_VALUES_PER_ENDPOINT_ATTRIBUTE} per attribute"
                ),
            )
            flat = pc.list_flatten(values)
            too_long = pc.greater(pc.utf8_length(flat), value_limit).to_numpy(zero_copy_only=False)
            if too_long.any():
                mask = np.zeros(len(checked), dtype=bool)
                parents = pc.list_parent_indices(values).to_numpy()
                mask[parents[too_long]] = True
                lengths = pc.utf8_length(flat).to_numpy(zero_copy_only=False)
                longest = pd.Series(lengths).groupby(parents).max()
                checked.reject(
                    mask,
                    name,
                    lambda i, longest=longest: (
                        f"has a value of {longest[i]} characters; Pinpoint allows {value_limit} {consequence}"
                    ),
                )
        else:
            lengths = pc.utf8_length(values)
            checked.reject(
                pc.greater(lengths, value_limit),
                name,
                lambda i, lengths=lengths: f"is {lengths[i].as_py()} characters; Pinpoint {consequence} {value_limit}",
            )


def _check_key_cap(checked: Checked, prefixes: tuple[str, ...], cap: int, what: str) -> None:
    """Keys beyond the per-application cap (in column order): rows that use them are refused."""
    names = [name for name in checked.columns if name.startswith(prefixes)]
    for position, name in enumerate(names[cap:], start=cap + 1):
        checked.reject(
            checked.present(name),
            name,
            f"is distinct {what} number {position} in the input; Pinpoint allows {cap} per application",
        )


class EndpointsSeen:
    """What validating an endpoints table slice by slice carries from one slice to the next.

    The ids of the rows counted so far (lower-cased, each with the spelling and the row that came
    first, to name it) and each user id's number of endpoints, as Arrow columns: some tens of bytes
    per endpoint, where validating a whole table at once held several times the table. Each slice's
    rows are probed against them (a hash of what the earlier slices kept, built per slice), so a
    table validated in slices gets the same rejections and messages as the table validated whole.
    """

    def __init__(self) -> None:
        self._lowered: list[pa.Array] = []  # one chunk per slice: ids first met there, lower-cased
        self._firsts: list[tuple[pa.Array, pa.Array, pa.Array]] = []  # their spellings, sources, rows
        self._users: pa.Array = pa.array([], pa.string())  # distinct user ids so far
        self._user_counts: np.ndarray = np.zeros(0, dtype=np.int64)  # endpoints of each so far

    def earlier(self, lowered: pa.Array) -> np.ndarray:
        """Rows whose (lower-cased) id an earlier slice already had."""
        if not self._lowered:
            return np.zeros(len(lowered), dtype=bool)
        known = pa.chunked_array(self._lowered, pa.string())
        return np.asarray(pc.is_in(lowered, value_set=known).to_numpy(zero_copy_only=False), dtype=bool)

    def first(self, lowered: str) -> tuple[str, str]:
        """The first spelling of an id met in an earlier slice, and its row's label."""
        at = pc.index(pa.chunked_array(self._lowered, pa.string()), lowered).as_py()
        for chunk, (spellings, sources, rows) in zip(self._lowered, self._firsts, strict=True):
            if at < len(chunk):
                return spellings[at].as_py(), f"{source_label(sources[at].as_py())} row {rows[at].as_py()}"
            at -= len(chunk)
        raise KeyError(lowered)

    def add_ids(self, checked: Checked, lowered: pa.Array, firsts: np.ndarray) -> None:
        if firsts.any():
            keep = pa.array(firsts)
            self._lowered.append(lowered.filter(keep).cast(pa.string()))
            spellings = checked.columns["Id"].filter(keep)
            self._firsts.append(
                (spellings, pc.dictionary_encode(checked.sources.filter(keep)), checked.rows.filter(keep))
            )

    def endpoints_before(self, users: pa.Array) -> np.ndarray:
        """How many endpoints earlier slices gave each of these (distinct) user ids."""
        at = pc.index_in(users, value_set=self._users)
        found = np.asarray(at.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        before = np.zeros(len(users), dtype=np.int64)
        before[found] = self._user_counts[at.filter(pa.array(found)).to_numpy(zero_copy_only=False)]
        return before

    def add_users(self, users: pa.Array, counts: np.ndarray) -> None:
        """Add ``counts`` endpoints to each of these (distinct) user ids."""
        at = pc.index_in(users, value_set=self._users)
        found = np.asarray(at.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        np.add.at(self._user_counts, at.filter(pa.array(found)).to_numpy(zero_copy_only=False), counts[found])
        if not found.all():
            fresh = pa.array(~found)
            self._users = pa.concat_arrays([self._users, users.filter(fresh).cast(pa.string())])
            self._user_counts = np.concatenate([self._user_counts, counts[~found]])


def endpoints(table: pa.Table, seen: EndpointsSeen | None = None) -> Checked:
    """Validate an endpoints table, or one slice of it after the slices before it (``seen``).

    Ids are compared across all the table's rows, and a user's endpoints counted over all of them:
    a slice's rows are checked against what ``seen`` kept of the slices before it.
    """
    seen = EndpointsSeen() if seen is None else seen
    checked = _normalised(table, "endpoints")
    _check_endpoint_id(checked, "Id", "every endpoint row needs its endpoint id")
    _check_enum(checked, "ChannelType", service_model.channel_types())
    _check_enum(checked, "EndpointStatus", service_model.ENDPOINT_STATUS_VALUES)
    _check_enum(checked, "OptOut", service_model.OPT_OUT_VALUES)
    _check_formats(checked)
    _check_lengths(
        checked,
        "Attributes.",
        quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH,
        quotas.MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH,
        "characters per endpoint attribute value",
    )
    _check_lengths(
        checked,
        "User.UserAttributes.",
        quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH,
        quotas.MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH,
        "characters per user attribute value",
    )
    _check_lengths(checked, "Metrics.", quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH, None, "")
    _check_key_cap(
        checked,
        ("Attributes.", "Metrics.", "User.UserAttributes."),
        quotas.MAX_ENDPOINT_CUSTOM_ATTRIBUTES_PER_APP,
        "endpoint attribute or metric",
    )
    _check_case_collisions(checked, seen)
    _check_endpoints_per_user(checked, seen)
    return checked


def _all_distinct(values: pa.Array) -> bool:
    """No value repeats (nulls aside): Arrow's hash kernel answers this without Python objects."""
    present = values.drop_null()
    return len(pc.unique(present)) == len(present)


def _check_case_collisions(checked: Checked, seen: EndpointsSeen) -> None:
    """Rows repeating an earlier row's id in any case; rows rejected for another rule do not count."""
    ids = checked.columns.get("Id")
    if ids is None:
        return
    lowered = pc.utf8_lower(ids)
    present = checked.present("Id") & ~checked.rejected
    earlier = seen.earlier(lowered) & present
    if not earlier.any() and _all_distinct(lowered):
        seen.add_ids(checked, lowered, present)
        return
    lower = pd.Series(lowered.to_numpy(zero_copy_only=False), dtype=object)
    repeated = np.zeros(len(checked), dtype=bool)
    repeated[present] = lower[present].duplicated(keep="first").to_numpy()
    repeated |= earlier
    firsts = present & ~repeated
    first = {key: i for i, key in zip(np.flatnonzero(firsts).tolist(), lower[firsts], strict=True)}

    def rule(i: int) -> str:
        spelling = ids[i].as_py()
        if lower[i] in first:
            at = first[lower[i]]
            first_spelling, label = ids[at].as_py(), checked.label(at)
        else:
            first_spelling, label = seen.first(lower[i])
        if spelling == first_spelling:
            return f"{shown(spelling)} repeats {label}; give each endpoint one row"
        return (
            f"{shown(spelling)} differs only in case from {shown(first_spelling)} ({label}); "
            "Pinpoint endpoint ids are case-insensitive, so the first spelling wins"
        )

    checked.reject(repeated, "Id", rule)
    seen.add_ids(checked, lowered, firsts)


def endpoint_spellings(checked: Checked, state: EventState) -> None:
    """Record the endpoints table's spelling of each id (its first accepted row's) as the one that wins."""
    if "Id" in checked.columns:
        accepted = pa.array(~checked.rejected)
        accepted_endpoints(
            checked.columns["Id"].filter(accepted),
            checked.sources.filter(accepted),
            checked.rows.filter(accepted),
            state,
        )


def accepted_endpoints(ids: pa.Array, sources: pa.Array, rows: pa.Array, state: EventState) -> None:
    """Record the accepted endpoint rows' ids (distinct in any case) as the spellings that win, with their rows."""
    state.accept_endpoints(ids, sources, rows)


def _check_formats(checked: Checked) -> None:
    locale = checked.columns.get("Demographic.Locale")
    if locale is not None:
        checked.reject(
            pc.invert(pc.match_substring_regex(locale, _LOCALE)),
            "Demographic.Locale",
            lambda i: (
                f"is {shown(locale[i].as_py())}; Pinpoint expects ll_CC (ISO 639-1 language, ISO 3166-1 "
                "country), e.g. en_US"
            ),
        )
    country = checked.columns.get("Location.Country")
    if country is not None:
        checked.reject(
            _not_in(country, pa.array(sorted(_COUNTRIES))),
            "Location.Country",
            lambda i: f"is {shown(country[i].as_py())}; Pinpoint expects an ISO 3166-1 alpha-2 code, e.g. US",
        )
    timezone = checked.columns.get("Demographic.Timezone")
    if timezone is not None:
        checked.reject(
            _not_in(timezone, _timezones()),
            "Demographic.Timezone",
            lambda i: f"is {shown(timezone[i].as_py())}; Pinpoint expects a tz database name, e.g. America/New_York",
        )
    for name, bound in (("Location.Latitude", 90.0), ("Location.Longitude", 180.0)):
        values = checked.columns.get(name)
        if values is not None:
            checked.reject(
                pc.greater(pc.abs(values), bound),
                name,
                lambda i, values=values, bound=bound: (
                    f"is {values[i].as_py()}; it must lie between -{bound:g} and {bound:g}"
                ),
            )


def _check_endpoints_per_user(checked: Checked, seen: EndpointsSeen) -> None:
    user_ids = checked.columns.get("User.UserId")
    if user_ids is None:
        return
    counted = checked.present("User.UserId") & ~checked.rejected
    if not counted.any():
        return
    # Each counted row's position among its user's rows: its earlier slices' count, then its rank here.
    encoded = pc.dictionary_encode(user_ids.filter(pa.array(counted)))
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=len(encoded.dictionary))
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    position = np.zeros(len(checked), dtype=np.int64)
    position[counted] = seen.endpoints_before(encoded.dictionary)[codes] + rank + 1
    seen.add_users(encoded.dictionary, sizes)
    channels = checked.columns.get("ChannelType")
    limited = (
        pc.is_in(channels, pa.array(sorted(quotas.USER_ENDPOINT_LIMIT_CHANNELS))).to_numpy(zero_copy_only=False)
        if channels is not None
        else np.zeros(len(checked), dtype=bool)
    )
    checked.reject(
        (position > quotas.MAX_ENDPOINTS_PER_USER_ID) & limited,
        "User.UserId",
        lambda i: (
            f"already has {quotas.MAX_ENDPOINTS_PER_USER_ID} endpoints in this input; Pinpoint refuses "
            f"endpoint {position[i]} of a user for {channels[i].as_py()}"
        ),
    )


def events(batch: pa.RecordBatch | pa.Table, state: EventState) -> Checked:
    """Validate one batch of events; ``state`` carries what earlier batches established."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    checked = _normalised(table, "events")
    _check_endpoint_id(checked, "EndpointId", "every event needs the id of its endpoint")
    for name in ("EventType", "Timestamp"):
        checked.reject(~checked.present(name), name, "is empty; Pinpoint requires it for every event")
    _check_session(checked)
    _check_lengths(
        checked,
        "Attributes.",
        quotas.MAX_EVENT_KEY_LENGTH,
        quotas.MAX_EVENT_ATTRIBUTE_VALUE_LENGTH,
        "drops events whose attribute values exceed",
    )
    _check_lengths(checked, "Metrics.", quotas.MAX_EVENT_KEY_LENGTH, None, "")
    _check_key_count(checked)
    _check_key_cap(checked, ("Attributes.",), quotas.MAX_EVENT_ATTRIBUTE_KEYS_PER_APP, "event attribute")
    _check_key_cap(checked, ("Metrics.",), quotas.MAX_EVENT_METRIC_KEYS_PER_APP, "event metric")
    _check_event_spellings(checked, state)
    _check_event_types(checked, state)
    _check_duplicate_event_ids(checked, state)
    return checked


def _check_event_spellings(checked: Checked, state: EventState) -> None:
    """Spellings are recorded only from rows no other rule rejected: a refused row must not make a good one lose."""
    ids = checked.columns.get("EndpointId")
    if ids is None:
        return
    misspelt = state.misspelt(ids.filter(pa.array(~checked.rejected)))
    if not len(misspelt):
        return

    winners = state.winners(misspelt)

    def rule(i: int) -> str:
        spelling = ids[i].as_py()
        winner, origin = winners[spelling]
        where = f" ({origin})" if origin else ", used earlier in the events"
        return (
            f"{shown(spelling)} differs only in case from {shown(winner)}{where}; Pinpoint endpoint "
            "ids are case-insensitive, so the first spelling wins"
        )

    checked.reject(pc.is_in(ids, value_set=misspelt), "EndpointId", rule)


def _check_session(checked: Checked) -> None:
    session = [name for name in checked.columns if name.startswith("Session.")]
    if not session:
        return
    any_session = np.logical_or.reduce([checked.present(name) for name in session])
    for name in ("Session.Id", "Session.StartTimestamp"):
        checked.reject(any_session & ~checked.present(name), name, "is empty; Pinpoint requires it in every Session")
    duration = checked.columns.get("Session.Duration")
    if duration is not None:
        checked.reject(
            pc.less(duration, 0),
            "Session.Duration",
            lambda i: f"is {duration[i].as_py()}; a duration cannot be negative",
        )


def _check_key_count(checked: Checked) -> None:
    keys = [name for name in checked.columns if name.startswith(("Attributes.", "Metrics."))]
    if len(keys) <= quotas.MAX_EVENT_ATTRIBUTES_AND_METRICS:
        return
    counts = np.sum([checked.present(name) for name in keys], axis=0)
    checked.reject(
        counts > quotas.MAX_EVENT_ATTRIBUTES_AND_METRICS,
        "Attributes/Metrics",
        lambda i: f"has {counts[i]} keys; Pinpoint allows {quotas.MAX_EVENT_ATTRIBUTES_AND_METRICS} per event",
    )


def _check_event_types(checked: Checked, state: EventState) -> None:
    types = checked.columns.get("EventType")
    if types is None:
        return
    room = quotas.MAX_EVENT_TYPES_PER_APP - len(state.event_types)
    fresh = [t for t in pc.unique(types.filter(pa.array(~checked.rejected))).to_pylist() if t is not None]
    fresh = [t for t in fresh if t not in state.event_types]
    state.event_types.update(fresh[: max(room, 0)])
    refused = fresh[max(room, 0) :]
    if refused:
        checked.reject(
            pc.is_in(types, pa.array(refused, pa.string())),
            "EventType",
            lambda i: (
                f"{shown(types[i].as_py())} would be event type {quotas.MAX_EVENT_TYPES_PER_APP + 1} or "
                f"later; Pinpoint allows {quotas.MAX_EVENT_TYPES_PER_APP} per application"
            ),
        )


def _check_duplicate_event_ids(checked: Checked, state: EventState) -> None:
    """An (endpoint id, event id) pair met before, in this batch (naming the row) or an earlier one."""
    event_ids = checked.columns.get("EventId")
    if event_ids is None or event_ids.null_count == len(event_ids):
        return
    keys = pc.binary_join_element_wise(
        pc.utf8_lower(pc.fill_null(checked.columns["EndpointId"], "")), event_ids, "\x1f"
    )
    series = pd.Series(keys.to_numpy(zero_copy_only=False), dtype=object)
    live = checked.present("EventId") & ~checked.rejected
    if not _all_distinct(keys):
        repeated = np.zeros(len(checked), dtype=bool)
        repeated[live] = series[live].duplicated(keep="first").to_numpy()
        first = {
            key: i for i, key in zip(np.flatnonzero(live & ~repeated).tolist(), series[live & ~repeated], strict=True)
        }
        checked.reject(
            repeated,
            "EventId",
            lambda i: (
                f"{shown(event_ids[i].as_py())} repeats {checked.label(first[series[i]])} for the same endpoint; "
                "event ids must be unique per endpoint"
            ),
        )
        live &= ~repeated
    hashes = pd.util.hash_array(series[live].to_numpy(), categorize=False)
    earlier = np.zeros(len(checked), dtype=bool)
    earlier[live] = state.event_keys.contains(hashes)
    checked.reject(
        earlier,
        "EventId",
        lambda i: (
            f"{shown(event_ids[i].as_py())} repeats an earlier row of the input for the same endpoint; "
            "event ids must be unique per endpoint"
        ),
    )
    state.event_keys.add(hashes[~earlier[live]])


def check_size(checked: Checked, bodies: pa.Array, limit: int, what: str) -> None:
    """Reject rows whose serialised item exceeds the service's size limit."""
    sizes = pc.binary_length(bodies)
    checked.reject(
        pc.greater(sizes, limit),
        "(whole row)",
        lambda i: f"serialises to {sizes[i].as_py():,} bytes; Pinpoint allows {limit:,} per {what}",
    )

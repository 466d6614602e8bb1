"""Rules both tables share: endpoint ids, enumerations, name and value lengths, key caps, item size."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.common.arrow import as_mask, valid_mask
from airflow_provider_pinpoint.common.text import shown
from airflow_provider_pinpoint.prepare.validation.checked import Checked

_FORBIDDEN_ID = "[" + re.escape("".join(sorted(quotas.ENDPOINT_ID_FORBIDDEN_CHARACTERS))) + "]"


def check_endpoint_id(checked: Checked, name: str, what: str, *, pinpoint_characters: bool = True) -> None:
    """The id is there; and, for PutEvents (``pinpoint_characters``), free of the characters Pinpoint refuses."""
    ids = checked.columns.get(name)
    if ids is None:
        checked.columns[name] = pa.nulls(len(checked), pa.string())
        checked.reject(np.ones(len(checked), dtype=bool), name, f"is missing; {what}")
        return
    checked.reject(~checked.present(name), name, f"is empty; {what}")
    if not pinpoint_characters or not may_hold(ids, quotas.ENDPOINT_ID_FORBIDDEN_CHARACTERS):
        return
    checked.reject(
        pc.match_substring_regex(ids, _FORBIDDEN_ID),
        name,
        lambda i: f"{shown(ids[i].as_py())} contains $, {{ or }}, which Pinpoint endpoint ids may not contain",
    )


def may_hold(values: pa.Array, characters: frozenset[str]) -> bool:
    """Whether any text of ``values`` may hold one of the ASCII ``characters``; False only when none
    does. The bytes the values span are scanned at once (a UTF-8 character past ASCII has no ASCII
    byte in it): on a daily table, where no id holds one, that is all a regex per row would tell."""
    if isinstance(values, pa.ChunkedArray):
        return any(may_hold(chunk, characters) for chunk in values.chunks)
    octets = _octets(values)
    if octets is None:
        return True  # not plain text (a dictionary or view column): ask the regex
    return any(bool((octets == ord(character)).any()) for character in characters)


def lower_cased(values: pa.Array) -> pa.Array:
    """``pc.utf8_lower`` of text values. When every byte they span is ASCII, Arrow's ASCII kernel
    gives the same text for a tenth of the CPU (utf8_lower decodes every character); one scan of
    the bytes (:func:`_octets`) tells, and anything else takes the UTF-8 kernel."""
    octets = _octets(values)
    if octets is not None and (not len(octets) or int(octets.max()) < 0x80):
        return pc.ascii_lower(values)
    return pc.utf8_lower(values)


def _octets(values: pa.Array) -> np.ndarray | None:
    """The bytes a plain string array's values span (no copy), or None for another kind of array."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return None
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    _, offsets, data = values.buffers()
    if data is None or not len(values):
        return np.zeros(0, dtype=np.uint8)
    bounds = np.frombuffer(offsets, dtype=width, count=values.offset + len(values) + 1)[values.offset :]
    return np.frombuffer(data, dtype=np.uint8)[int(bounds[0]) : int(bounds[-1])]


def not_in(values: pa.Array, allowed: pa.Array) -> np.ndarray:
    """Rows holding a value outside ``allowed`` (absent values are not outside)."""
    return ~as_mask(pc.is_in(values, value_set=allowed)) & valid_mask(values)


def check_enum(checked: Checked, name: str, allowed: tuple[str, ...]) -> None:
    values = checked.columns.get(name)
    if values is None:
        return
    checked.reject(
        not_in(values, pa.array(allowed, pa.string())),
        name,
        lambda i: f"is {shown(values[i].as_py())}; Pinpoint accepts {', '.join(allowed)}",
    )


def check_lengths(checked: Checked, prefix: str, name_limit: int, value_limit: int | None, consequence: str) -> None:
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

            def too_many(i: int, counts: pa.Array = counts) -> str:
                return f"has {counts[i].as_py()} values; Pinpoint allows {quotas.MAX_VALUES_PER_ENDPOINT_ATTRIBUTE} per attribute"

            checked.reject(pc.greater(counts, quotas.MAX_VALUES_PER_ENDPOINT_ATTRIBUTE), name, too_many)
            flat = pc.list_flatten(values)
            too_long = as_mask(pc.greater(pc.utf8_length(flat), value_limit))
            if too_long.any():
                mask = np.zeros(len(checked), dtype=bool)
                parents = pc.list_parent_indices(values).to_numpy()
                mask[parents[too_long]] = True
                lengths = pc.utf8_length(flat).to_numpy(zero_copy_only=False)
                longest = np.zeros(len(checked), dtype=lengths.dtype)
                np.maximum.at(longest, parents, lengths)

                def too_long_value(i: int, longest: np.ndarray = longest) -> str:
                    return f"has a value of {longest[i]} characters; Pinpoint allows {value_limit} {consequence}"

                checked.reject(mask, name, too_long_value)
        else:
            lengths = pc.utf8_length(values)

            def over(i: int, lengths: pa.Array = lengths) -> str:
                return f"is {lengths[i].as_py()} characters; Pinpoint {consequence} {value_limit}"

            checked.reject(pc.greater(lengths, value_limit), name, over)


def check_key_cap(checked: Checked, prefixes: tuple[str, ...], cap: int, what: str) -> None:
    """Keys beyond the per-application cap (in column order): rows that use them are refused."""
    names = [name for name in checked.columns if name.startswith(prefixes)]
    for position, name in enumerate(names[cap:], start=cap + 1):
        checked.reject(
            checked.present(name),
            name,
            f"is distinct {what} number {position} in the input; Pinpoint allows {cap} per application",
        )


def all_distinct(values: pa.Array) -> bool:
    """No value repeats (nulls aside): Arrow's hash kernel answers this without Python objects.

    Values in strictly ascending order (a table exported ordered by its key) are distinct: one
    comparison of neighbours tells so, a fraction of what hashing them costs.
    """
    present = values.drop_null()
    if _ascending(present, strictly=True) or _distinct_hashes(present):
        return True
    return len(pc.unique(present)) == len(present)


def most_repeated(values: pa.Array) -> int:
    """How many times the most frequent value occurs (nulls aside; 0 if none).

    In values in ascending order, a value's rows are one run, counted from where neighbours differ,
    with no hashing; otherwise Arrow's ``value_counts`` counts them.
    """
    present = values.drop_null()
    if not len(present):
        return 0
    if _ascending(present, strictly=False):
        equal = pc.equal(present[1:], present[:-1])
        if not pc.any(equal).as_py():  # no value repeats its neighbour: no run is longer than one row
            return 1
        starts = np.flatnonzero(~as_mask(equal)) + 1
        bounds = np.concatenate(([0], starts, [len(present)]))
        return int(np.diff(bounds).max())
    if _distinct_hashes(present):
        return 1
    return int(pc.max(pc.value_counts(present).field("counts")).as_py())


# From this many values on, text in no order is first told distinct by 64-bit hashes, unless
# its first _SAMPLE values hold a repeat.
_HASHED_FROM = 65_536
_SAMPLE = 1_024


def _distinct_hashes(values: pa.Array) -> bool:
    """Whether text values (none null) have 64-bit hashes all different, which makes them all
    different: True proves it; False may be a repeated value or two values sharing a hash (then
    Arrow's kernels, which keep every value in a hash table, decide).

    Hashed a column at a time by the sync state's numpy hash (one lane of it) and sorted, about
    half of what Arrow's ``unique`` or ``value_counts`` of a million ids takes. Text only: floats
    have values equal yet unlike in bits (0.0 and -0.0), which Arrow's kernels count their own way.
    """
    if len(values) < _HASHED_FROM or not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    sample = values.slice(0, _SAMPLE)
    if len(pc.unique(sample)) < len(sample):  # a repeat already: hashing every value would be wasted
        return False
    from airflow_provider_pinpoint.state.values import column_hash  # numpy only; imported when it pays

    hashes = column_hash(values)[:, 0].copy()
    hashes.sort()
    return not bool((hashes[1:] == hashes[:-1]).any())


def _ascending(values: pa.Array, *, strictly: bool) -> bool:
    """Whether each value (none null) is greater than (or, not ``strictly``, equal to) the one before.

    Only text and integers: floats order -0.0 equal to 0.0 and NaN with nothing, where hashing
    tells them apart, so their neighbours would not count them as hashing does."""
    kind = values.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)):
        return False
    if len(values) < 2:
        return True
    compare = pc.less if strictly else pc.less_equal
    try:
        return bool(pc.all(compare(values[:-1], values[1:])).as_py())
    except pa.ArrowNotImplementedError:  # values of a type without an order
        return False


def check_size(checked: Checked, bodies: pa.Array, limit: int, what: str, rows: np.ndarray | None = None) -> None:
    """Reject rows whose serialised item exceeds the service's size limit.

    ``rows``: the positions in ``checked`` of the rows ``bodies`` holds, ascending (None: every row,
    in order), so that bodies built for some rows only need not be spread over the batch.
    """
    sizes = pc.binary_length(bodies)
    over = as_mask(pc.greater(sizes, limit))
    if not over.any():
        return
    if rows is None:
        mask, size_of = (
            over,
            dict(zip(np.flatnonzero(over).tolist(), sizes.filter(pa.array(over)).to_pylist(), strict=True)),
        )
    else:
        mask = np.zeros(len(checked), dtype=bool)
        mask[rows[over]] = True
        size_of = dict(zip(rows[over].tolist(), sizes.filter(pa.array(over)).to_pylist(), strict=True))
    checked.reject(
        mask,
        "(whole row)",
        lambda i: f"serialises to {size_of[i]:,} bytes; Pinpoint allows {limit:,} per {what}",
    )

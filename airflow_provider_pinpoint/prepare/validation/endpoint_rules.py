"""The endpoints table's rules: enumerations and formats, one row per id (in any case), endpoints per user.

Endpoint ids are case-insensitive in Pinpoint: the first spelling seen wins (endpoints table
first, then events in order; rows rejected for another rule do not count).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint import quotas, service_model
from airflow_provider_pinpoint.common.arrow import as_mask, repeats
from airflow_provider_pinpoint.common.text import shown
from airflow_provider_pinpoint.prepare import coerce
from airflow_provider_pinpoint.prepare.validation.checked import Checked, Rules, normalised
from airflow_provider_pinpoint.prepare.validation.rules import (
    all_distinct,
    check_endpoint_id,
    check_enum,
    check_key_cap,
    check_lengths,
    lower_cased,
    most_repeated,
    not_in,
)
from airflow_provider_pinpoint.prepare.validation.state import EndpointsSeen, EventState

_LOCALE = r"^[a-z]{2}_[A-Z]{2}$"

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


def endpoints(
    table: pa.Table,
    seen: EndpointsSeen | None = None,
    *,
    rules: Rules = "putevents",
    unchanged: Callable[[Checked], np.ndarray] | None = None,
) -> Checked:
    """Validate an endpoints table, or one slice of it after the slices before it (``seen``).

    Ids are compared across all the table's rows, and a user's endpoints counted over all of them:
    a slice's rows are checked against what ``seen`` kept of the slices before it. ``rules="stream"``
    (the Kinesis and Firehose sinks) leaves out what only Pinpoint enforces: its endpoint id
    characters, attribute name and value lengths, per-application caps and endpoints per user.

    ``unchanged``: given the slice with its values normalised (and its ids checked), the rows whose
    id and values are those the service last accepted (the sync state's comparison). The rules that
    judge one row by its own values (allowed values, formats, lengths) passed those values then, so
    they run on the other rows only: on a daily sync that is most of validation's time saved. The
    per-application key cap (which depends on the input's column order, not the row's values) and
    the rules across rows (ids repeated in any case, endpoints per user) judge every row.
    """
    seen = EndpointsSeen() if seen is None else seen
    checked = normalised(table, "endpoints")
    pinpoint = rules == "putevents"
    check_endpoint_id(checked, "Id", "every endpoint row needs its endpoint id", pinpoint_characters=pinpoint)
    same = unchanged(checked) & ~checked.rejected if unchanged is not None else None
    if same is not None and same.any():
        judged = np.flatnonzero(~same)
        part = checked.subset(judged)
        _check_row_values(part, pinpoint)
        checked.take_back(part, judged)
    else:
        _check_row_values(checked, pinpoint)
    if pinpoint:
        # The cap counts keys in the input's column order, which the state's row hash leaves out:
        # a row unchanged in its values can use a key beyond the cap once the columns are reordered,
        # so every row is judged by it, last of the rules of a row, as without a state.
        check_key_cap(
            checked,
            ("Attributes.", "Metrics.", "User.UserAttributes."),
            quotas.MAX_ENDPOINT_CUSTOM_ATTRIBUTES_PER_APP,
            "endpoint attribute or metric",
        )
    _check_case_collisions(checked, seen)
    if pinpoint:
        _check_endpoints_per_user(checked, seen)
    return checked


def _check_row_values(checked: Checked, pinpoint: bool) -> None:
    """The rules that judge each row by its own values, in the order a row's first broken one is reported."""
    check_enum(checked, "ChannelType", service_model.channel_types())
    check_enum(checked, "EndpointStatus", service_model.ENDPOINT_STATUS_VALUES)
    check_enum(checked, "OptOut", service_model.OPT_OUT_VALUES)
    _check_formats(checked)
    if pinpoint:
        check_lengths(
            checked,
            "Attributes.",
            quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH,
            quotas.MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH,
            "characters per endpoint attribute value",
        )
        check_lengths(
            checked,
            "User.UserAttributes.",
            quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH,
            quotas.MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH,
            "characters per user attribute value",
        )
        check_lengths(checked, "Metrics.", quotas.MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH, None, "")


def seen_for(table: pa.Table, ids: pa.Array | None = None) -> EndpointsSeen:
    """Where validating the whole endpoints ``table`` slice by slice starts, told what the whole table holds.

    When no two ids are the same in any case, no row can repeat another, and when no user id has
    more rows than Pinpoint allows a user, no row can be over the limit: the slices then need not
    carry ids or user counts from one to the next, most of validation's time on a daily table of a
    million endpoints (where both hold). The columns are made text as :func:`normalised` makes
    them (:func:`coerce.to_string`, row by row), so the table validated in slices gets the same rejections;
    ``ids``: the ``Id`` column so made, if the caller has it already.
    """
    seen = EndpointsSeen()
    try:
        if "Id" in table.column_names:
            if ids is None:
                ids, _ = coerce.to_string(table.column("Id"))
            seen.ids_distinct = all_distinct(lower_cased(ids))
        if "User.UserId" in table.column_names:
            users, _ = coerce.to_string(table.column("User.UserId"))
            seen.users_within_limit = most_repeated(users) <= quotas.MAX_ENDPOINTS_PER_USER_ID
    except (pa.ArrowInvalid, pa.ArrowCapacityError, MemoryError):
        # More than 2 GiB of text in one column cannot be made one string array: no shortcut, every
        # slice checks its rows against the ones before it, as without this function.
        return EndpointsSeen()
    return seen


def _check_case_collisions(checked: Checked, seen: EndpointsSeen) -> None:
    """Rows repeating an earlier row's id in any case; rows rejected for another rule do not count."""
    ids = checked.columns.get("Id")
    if ids is None or seen.ids_distinct:
        return
    lowered = lower_cased(ids)
    hashes = seen.id_hashes(lowered)  # once, for the lookup and for remembering the slice's ids
    present = checked.present("Id") & ~checked.rejected
    earlier = seen.earlier(lowered, hashes) & present
    if not earlier.any() and all_distinct(lowered):
        seen.add_ids(checked, lowered, present, hashes)
        return
    repeated = np.zeros(len(checked), dtype=bool)
    repeated[present] = repeats(lowered.filter(pa.array(present)))
    repeated |= earlier
    firsts = present & ~repeated
    first = dict(zip(lowered.filter(pa.array(firsts)).to_pylist(), np.flatnonzero(firsts).tolist(), strict=True))

    def rule(i: int) -> str:
        spelling, lower = ids[i].as_py(), lowered[i].as_py()
        if lower in first:
            at = first[lower]
            first_spelling, label = ids[at].as_py(), checked.label(at)
        else:
            first_spelling, label = seen.first(lower)
        if spelling == first_spelling:
            return f"{shown(spelling)} repeats {label}; give each endpoint one row"
        return (
            f"{shown(spelling)} differs only in case from {shown(first_spelling)} ({label}); "
            "Pinpoint endpoint ids are case-insensitive, so the first spelling wins"
        )

    checked.reject(repeated, "Id", rule)
    seen.add_ids(checked, lowered, firsts, hashes)


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
            not_in(country, pa.array(sorted(_COUNTRIES))),
            "Location.Country",
            lambda i: f"is {shown(country[i].as_py())}; Pinpoint expects an ISO 3166-1 alpha-2 code, e.g. US",
        )
    timezone = checked.columns.get("Demographic.Timezone")
    if timezone is not None:
        checked.reject(
            not_in(timezone, _timezones()),
            "Demographic.Timezone",
            lambda i: f"is {shown(timezone[i].as_py())}; Pinpoint expects a tz database name, e.g. America/New_York",
        )
    for name, bound in (("Location.Latitude", 90.0), ("Location.Longitude", 180.0)):
        values = checked.columns.get(name)
        if values is not None:

            def outside(i: int, values: pa.Array = values, bound: float = bound) -> str:
                return f"is {values[i].as_py()}; it must lie between -{bound:g} and {bound:g}"

            checked.reject(pc.greater(pc.abs(values), bound), name, outside)


def _check_endpoints_per_user(checked: Checked, seen: EndpointsSeen) -> None:
    user_ids = checked.columns.get("User.UserId")
    if user_ids is None or seen.users_within_limit:
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
    position[counted] = seen.count_users(encoded.dictionary, sizes)[codes] + rank + 1
    channels = checked.columns.get("ChannelType")
    if channels is None:  # the limit is per channel: without one, no row is limited
        return
    limited = as_mask(pc.is_in(channels, pa.array(sorted(quotas.USER_ENDPOINT_LIMIT_CHANNELS))))
    checked.reject(
        (position > quotas.MAX_ENDPOINTS_PER_USER_ID) & limited,
        "User.UserId",
        lambda i: (
            f"already has {quotas.MAX_ENDPOINTS_PER_USER_ID} endpoints in this input; Pinpoint refuses "
            f"endpoint {position[i]} of a user for {channels[i].as_py()}"
        ),
    )

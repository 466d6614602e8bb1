"""The events table's rules: required fields, sessions, key counts and caps, id spellings, event types, ids."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.common.arrow import repeats
from airflow_provider_pinpoint.common.text import shown
from airflow_provider_pinpoint.prepare.validation.checked import Checked, Rules, normalised
from airflow_provider_pinpoint.prepare.validation.rules import (
    all_distinct,
    check_endpoint_id,
    check_key_cap,
    check_lengths,
)
from airflow_provider_pinpoint.prepare.validation.state import EventState, hashed


def events(batch: pa.RecordBatch | pa.Table, state: EventState, *, rules: Rules = "putevents") -> Checked:
    """Validate one batch of events; ``state`` carries what earlier batches established.

    ``rules="stream"`` (the Kinesis and Firehose sinks) leaves out what only Pinpoint enforces: its
    endpoint id characters, key lengths and counts, per-application caps and case-insensitive ids.
    """
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    checked = normalised(table, "events")
    pinpoint = rules == "putevents"
    check_endpoint_id(checked, "EndpointId", "every event needs the id of its endpoint", pinpoint_characters=pinpoint)
    for name in ("EventType", "Timestamp"):
        checked.reject(~checked.present(name), name, "is empty; Pinpoint requires it for every event")
    _check_session(checked)
    if pinpoint:
        check_lengths(
            checked,
            "Attributes.",
            quotas.MAX_EVENT_KEY_LENGTH,
            quotas.MAX_EVENT_ATTRIBUTE_VALUE_LENGTH,
            "drops events whose attribute values exceed",
        )
        check_lengths(checked, "Metrics.", quotas.MAX_EVENT_KEY_LENGTH, None, "")
        _check_key_count(checked)
        check_key_cap(checked, ("Attributes.",), quotas.MAX_EVENT_ATTRIBUTE_KEYS_PER_APP, "event attribute")
        check_key_cap(checked, ("Metrics.",), quotas.MAX_EVENT_METRIC_KEYS_PER_APP, "event metric")
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
    live = checked.present("EventId") & ~checked.rejected
    if not all_distinct(keys):
        repeated = np.zeros(len(checked), dtype=bool)
        repeated[live] = repeats(keys.filter(pa.array(live)))
        firsts = live & ~repeated
        first = dict(zip(keys.filter(pa.array(firsts)).to_pylist(), np.flatnonzero(firsts).tolist(), strict=True))
        checked.reject(
            repeated,
            "EventId",
            lambda i: (
                f"{shown(event_ids[i].as_py())} repeats {checked.label(first[keys[i].as_py()])} for the same "
                "endpoint; event ids must be unique per endpoint"
            ),
        )
        live &= ~repeated
    hashes = hashed(keys.filter(pa.array(live)))
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

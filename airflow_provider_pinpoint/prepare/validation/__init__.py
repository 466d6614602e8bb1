"""Client-side validation: every rule the service would enforce that one can check before sending.

Each rule is a vectorised mask over a whole batch; Python only touches the few rows that fail, to
word their message (file, row, column, rule). A row fails on its first broken rule.

- :mod:`.checked`: the batch under validation, its columns coerced to the API's types.
- :mod:`.rules`: rules both tables share; :mod:`.endpoint_rules` and :mod:`.event_rules`: the rest.
- :mod:`.state`: what is carried across batches (id spellings, event types, event ids).

Decisions (documented in docs/validation.md):
- NaN and infinite metrics are dropped from the row (the key is omitted), not rejected.
- Endpoint ids are case-insensitive in Pinpoint: the first spelling seen wins (endpoints table
  first, then events in order; rows rejected for another rule do not count); later rows spelling
  it differently are rejected, naming the first.
"""

from __future__ import annotations

from airflow_provider_pinpoint.prepare.validation.checked import Checked, source_label
from airflow_provider_pinpoint.prepare.validation.endpoint_rules import (
    accepted_endpoints,
    endpoint_spellings,
    endpoints,
    seen_for,
)
from airflow_provider_pinpoint.prepare.validation.event_rules import events
from airflow_provider_pinpoint.prepare.validation.rules import check_size
from airflow_provider_pinpoint.prepare.validation.state import EndpointsSeen, EventState, HashSet

__all__ = [
    "Checked",
    "EndpointsSeen",
    "EventState",
    "HashSet",
    "accepted_endpoints",
    "check_size",
    "endpoint_spellings",
    "endpoints",
    "events",
    "seen_for",
    "source_label",
]

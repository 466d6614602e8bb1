"""The sync state: what each destination last accepted, so a rerun sends only what changed.

A state location (``--state``, ``state=``) keeps, per destination (sink and application id), the
hash of the body last accepted for each endpoint and the (endpoint id, event id) pairs accepted,
as Parquet files (:mod:`.files`). Before sending, endpoints whose body is unchanged and events
already delivered are taken out (:mod:`.sync`); after the results are durable, the state advances
from the rows accepted. See docs/sync.md.
"""

from __future__ import annotations

from airflow_provider_pinpoint.state.files import DEFAULT_RETENTION_DAYS, StateFiles, describe
from airflow_provider_pinpoint.state.sync import ALREADY_SENT, UNCHANGED, Sync, Unsent

__all__ = ["ALREADY_SENT", "DEFAULT_RETENTION_DAYS", "UNCHANGED", "StateFiles", "Sync", "Unsent", "describe"]

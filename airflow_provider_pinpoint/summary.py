"""What a run reports: :class:`LoadSummary` for a load, :class:`DryRunSummary` for a dry run.

Both are plain values of counts, text and times (no personal data, no credentials); ``to_dict()``
gives the JSON-able dict that XCom, logs and the CLI read. Fields can also be read by key
(``summary["accepted"]``), as from that dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class _ByKey:
    """Read a field by its name, as from the summary's dict."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:  # type: ignore[attr-defined]
            raise KeyError(key)
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict (for XCom and logs)."""
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class LoadSummary(_ByKey):
    """A load: the row counts describe the whole results table (a resumed run's earlier rows
    included); ``requests``, ``retries``, ``events_accepted`` and the times are this run's own."""

    run_id: str
    input_rows: int
    accepted: int
    rejected: int
    failed: int
    skipped: int  # rows an earlier run had already decided
    requests: int
    retries: int
    events_accepted: int
    duration_s: float
    events_per_s: float
    results: str | None  # the results location, None when kept in memory
    stopped: bool  # the run was stopped before the end (resume to finish)
    started_at: str  # ISO 8601, UTC
    finished_at: str
    unchanged: int = 0  # endpoints not sent: the sync state holds the same body
    already_sent: int = 0  # events not sent: the sync state has them accepted before


@dataclass(frozen=True, slots=True)
class DryRunSummary(_ByKey):
    """A dry run: what would be sent; nothing was."""

    run_id: str
    input_rows: int
    valid_rows: int
    valid_events: int
    rejected: int
    requests: int
    duration_s: float
    dry_run: bool = True

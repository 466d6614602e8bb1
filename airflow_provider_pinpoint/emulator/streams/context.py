"""What one stream call sees of the emulator: the clock reading, the fault decisions, the counters."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_pinpoint.emulator.faults import RECORD_ERROR, Faults, Settings


def empty_stats() -> dict:
    """``records_unanswered``: records written by requests whose answer was lost (each may come again)."""
    return {"requests": 0, "records_accepted": 0, "records_failed": 0, "records_unanswered": 0, "faults": {}}


@dataclass(slots=True)
class Call:
    """One request: ``now`` is read once, so all its records are judged at the same instant."""

    now: float
    faults: Faults
    settings: Settings
    stats: dict

    def record_error(self) -> bool:
        """Whether the fault settings fail this record alone with an internal error (counted if so)."""
        if self.faults.record_error():
            self.count_fault(RECORD_ERROR)
            return True
        return False

    def count_records(self, accepted: int, failed: int) -> None:
        self.stats["records_accepted"] += accepted
        self.stats["records_failed"] += failed

    def count_fault(self, kind: str, n: int = 1) -> None:
        if n:
            faults = self.stats["faults"]
            faults[kind] = faults.get(kind, 0) + n

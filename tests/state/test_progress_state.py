"""The progress line counts the rows a sync state kept from being sent, towards the rows done."""

from __future__ import annotations

from airflow_provider_pinpoint.progress import Progress


def test_rows_the_state_took_out_count_as_done_and_are_named():
    meter = Progress(enabled=False)
    meter.total = 100
    meter.update(accepted=10)
    meter.update(unsent=80)
    line = meter.line(now=meter._started + 1.0)
    assert "90% of 100" in line
    assert "10 accepted, 0 rejected, 0 failed, 80 unchanged or already sent" in line

"""The results table summed up for a notebook: counts, reasons grouped across rows, everything escaped."""

from __future__ import annotations

import pyarrow as pa

from airflow_provider_pinpoint.results.digest import digest, digest_html, reason


def results(*rows: tuple[str, str, str | None]) -> pa.Table:
    record_types, statuses, messages = zip(*rows, strict=True)
    return pa.table({"record_type": record_types, "status": statuses, "message": messages})


def test_messages_of_one_rule_on_different_rows_and_values_are_one_reason():
    assert reason("events.csv row 11: ChannelType is 'PIGEON'; Pinpoint accepts EMAIL") == (
        "ChannelType is '…'; Pinpoint accepts EMAIL"
    )
    summed = digest(
        results(
            ("endpoint", "rejected", "a.csv row 1: ChannelType is 'X'; Pinpoint accepts EMAIL"),
            ("endpoint", "rejected", "a.csv row 9: ChannelType is 'Y'; Pinpoint accepts EMAIL"),
            ("event", "rejected", "b.csv row 2: EventType is empty"),
            ("event", "accepted", None),
            ("event", "failed", None),
        )
    )
    assert summed.statuses == ("accepted", "rejected", "failed")
    assert summed.counts == {"endpoint": {"rejected": 2}, "event": {"rejected": 1, "accepted": 1, "failed": 1}}
    assert summed.reasons == {
        "rejected": [(2, "ChannelType is '…'; Pinpoint accepts EMAIL"), (1, "EventType is empty")],
        "failed": [(1, "(no message)")],
    }


def test_only_the_five_commonest_reasons_are_kept():
    rows = [("event", "rejected", f"e.csv row {i}: rule {i % 7}") for i in range(70)]
    rows += [("event", "rejected", "e.csv row 99: rule 3")]
    ranked = digest(results(*rows)).reasons["rejected"]
    assert ranked == [(11, "rule 3"), (10, "rule 0"), (10, "rule 1"), (10, "rule 2"), (10, "rule 4")]


def test_the_html_escapes_every_text():
    summed = digest(results(("<event>", "rejected", "e.csv row 1: Attributes.<b>x</b> & more")))
    html = digest_html("run <1> & co", summed)
    assert "<b>" not in html and "<event>" not in html and "<1>" not in html
    assert "Attributes.&lt;b&gt;x&lt;/b&gt; &amp; more" in html and "run &lt;1&gt; &amp; co" in html

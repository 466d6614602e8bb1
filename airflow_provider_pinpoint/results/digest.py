"""A results table summed up without pandas: rows by record type and status, and the commonest reasons.

A rejection's message names its file, row and value (``events.parquet row 11: ChannelType is
'PIGEON'; ...``), so messages are grouped by their reason: without that ``... row N:`` prefix and
with quoted values as ``'…'``, a thousand rows failing one rule make one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.common.text import ELLIPSIS
from airflow_provider_pinpoint.results.rows import ACCEPTED, ALREADY_SENT, FAILED, REJECTED, UNCHANGED

# The statuses shown first, in this order; any other a table holds follows by name.
_STATUS_ORDER = (ACCEPTED, REJECTED, FAILED, UNCHANGED, ALREADY_SENT)

_ROW_PREFIX = re.compile(r"^.*? row \d+: ")
_QUOTED = re.compile(r"'[^']*'")


@dataclass(frozen=True, slots=True)
class Digest:
    """``counts[record_type][status]`` = rows; ``reasons[status]`` = (rows, reason), commonest first."""

    statuses: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    reasons: dict[str, list[tuple[int, str]]]


def reason(message: str) -> str:
    """A message as its reason: without the ``<source> row N:`` prefix, quoted values as ``'…'``."""
    return _QUOTED.sub(f"'{ELLIPSIS}'", _ROW_PREFIX.sub("", message, count=1))


def digest(table: pa.Table, *, top: int = 5) -> Digest:
    """The table's rows by record type and status, and the ``top`` reasons of its rejected and failed rows."""
    counts: dict[str, dict[str, int]] = {}
    grouped = table.select(["record_type", "status"]).group_by(["record_type", "status"]).aggregate([([], "count_all")])
    for row in grouped.to_pylist():
        counts.setdefault(row["record_type"], {})[row["status"]] = row["count_all"]
    present = {status for by_status in counts.values() for status in by_status}
    statuses = tuple(s for s in _STATUS_ORDER if s in present) + tuple(sorted(present - set(_STATUS_ORDER)))
    reasons = {status: _top_reasons(table, status, top) for status in (REJECTED, FAILED) if status in present}
    return Digest(statuses, dict(sorted(counts.items())), reasons)


def _top_reasons(table: pa.Table, status: str, top: int) -> list[tuple[int, str]]:
    messages = table.filter(pc.equal(table.column("status"), status)).column("message")
    tally: dict[str, int] = {}
    for value in pc.value_counts(messages).to_pylist():  # distinct messages, each counted once here
        text = reason(value["values"]) if value["values"] is not None else "(no message)"
        tally[text] = tally.get(text, 0) + value["counts"]
    ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    return [(rows, text) for text, rows in ranked[:top]]


def digest_html(headline: str, summed: Digest) -> str:
    """An HTML table of ``summed`` under ``headline`` (for a notebook), every text escaped."""
    head = "".join(f"<th>{escape(status)}</th>" for status in summed.statuses)
    body = "".join(
        f"<tr><th>{escape(record_type)}</th>"
        + "".join(f"<td>{by_status.get(status, 0):,}</td>" for status in summed.statuses)
        + "</tr>"
        for record_type, by_status in summed.counts.items()
    )
    parts = [
        f"<p>{escape(headline)}</p>",
        f"<table><thead><tr><th>record type</th>{head}</tr></thead><tbody>{body}</tbody></table>",
    ]
    for status, ranked in summed.reasons.items():
        rows = "".join(f"<tr><td>{count:,}</td><td>{escape(text)}</td></tr>" for count, text in ranked)
        parts.append(
            f"<p>Most common reasons, {escape(status)} rows:</p>"
            f"<table><thead><tr><th>rows</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return '<div class="pinpoint-load-report">' + "".join(parts) + "</div>"


def audit(table: pa.Table, *, top: int = 10) -> dict[str, Any]:
    """What ``pinpoint-load summarize`` shows: the :func:`digest` counts, the ``top`` reasons over rejected
    and failed rows together, the span of ``sent_at`` and the rows of each run, as a JSON-able dict."""
    summed = digest(table, top=top)
    ranked = [(rows, status, reason) for status, top in summed.reasons.items() for rows, reason in top]
    ranked.sort(key=lambda entry: (-entry[0], entry[1], entry[2]))
    span = pc.min_max(table.column("sent_at")).as_py() if table.num_rows else {"min": None, "max": None}
    # In the order they sent (run ids sort by their start only to the second); runs that sent nothing last.
    runs = table.group_by("run_id").aggregate([([], "count_all"), ("sent_at", "min")]).to_pylist()
    runs.sort(key=lambda run: (run["sent_at_min"] is None, run["sent_at_min"] or 0, run["run_id"]))
    return {
        "rows": table.num_rows,
        "counts": summed.counts,
        "top_reasons": [{"status": status, "rows": rows, "reason": reason} for rows, status, reason in ranked[:top]],
        "first_sent_at": None if span["min"] is None else span["min"].isoformat(),
        "last_sent_at": None if span["max"] is None else span["max"].isoformat(),
        "runs": [{"run_id": run["run_id"], "rows": run["count_all"]} for run in runs],
    }

"""A results table summed up without pandas: rows by record type and status, and the commonest reasons.

A rejection's message names its file, row and value (``events.parquet row 11: ChannelType is
'PIGEON'; ...``), so messages are grouped by their reason: without that ``... row N:`` prefix and
with quoted values as ``'…'``, a thousand rows failing one rule make one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.common.text import ELLIPSIS
from airflow_provider_pinpoint.results.rows import ACCEPTED, FAILED, REJECTED

# The statuses shown first, in this order; any other a table holds follows by name.
_STATUS_ORDER = (ACCEPTED, REJECTED, FAILED)

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

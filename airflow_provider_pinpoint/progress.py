"""Progress of a run: a live line with rows/s, events/s and the time left in a terminal or notebook,
a log line otherwise.

Airflow task logs (and anything else that is not a terminal) get a ``logging`` line at most every
``log_every_s`` seconds while rows are decided, and one at the end, rather than a redrawn bar,
which would fill the log with carriage returns; the operator asks for log lines explicitly
(``"log"``), since ``airflow dags test`` may run the task in a terminal. Only counts are shown:
never an id, never an address. A dry run counts rows checked (valid / rejected) instead of sent;
a :meth:`Progress.phase` (writing the results table) gets a line when it starts and when it ends.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import pyarrow.parquet as pq

from airflow_provider_pinpoint.common.files import is_parquet
from airflow_provider_pinpoint.common.locations import filesystem

log = logging.getLogger(__name__)

_BAR_WIDTH = 24
# Parquet footers read to size the progress bar, at most.
_MAX_FOOTERS = 64


def interactive(stream: TextIO) -> bool:
    """A terminal, or a Jupyter kernel (whose output renders carriage returns as a redraw)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


class Progress:
    """Counts rows as they are decided; thread-safe; draws at most every ``redraw_s`` seconds.

    ``enabled``: None picks a live line on a terminal or in a notebook and log lines elsewhere;
    True forces the live line; ``"log"`` forces log lines; False shows nothing. ``dry_run``: rows are
    checked, not sent: ``update(accepted=...)`` counts valid rows.
    """

    def __init__(
        self,
        *,
        enabled: bool | Literal["log"] | None = None,
        stream: TextIO | None = None,
        redraw_s: float = 0.25,
        log_every_s: float = 10.0,
        dry_run: bool = False,
    ) -> None:
        self._stream = stream or sys.stderr
        self._live = interactive(self._stream) if enabled is None else enabled is True
        self._silent = enabled is False
        self._width = 0
        self._redraw_s = redraw_s
        self._log_every_s = log_every_s
        self._dry_run = dry_run
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._shown_at = self._started
        self.accepted = 0
        self.rejected = 0
        self.failed = 0
        self.events_accepted = 0
        self.skipped = 0
        self.unsent = 0  # rows the sync state took out (unchanged, already sent)
        self.total: int | None = None  # rows this run will decide, when known up front

    def update(
        self, *, accepted: int = 0, rejected: int = 0, failed: int = 0, events_accepted: int = 0, unsent: int = 0
    ) -> None:
        with self._lock:
            self.unsent += unsent
            self.accepted += accepted
            self.rejected += rejected
            self.failed += failed
            self.events_accepted += events_accepted
            now = time.monotonic()
            due = self._redraw_s if self._live else self._log_every_s
            if now - self._shown_at >= due:
                self._shown_at = now
                self._show(now, final=False)

    def close(self) -> None:
        with self._lock:
            self._show(time.monotonic(), final=True)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        done = self.accepted + self.rejected + self.failed + self.unsent
        row_rate = done / elapsed
        skipped = f", {self.skipped:,} skipped (done before)" if self.skipped else ""
        if self._dry_run:
            counts = f"{done:,} rows checked: {self.accepted:,} valid, {self.rejected:,} rejected"
            rates = f"{row_rate:,.0f} rows/s"
        else:
            counts = f"{done:,} rows: {self.accepted:,} accepted, {self.rejected:,} rejected, {self.failed:,} failed"
            rates = f"{row_rate:,.0f} rows/s, {self.events_accepted / elapsed:,.0f} events/s"
        unsent = f", {self.unsent:,} unchanged or already sent" if self.unsent else ""
        counts = f"{counts}{unsent}{skipped} | {rates} | {duration(elapsed)}"
        if not self.total:
            return counts
        share = min(done / self.total, 1.0)
        filled = round(share * _BAR_WIDTH)
        left = ""
        if 0 < done < self.total:
            left = f" | {duration((self.total - done) / row_rate)} left"
        return f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {share:4.0%} of {self.total:,}{left} | {counts}"

    @contextmanager
    def phase(self, what: str) -> Iterator[None]:
        """A step after the rows are decided (``what``: "writing the results table"): a line when it
        starts and one with its duration when it ends, so a long final step does not look like a hang."""
        started = time.monotonic()
        self._say(f"{what} ...")
        yield
        self._say(f"{what}: done in {duration(time.monotonic() - started)}")

    def _say(self, text: str) -> None:
        if self._silent:
            return
        with self._lock:
            if self._live:
                self._stream.write(text + "\n")
                self._stream.flush()
            else:
                log.info("progress: %s", text)

    def _show(self, now: float, *, final: bool) -> None:
        if self._silent:
            return
        if self._live:
            text = self.line(now)
            self._width = max(self._width, len(text))
            self._stream.write("\r" + text.ljust(self._width) + ("\n" if final else ""))
            self._stream.flush()
        else:
            log.info("progress: %s", self.line(now))


def duration(seconds: float) -> str:
    """Seconds for people: ``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def count_rows(source: Any) -> int | None:
    """Rows in an input, when that is cheap to know (a DataFrame, an Arrow table, Parquet footers).

    Only for the progress bar: None (no bar, counts only) for CSV, globs, or anything unexpected.
    """
    if source is None:
        return 0
    if hasattr(source, "num_rows"):
        return int(source.num_rows)
    if hasattr(source, "shape"):
        return int(source.shape[0])
    try:
        fs, path = filesystem(source)
        if fs.isdir(path):
            files = sorted(p for p in fs.find(path) if is_parquet(p))
        elif is_parquet(path):
            files = [path]
        else:
            return None
        if len(files) > _MAX_FOOTERS:  # on object storage each footer is a request or two
            return None
        rows = 0
        for name in files:
            with fs.open(name, "rb") as f:
                rows += pq.ParquetFile(f).metadata.num_rows
        return rows
    except Exception:  # a bar is a nicety: reading proper reports unreadable inputs
        return None

"""The notebook API: ``load_events(events=..., endpoints=..., application_id=..., results=...)``.

One call reads, validates, reshapes, packs, sends and writes the results table, with pandas,
pyarrow and boto3; no Airflow is imported. Calling it again with the same ``results`` location
resumes: rows already accepted or rejected there are skipped, everything else is sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.common.text import first_line
from airflow_provider_pinpoint.errors import InputError, PinpointLoaderError, RejectRatioExceeded
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.progress import Progress, count_rows
from airflow_provider_pinpoint.results.rows import ACCEPTED, FAILED, REJECTED, Outcomes
from airflow_provider_pinpoint.results.store import (
    SCHEMA,
    ResultsStore,
    ResultsWriteError,
    new_run_id,
    rejections_batch,
)
from airflow_provider_pinpoint.sending.client import make_client
from airflow_provider_pinpoint.sending.engine import Sender
from airflow_provider_pinpoint.sending.ratelimit import shared_limiter
from airflow_provider_pinpoint.sinks.putevents import PutEventsTransport

log = logging.getLogger(__name__)

# How many validation messages an on_invalid="fail" error quotes.
_QUOTED_REJECTS = 5


@dataclass
class LoadReport:
    """What a run did: ``summary`` (JSON-serialisable counts) and ``results`` (the results table)."""

    summary: dict[str, Any]
    read_results: Callable[[], pa.Table] = field(repr=False)
    first_request: Request | None = field(default=None, repr=False)  # dry runs: what would go first
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def results(self) -> pd.DataFrame:
        """The results table as a pandas DataFrame, one row per input row (read when first asked)."""
        if self._frame is None:
            self._frame = self.read_results().to_pandas()
        return self._frame


def load_events(
    events=None,
    endpoints=None,
    *,
    application_id: str,
    results=None,
    client=None,
    session=None,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    requests_per_second: float = quotas.DEFAULT_REQUESTS_PER_SECOND,
    max_in_flight: int = 8,
    max_attempts: int = 8,
    column_mapping=None,
    csv_list_delimiter: str | None = None,
    max_reject_ratio: float | None = None,
    on_invalid: Literal["reject", "fail"] = "reject",
    dry_run: bool = False,
    progress: bool | Literal["log"] | None = None,
    run_id: str | None = None,
    stop_event: threading.Event | None = None,
) -> LoadReport:
    """Load endpoint and event tables into a Pinpoint application; return a :class:`LoadReport`.

    ``events`` / ``endpoints``: a path, directory, glob or fsspec URL of Parquet/CSV files, or a
    pandas DataFrame / pyarrow Table. ``results``: where the results table goes (``.parquet`` or
    ``.csv``; a local path, an fsspec URL or an ``ObjectStoragePath``, written with its connection);
    running again with the same location resumes. The client is
    ``client`` as given, else one made from ``session`` (or the default boto3 session) with
    ``endpoint_url`` and ``region_name`` and botocore's own retries off.

    Raises :class:`~airflow_provider_pinpoint.errors.FatalServiceError` (403/404 or no credentials
    found: nothing more is sent), :class:`~airflow_provider_pinpoint.errors.InputError`,
    :class:`~airflow_provider_pinpoint.results.store.ResultsWriteError` (the results could not be written:
    the run stopped), :class:`~airflow_provider_pinpoint.errors.PinpointLoaderError` itself when no
    region is configured, and :class:`~airflow_provider_pinpoint.errors.RejectRatioExceeded` after
    the good rows were sent and the results written (the report is its ``.report``). All are
    subclasses of ``PinpointLoaderError``.
    """
    if not application_id:
        raise InputError("application_id is required: the Pinpoint application (project) id to load into")
    if events is None and endpoints is None:
        raise InputError("nothing to load: pass events=..., endpoints=... or both")
    if on_invalid not in ("reject", "fail"):
        raise InputError(f"on_invalid must be 'reject' or 'fail', not {on_invalid!r}")
    if max_reject_ratio is not None and not 0.0 <= max_reject_ratio <= 1.0:
        raise InputError(f"max_reject_ratio must be between 0 and 1, not {max_reject_ratio}")
    if not (progress is None or isinstance(progress, bool) or (isinstance(progress, str) and progress == "log")):
        raise InputError(f"progress must be None, True, False or 'log', not {progress!r}")
    if requests_per_second <= 0 or max_in_flight < 1 or max_attempts < 1:
        raise InputError("requests_per_second must be > 0, max_in_flight and max_attempts >= 1")

    from airflow_provider_pinpoint.prepare.flow import prepare

    def prepared(skip: Mapping[str, Collection[int]] | None) -> Iterator[Request | list]:
        return prepare(
            events,
            endpoints,
            column_mapping=column_mapping,
            csv_list_delimiter=csv_list_delimiter,
            skip=skip,
        )

    run_id = run_id or new_run_id()
    started = time.monotonic()
    if dry_run:
        return _dry_run(prepared(None), run_id, started)

    store = ResultsStore(results)
    skip = store.done_rows() if store.exists() else None
    skipped = sum(len(rows) for rows in (skip or {}).values())
    if on_invalid == "fail":
        _fail_on_invalid(prepared(skip))
    client = make_client(client, session, endpoint_url, region_name, max_in_flight)

    writer = store.writer(run_id)
    meter = Progress(enabled=progress)
    meter.skipped = skipped
    if progress is not False:
        rows = [count_rows(events), count_rows(endpoints)]
        meter.total = None if None in rows else sum(rows) - skipped

    where = store.location or "memory"
    tally = _Tally()

    def written(write: Callable[[Any], None], rows: Sized) -> None:
        try:
            write(rows)
        except Exception as exc:
            raise ResultsWriteError(
                f"could not write the results at {where} ({type(exc).__name__}: {first_line(exc)}); "
                "the run stopped; free space or fix access, then rerun with the same results location to resume"
            ) from exc
        tally.add(recorded=len(rows))

    def record(decided: Outcomes) -> None:
        written(writer.add_outcomes, decided)
        meter.update(
            accepted=decided.accepted,
            rejected=decided.rejected,
            failed=decided.failed,
            events_accepted=decided.events_accepted,
        )

    def requests() -> Iterator[Request]:
        for out in prepared(skip):
            if isinstance(out, Request):
                tally.add(read=len(out))
                yield out
            else:
                tally.add(read=len(out))
                written(writer.add_rejections, out)
                meter.update(rejected=len(out))

    transport = PutEventsTransport(client)
    log.info("loading into %s; results: %s; run %s", transport.describe_target(application_id), where, run_id)
    with shared_limiter(str(client.meta.endpoint_url), requests_per_second) as limiter:
        sender = Sender(
            transport,
            application_id,
            record=record,
            limiter=limiter,
            max_in_flight=max_in_flight,
            max_attempts=max_attempts,
            stop_event=stop_event,
        )
        try:
            sender.run(requests())
        finally:
            writer.close()
            meter.close()
            counts = store.compact()
    if tally.read != tally.recorded:
        raise PinpointLoaderError(
            f"internal error: {tally.read} rows were read but {tally.recorded} recorded in the results at {where}; "
            "rerun with the same results location to send what is missing"
        )
    stats = sender.stats
    stopped = stop_event is not None and stop_event.is_set()
    report = LoadReport(
        _summary(
            counts,
            run_id,
            started,
            store.location,
            stats.requests,
            stats.retries,
            stats.events_accepted,
            skipped,
            stopped,
        ),
        store.read,
    )
    log.info("done: %s", report.summary)
    _check_reject_ratio(report, max_reject_ratio)
    return report


class _Tally:
    """Rows read and rows recorded this run, counted from the feeder and the worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.read = 0
        self.recorded = 0

    def add(self, *, read: int = 0, recorded: int = 0) -> None:
        with self._lock:
            self.read += read
            self.recorded += recorded


def _fail_on_invalid(prepared: Iterator[Request | list]) -> None:
    """on_invalid="fail": look at every row before sending anything; raise if any is invalid."""
    rejections: list = []
    for out in prepared:
        if not isinstance(out, Request):
            rejections.extend(out)
    if rejections:
        quoted = "; ".join(r.message for r in rejections[:_QUOTED_REJECTS])
        raise InputError(f"{len(rejections)} invalid row(s), nothing sent (on_invalid='fail'). First: {quoted}")


def _dry_run(prepared: Iterator[Request | list], run_id: str, started: float) -> LoadReport:
    """Validate, reshape and pack everything; send nothing, write nothing."""
    first: Request | None = None
    requests = items = events = 0
    rejected: list[pa.RecordBatch] = []
    for out in prepared:
        if isinstance(out, Request):
            if first is None:
                first = out
            requests += 1
            items += len(out)
            events += out.event_count
        elif out:
            rejected.append(rejections_batch(out, run_id))
    table = pa.Table.from_batches(rejected, schema=SCHEMA)
    summary = {
        "run_id": run_id,
        "dry_run": True,
        "input_rows": items + table.num_rows,
        "valid_rows": items,
        "valid_events": events,
        "rejected": table.num_rows,
        "requests": requests,
        "duration_s": round(time.monotonic() - started, 3),
    }
    return LoadReport(summary, lambda: table, first_request=first)


def _summary(
    counts: dict[str, int],
    run_id: str,
    started: float,
    results: str | None,
    requests: int,
    retries: int,
    events_accepted: int,
    skipped: int,
    stopped: bool,
) -> dict[str, Any]:
    duration = time.monotonic() - started
    return {
        "run_id": run_id,
        "input_rows": sum(counts.values()),
        "accepted": counts.get(ACCEPTED, 0),
        "rejected": counts.get(REJECTED, 0),
        "failed": counts.get(FAILED, 0),
        "skipped": skipped,
        "requests": requests,
        "retries": retries,
        "duration_s": round(duration, 3),
        "events_per_s": round(events_accepted / duration, 1) if duration > 0 else 0.0,
        "results": results,
        "stopped": stopped,
    }


def _check_reject_ratio(report: LoadReport, max_reject_ratio: float | None) -> None:
    if max_reject_ratio is None:
        return
    rows = report.summary["input_rows"]
    ratio = report.summary["rejected"] / rows if rows else 0.0
    if ratio > max_reject_ratio:
        error = RejectRatioExceeded(
            f"{report.summary['rejected']} of {rows} rows rejected ({ratio:.1%}), more than max_reject_ratio "
            f"{max_reject_ratio:.1%}; the good rows were sent; see the results table"
            + (f" at {report.summary['results']}" if report.summary["results"] else "")
        )
        error.report = report
        raise error

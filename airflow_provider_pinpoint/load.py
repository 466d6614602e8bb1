"""The notebook API: ``load_events(events=..., endpoints=..., application_id=..., results=...)``.

One call reads, validates, reshapes, packs, sends and writes the results table, with pyarrow and
boto3 (pandas only for DataFrames); no Airflow is imported. Calling it again with the same ``results`` location
resumes: rows already accepted or rejected there are skipped, everything else is sent.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sized
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.common.locations import is_url, with_storage_options
from airflow_provider_pinpoint.common.text import without_userinfo
from airflow_provider_pinpoint.errors import InputError, PinpointLoaderError, RejectRatioExceeded
from airflow_provider_pinpoint.prepare.requests import Request
from airflow_provider_pinpoint.progress import Progress, count_rows
from airflow_provider_pinpoint.results.digest import Digest, digest, digest_html
from airflow_provider_pinpoint.results.journal import ResultsWriter
from airflow_provider_pinpoint.results.rows import (
    ACCEPTED,
    ALREADY_SENT,
    FAILED,
    REJECTED,
    RESULTS_SCHEMA,
    UNCHANGED,
    Outcomes,
    rejections_batch,
)
from airflow_provider_pinpoint.results.store import ResultsStore, ResultsWriteError, new_run_id
from airflow_provider_pinpoint.sending.client import fitting_in_flight, make_client
from airflow_provider_pinpoint.sending.engine import Sender, SendStats
from airflow_provider_pinpoint.sending.ratelimit import shared_limiter
from airflow_provider_pinpoint.sinks.target import Rates, Sink, SinkTarget
from airflow_provider_pinpoint.summary import DryRunSummary, LoadSummary

if TYPE_CHECKING:
    import pandas as pd

    from airflow_provider_pinpoint.sinks.connect import ReadySink
    from airflow_provider_pinpoint.state.sync import Sync

log = logging.getLogger(__name__)

# How many validation messages an on_invalid="fail" error quotes.
_QUOTED_REJECTS = 5


@dataclass
class LoadReport:
    """What a run did: ``summary`` (counts, see :mod:`~airflow_provider_pinpoint.summary`) and
    ``results`` (the results table), with :meth:`rejected` and :meth:`failed` for the rows to look
    at. In a notebook it shows as a table of rows by record type and status and the commonest reasons."""

    summary: LoadSummary | DryRunSummary
    read_results: Callable[[], pa.Table] = field(repr=False)
    first_request: Request | None = field(default=None, repr=False)  # dry runs: what would go first
    _frame: pd.DataFrame | None = field(default=None, repr=False)
    _digest: Digest | None = field(default=None, repr=False)

    @property
    def results(self) -> pd.DataFrame:
        """The results table as a pandas DataFrame, one row per input row (read when first asked)."""
        if self._frame is None:
            self._frame = self.read_results().to_pandas()  # Arrow imports pandas here, not at start-up
        return self._frame

    def rejected(self) -> pd.DataFrame:
        """The rows rejected, as invalid or by the service, with why in ``message``: fix and reload them."""
        return self._rows(REJECTED)

    def failed(self) -> pd.DataFrame:
        """The rows not delivered after every attempt; a rerun with the same results location resends them."""
        return self._rows(FAILED)

    def _rows(self, status: str) -> pd.DataFrame:
        if self._frame is not None:
            return self._frame[self._frame["status"] == status].reset_index(drop=True)
        table = self.read_results()
        return table.filter(pc.equal(table.column("status"), status)).to_pandas()

    def __repr__(self) -> str:
        return f"LoadReport({self._headline()})"

    def _repr_html_(self) -> str:
        """Jupyter's view: rows by record type and status, and the five commonest reasons for the
        rejected and the failed rows (read from the results table once)."""
        if self._digest is None:
            self._digest = digest(self.read_results())
        return digest_html(self._headline(), self._digest)

    def _headline(self) -> str:
        s = self.summary
        if isinstance(s, DryRunSummary):
            return (
                f"dry run {s.run_id}: {s.input_rows:,} rows, {s.valid_rows:,} valid, {s.rejected:,} rejected, "
                f"{s.requests:,} requests; nothing sent"
            )
        stopped = ", stopped before the end" if s.stopped else ""
        return (
            f"run {s.run_id}: {s.input_rows:,} rows, {s.accepted:,} accepted, {s.rejected:,} rejected, "
            f"{s.failed:,} failed{stopped}; results: {s.results or 'in memory'}"
        )


def load_events(
    events: Any = None,
    endpoints: Any = None,
    *,
    application_id: str,
    results: Any = None,
    client: Any = None,
    session: Any = None,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    sink: Sink = "pinpoint",
    stream_name: str | None = None,
    delivery_stream_name: str | None = None,
    requests_per_second: float | None = None,
    records_per_second: float | None = None,
    bytes_per_second: float | None = None,
    max_in_flight: int = quotas.DEFAULT_MAX_IN_FLIGHT,
    max_attempts: int = 8,
    column_mapping: Mapping[str, Any] | None = None,
    csv_list_delimiter: str | None = None,
    max_reject_ratio: float | None = None,
    on_invalid: Literal["reject", "fail"] = "reject",
    dry_run: bool = False,
    progress: bool | Literal["log"] | None = None,
    run_id: str | None = None,
    stop_event: threading.Event | None = None,
    storage_options: Mapping[str, Any] | None = None,
    state: Any = None,
    full_refresh: bool = False,
    state_retention_days: float | None = None,
    state_part: str | None = None,
) -> LoadReport:
    """Load endpoint and event tables into a Pinpoint application; return a :class:`LoadReport`.

    ``events`` / ``endpoints``: a path, directory, glob or fsspec URL of Parquet/CSV files, or a
    pandas DataFrame / pyarrow Table. ``results``: where the results table goes (``.parquet`` or
    ``.csv``; a local path, an fsspec URL or an ``ObjectStoragePath``, written with its connection);
    running again with the same location resumes. The client is
    ``client`` as given, else one made from ``session`` (or the default boto3 session) with
    ``endpoint_url`` and ``region_name``, botocore's own retries off and a pooled connection for each
    of the ``max_in_flight`` requests sent at once. A client given with fewer connections
    (``Config(max_pool_connections=...)``, botocore's default is 10) sends that many at once.

    ``sink`` chooses the destination: ``"pinpoint"`` (PutEvents, the default), ``"kinesis"`` (a Kinesis
    data stream, ``stream_name`` required) or ``"firehose"`` (a Firehose delivery stream,
    ``delivery_stream_name`` required); on the last two every row goes as one record of Pinpoint's
    event-stream JSON (see docs/migration.md), and ``client``, ``endpoint_url`` and ``region_name`` are
    those of that service. ``requests_per_second`` (default: 15, the PutEvents quota; no request cap on
    Kinesis; 1,000 on Firehose), ``records_per_second`` and ``bytes_per_second`` (Kinesis: by default
    1,000 records and 1 MiB per second per open shard of the stream; Firehose: 100,000 and 1 MiB, the
    smallest regions' quota) set the sending rate; each is slowed down when the service throttles.
    ``storage_options``: passed
    to fsspec for every URL among the inputs and ``results`` (as in pandas, e.g. s3fs's ``key``,
    ``secret``, ``endpoint_url``); never logged or summarised.

    ``state``: a sync state location (a local directory or fsspec URL) kept per destination:
    endpoints whose body was accepted before are not sent (``unchanged``), nor events accepted
    before (``already_sent``); the state advances from the rows accepted once the results are
    written. ``full_refresh`` ignores what it holds and rebuilds it from this run;
    ``state_retention_days`` (default 7) is how long event ids are remembered; ``state_part``
    names this run's own file in it (runs at once on one state, e.g. shards, each need their own).
    See docs/sync.md.

    Raises :class:`~airflow_provider_pinpoint.errors.FatalServiceError` (401/403/404/407, a
    redirect, or no credentials found: nothing more is sent), :class:`~airflow_provider_pinpoint.errors.InputError`,
    :class:`~airflow_provider_pinpoint.results.store.ResultsWriteError` (the results could not be written:
    the run stopped), :class:`~airflow_provider_pinpoint.errors.PinpointLoaderError` itself when no
    region is configured, and :class:`~airflow_provider_pinpoint.errors.RejectRatioExceeded` after
    the good rows were sent and the results written (the report is its ``.report``). All are
    subclasses of ``PinpointLoaderError``.
    """
    target = SinkTarget.of(sink, stream_name, delivery_stream_name)
    if storage_options:  # as in pandas, an empty dict is no options
        events, endpoints, results, state = _with_storage_options(storage_options, events, endpoints, results, state)
    run = _Run(
        events,
        endpoints,
        application_id=application_id,
        target=target,
        column_mapping=column_mapping,
        csv_list_delimiter=csv_list_delimiter,
        max_reject_ratio=max_reject_ratio,
        on_invalid=on_invalid,
        progress=progress,
        run_id=run_id,
    )
    if dry_run:
        return run.dry_run()
    run.sync = _sync(state, application_id, full_refresh, state_retention_days, state_part, target.destination)
    return run.load(
        results,
        client=client,
        session=session,
        endpoint_url=endpoint_url,
        region_name=region_name,
        rates=Rates(requests_per_second, records_per_second, bytes_per_second),
        max_in_flight=max_in_flight,
        max_attempts=max_attempts,
        stop_event=stop_event,
    )


class _Run:
    """One call of :func:`load_events`; its steps, in order: check the options, open the results (and
    what an earlier run decided), make the client, send, compact the results, sum up."""

    def __init__(
        self,
        events: Any,
        endpoints: Any,
        *,
        application_id: str,
        target: SinkTarget,
        column_mapping: Mapping[str, Any] | None,
        csv_list_delimiter: str | None,
        max_reject_ratio: float | None,
        on_invalid: str,
        progress: bool | Literal["log"] | None,
        run_id: str | None,
    ) -> None:
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
        self.events = events
        self.endpoints = endpoints
        self.application_id = application_id
        self.target = target
        self.column_mapping = column_mapping
        self.csv_list_delimiter = csv_list_delimiter
        self.max_reject_ratio = max_reject_ratio
        self.on_invalid = on_invalid
        self.progress = progress
        self.run_id = run_id or new_run_id()
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self._lock = threading.Lock()
        self._read = 0  # rows taken from the input this run
        self._recorded = 0  # rows written to the results this run
        self.sync: Sync | None = None  # the sync state, when the run uses one

    def _prepared(self, skip: Mapping[str, Collection[int]] | None, sync: Sync | None = None) -> Iterator[Any]:
        if self.target.sink != "pinpoint":
            from airflow_provider_pinpoint.prepare.stream_flow import prepare_records
            from airflow_provider_pinpoint.sinks.connect import limits_of

            return prepare_records(
                self.events,
                self.endpoints,
                application_id=self.application_id,
                limits=limits_of(self.target),
                loaded_at_ms=int(self.started_at.timestamp() * 1000),
                column_mapping=self.column_mapping,
                csv_list_delimiter=self.csv_list_delimiter,
                skip=skip,
                sync=sync,
            )
        from airflow_provider_pinpoint.prepare.flow import prepare

        return prepare(
            self.events,
            self.endpoints,
            column_mapping=self.column_mapping,
            csv_list_delimiter=self.csv_list_delimiter,
            skip=skip,
            sync=sync,
        )

    # A dry run ------------------------------------------------------------------------------------

    def dry_run(self) -> LoadReport:
        """Validate, reshape and pack everything; send nothing, write nothing."""
        first: Request | None = None
        requests = items = events = 0
        rejected: list[pa.RecordBatch] = []
        meter = self._progress(0, dry_run=True)
        for out in self._prepared(None):
            if isinstance(out, Request):
                if first is None:
                    first = out
                requests += 1
                items += len(out)
                events += out.event_count
                meter.update(accepted=len(out))
            elif out:
                rejected.append(rejections_batch(out, self.run_id))
                meter.update(rejected=len(out))
        meter.close()
        table = pa.Table.from_batches(rejected, schema=RESULTS_SCHEMA)
        summary = DryRunSummary(
            run_id=self.run_id,
            input_rows=items + table.num_rows,
            valid_rows=items,
            valid_events=events,
            rejected=table.num_rows,
            requests=requests,
            duration_s=round(time.monotonic() - self.started, 3),
        )
        return LoadReport(summary, lambda: table, first_request=first)

    # A load ---------------------------------------------------------------------------------------

    def load(
        self,
        results: Any,
        *,
        client: Any,
        session: Any,
        endpoint_url: str | None,
        region_name: str | None,
        rates: Rates,
        max_in_flight: int,
        max_attempts: int,
        stop_event: threading.Event | None,
    ) -> LoadReport:
        """Send everything not done yet and write the results; the report of the whole table."""
        given = (rates.requests_per_second, rates.records_per_second, rates.bytes_per_second)
        if not all(rate is None or _positive_number(rate) for rate in given) or not _whole_at_least_1(
            max_in_flight, max_attempts
        ):
            # NaN passed "<= 0" and turned the rate limit off; text failed with a TypeError.
            raise InputError(
                "requests_per_second must be a finite number > 0 (records_per_second and bytes_per_second too) or "
                "None, max_in_flight and max_attempts whole numbers >= 1; "
                f"got {given[0]!r}, {given[1]!r}, {given[2]!r}, {max_in_flight!r}, {max_attempts!r}"
            )
        store = ResultsStore(results)
        # One run at a time per results location, from before it reads what to skip until the table is
        # compacted: two runs would both send the rows neither had recorded yet. Likewise per part of
        # a sync state, until it has advanced.
        state_lock = nullcontext() if self.sync is None else self.sync.files.lock(self.run_id)
        with state_lock, store.lock(self.run_id):
            skip = store.done_rows() if store.exists() else None
            skipped = sum(len(rows) for rows in (skip or {}).values())
            if self.on_invalid == "fail":
                self._fail_on_invalid(skip)
            client = make_client(client, session, endpoint_url, region_name, max_in_flight, service=self.target.service)
            max_in_flight = fitting_in_flight(client, max_in_flight)
            from airflow_provider_pinpoint.sinks.connect import ready_sink

            with ready_sink(self.target, client, rates, stop_event) as sink:
                stats, counts = self._send(
                    store,
                    skip,
                    skipped,
                    sink,
                    max_in_flight=max_in_flight,
                    max_attempts=max_attempts,
                    stop_event=stop_event,
                )
            if self.sync is not None and counts:  # the results are durable: the state may advance
                self.sync.commit()
        self._check_accounting(store, sum(counts.values()), skipped)
        stopped = stop_event is not None and stop_event.is_set()
        location = None if store.location is None else without_userinfo(store.location)
        summary = self._summary(counts, stats, skipped, location, stopped)
        report = LoadReport(summary, store.read)
        log.info("done: %s", " ".join(f"{key}={_text(value)}" for key, value in summary.to_dict().items()))
        self._check_reject_ratio(summary, report)
        return report

    def _fail_on_invalid(self, skip: Mapping[str, Collection[int]] | None) -> None:
        """on_invalid="fail": look at every row before sending anything; raise if any is invalid."""
        rejections: list = []
        for out in self._prepared(skip):
            if not isinstance(out, Request):
                rejections.extend(out)
        if rejections:
            quoted = "; ".join(r.message for r in rejections[:_QUOTED_REJECTS])
            raise InputError(f"{len(rejections)} invalid row(s), nothing sent (on_invalid='fail'). First: {quoted}")

    def _send(
        self,
        store: ResultsStore,
        skip: Mapping[str, Collection[int]] | None,
        skipped: int,
        sink: ReadySink,
        *,
        max_in_flight: int,
        max_attempts: int,
        stop_event: threading.Event | None,
    ) -> tuple[SendStats, dict[str, int]]:
        """Send and record every row; then compact the results (also when sending failed): this run's
        sending statistics and the results table's rows by status."""
        where = _where(store)
        transport = sink.transport
        log.info(
            "loading into %s; results: %s; run %s", transport.describe_target(self.application_id), where, self.run_id
        )
        writer = store.writer(self.run_id)
        meter = self._progress(skipped)

        sync = self.sync
        unsent_type: Any = ()  # what the sync state took out comes as Unsent
        if sync is not None:
            from airflow_provider_pinpoint.state.sync import Unsent as unsent_type

        def record(decided: Outcomes) -> None:
            decided = sink.noted(decided)
            self._write(writer.add_outcomes, decided, where)
            if sync is not None:
                sync.observe(decided)
            meter.update(
                accepted=decided.accepted,
                rejected=decided.rejected,
                failed=decided.failed,
                events_accepted=decided.events_accepted,
            )

        def requests() -> Iterator[Request]:
            for out in self._prepared(skip, sync):
                with self._lock:
                    self._read += len(out)
                if isinstance(out, Request):
                    yield out
                elif isinstance(out, unsent_type):
                    self._write(writer.add_outcomes, out.outcomes, where)
                    meter.update(unsent=len(out))
                else:
                    self._write(writer.add_rejections, out, where)
                    meter.update(rejected=len(out))

        with shared_limiter(sink.target, sink.requests_per_second) as limiter:
            sender = Sender(
                transport,
                self.application_id,
                record=record,
                limiter=limiter,
                max_in_flight=max_in_flight,
                max_attempts=max_attempts,
                max_events_per_request=sink.max_items,
                max_request_bytes=sink.max_bytes,
                stop_event=stop_event,
            )
            try:
                sender.run(requests())
            except BaseException:
                # What stopped the run is the error to report; the journals keep what was recorded.
                self._close(writer, meter, store, quietly=True)
                raise
            counts = self._close(writer, meter, store, quietly=False)
        return sender.stats, counts

    @staticmethod
    def _close(writer: ResultsWriter, meter: Progress, store: ResultsStore, *, quietly: bool) -> dict[str, int]:
        """Close the journal and compact the table; ``quietly`` after a failed run, so that a second error
        (the disk that stopped the run fails compaction too) does not hide the first."""
        writer.close()
        meter.close()
        try:
            with meter.phase("writing the results table"):
                return store.compact()
        except PinpointLoaderError as exc:
            if not quietly:
                raise
            log.warning("the results table was not compacted after the run stopped (%s); rerun to resume", exc)
            return {}

    def _progress(self, skipped: int, *, dry_run: bool = False) -> Progress:
        meter = Progress(enabled=self.progress, dry_run=dry_run)
        meter.skipped = skipped
        if self.progress is not False:
            rows = [count_rows(self.events), count_rows(self.endpoints)]
            meter.total = None if rows[0] is None or rows[1] is None else rows[0] + rows[1] - skipped
        return meter

    def _write(self, write: Callable[[Any], None], rows: Sized, where: str) -> None:
        """Write decided rows to the results; a failed write stops the run with one line."""
        try:
            write(rows)
        except Exception as exc:
            raise ResultsWriteError.of(where, exc) from exc
        with self._lock:
            self._recorded += len(rows)

    def _check_accounting(self, store: ResultsStore, table_rows: int, skipped: int) -> None:
        """Every row read this run was recorded, and the compacted table holds a row for each of them
        and for each row an earlier run decided: else the run must not look complete."""
        where = _where(store)
        if self._read != self._recorded:
            raise PinpointLoaderError(
                f"internal error: {self._read} rows were read but {self._recorded} recorded in the results at "
                f"{where}; rerun with the same results location to send what is missing"
            )
        if table_rows < skipped + self._read:
            raise PinpointLoaderError(
                f"the results at {where} hold {table_rows} rows, but the input gave {skipped + self._read}: rows share "
                "a (source, row) key, so their results overwrote each other (does the input bring its own _source or "
                "_source_row column?); the rows were sent, but the table cannot say what happened to each"
            )

    def _summary(
        self, counts: dict[str, int], stats: SendStats, skipped: int, results: str | None, stopped: bool
    ) -> LoadSummary:
        duration = time.monotonic() - self.started
        return LoadSummary(
            run_id=self.run_id,
            input_rows=sum(counts.values()),
            accepted=counts.get(ACCEPTED, 0),
            rejected=counts.get(REJECTED, 0),
            failed=counts.get(FAILED, 0),
            skipped=skipped,
            requests=stats.requests,
            retries=stats.retries,
            events_accepted=stats.events_accepted,
            duration_s=round(duration, 3),
            events_per_s=round(stats.events_accepted / duration, 1) if duration > 0 else 0.0,
            results=results,
            stopped=stopped,
            started_at=self.started_at.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            unchanged=counts.get(UNCHANGED, 0),
            already_sent=counts.get(ALREADY_SENT, 0),
        )

    def _check_reject_ratio(self, summary: LoadSummary, report: LoadReport) -> None:
        if self.max_reject_ratio is None:
            return
        rows = summary.input_rows
        ratio = summary.rejected / rows if rows else 0.0
        if ratio > self.max_reject_ratio:
            raise RejectRatioExceeded(
                f"{summary.rejected} of {rows} rows rejected ({ratio:.1%}), more than max_reject_ratio "
                f"{self.max_reject_ratio:.1%}; the good rows were sent; see the results table"
                + (f" at {summary.results}" if summary.results else ""),
                report=report,
            )


def _with_storage_options(storage_options: Mapping[str, Any], *locations: Any) -> list[Any]:
    """Each URL bound to a filesystem made with ``storage_options``; an error if none is a URL (as
    pandas says, for options that would otherwise be dropped without a word)."""
    if not isinstance(storage_options, Mapping):
        raise InputError(f"storage_options must be a dict, not a {type(storage_options).__name__}")
    if not any(is_url(location) for location in locations):
        raise InputError(
            "storage_options apply to fsspec URLs (s3://..., gs://...), but no input or results location is one"
        )
    return [with_storage_options(location, storage_options) for location in locations]


def _sync(
    state: Any,
    application_id: str,
    full_refresh: bool,
    retention_days: float | None,
    part: str | None,
    sink: str = "pinpoint",
) -> Sync | None:
    """The run's sync state for the destination (``sink``: ``pinpoint``, ``kinesis.STREAM`` or ``firehose.STREAM``; ``application_id``), or None without
    one (then ``full_refresh`` and the rest must be unset)."""
    if state is None:
        if full_refresh or retention_days is not None or part is not None:
            raise InputError("full_refresh, state_retention_days and state_part need a state location (state=...)")
        return None
    from airflow_provider_pinpoint.state import DEFAULT_RETENTION_DAYS, StateFiles, Sync

    days = DEFAULT_RETENTION_DAYS if retention_days is None else retention_days
    if not _positive_number(days):
        raise InputError(f"state_retention_days must be a number of days > 0, not {retention_days!r}")
    files = StateFiles(state, application_id=application_id, sink=sink, part=part or "main")
    return Sync(files, full_refresh=bool(full_refresh), retention_days=float(days))


def _text(value: Any) -> str:
    """A summary value for a log line: text as is, anything else as JSON (``null``, ``false``, ``12.5``)."""
    return value if isinstance(value, str) else json.dumps(value)


def _positive_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < float(value) < math.inf


def _whole_at_least_1(*values: Any) -> bool:
    return all(
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1 for value in values
    )


def _where(store: ResultsStore) -> str:
    """The results location for messages: without any ``user:password@``."""
    return "memory" if store.location is None else without_userinfo(store.location)

"""``pinpoint-load``: load endpoint and event tables into a Pinpoint application from a shell;
``pinpoint-load summarize RESULTS``: counts, top reasons and time span of a results table;
``pinpoint-load state show STATE``: what a sync state holds.

Exit codes: 0 the run completed; 1 a fatal error (unreadable input, bad credentials or profile,
unknown application, or the run was interrupted), printed as one line without a traceback; 2 a
usage error; 3 more rows were rejected than ``--max-reject-ratio`` allows (the good rows were sent).
stdout holds the summary only (``--output json``: one JSON object); logs and progress go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

from airflow_provider_pinpoint import __version__, quotas
from airflow_provider_pinpoint.common.gc_pause import pause_for_start_up, start_up_done
from airflow_provider_pinpoint.common.text import without_userinfo
from airflow_provider_pinpoint.errors import PinpointLoaderError, RejectRatioExceeded
from airflow_provider_pinpoint.summary import DryRunSummary, LoadSummary

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_provider_pinpoint.load import LoadReport
    from airflow_provider_pinpoint.results.store import ResultsStore

EXIT_OK = 0
EXIT_FATAL = 1
# 2, a usage error, is argparse's own exit code: parser.error() is how every usage error leaves.
EXIT_REJECT_RATIO = 3

# What a dry run prints instead of an endpoint's Address.
ADDRESS_PLACEHOLDER = "<address hidden>"
# How many rejected rows a dry run lists.
_DRY_RUN_REJECTS = 20
# How many reasons `summarize` lists.
_TOP_REASONS = 10

_EPILOG = """\
exit codes:
  0  the run completed (see the summary for accepted / rejected / failed rows)
  1  fatal error: unreadable input, bad credentials (401/403) or --profile, unknown application (404),
     a proxy asking for credentials (407) or a redirect (check --endpoint-url), the results
     table short of the input, or the run was interrupted (rerun with --resume to finish it)
  2  usage error
  3  more rows were rejected than --max-reject-ratio allows (the good rows were sent)

Credentials, role and region come from the standard AWS chain (environment, profile, instance role);
--profile (or AWS_PROFILE) picks a profile.

pinpoint-load summarize RESULTS [--output json] sums up a results table (see its --help).
pinpoint-load state show STATE [--output json] says what a sync state holds (see docs/sync.md).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinpoint-load",
        description="Validate, reshape and send endpoint and event tables (Parquet or CSV, local or URL)\n"
        "to a Pinpoint application with PutEvents, writing a results table with one row per input row.\n"
        "Running again with --resume and the same --results sends only the rows not yet done.\n"
        "Also: pinpoint-load summarize RESULTS (counts, top reasons, time span of a results table).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--application-id", required=True, metavar="APP", help="the Pinpoint application (project) id")
    parser.add_argument(
        "--events",
        metavar="PATH",
        help="events table: a Parquet/CSV file, a directory of part files, a glob, or a URL (s3://...)",
    )
    parser.add_argument("--endpoints", metavar="PATH", help="endpoints table, same forms as --events (optional)")
    parser.add_argument(
        "--results",
        metavar="PATH",
        help="where the results table goes (.parquet or .csv, local or URL); one row per input row "
        "(required, except with --dry-run)",
    )
    parser.add_argument(
        "--sink",
        choices=("pinpoint", "kinesis", "firehose"),
        default="pinpoint",
        help="where the rows go: pinpoint (PutEvents, the default), kinesis (a Kinesis data stream, with "
        "--stream-name) or firehose (a Firehose delivery stream, with --delivery-stream); kinesis and firehose "
        "get one record of Pinpoint's event-stream JSON per row",
    )
    parser.add_argument("--stream-name", metavar="NAME", help="the Kinesis data stream (--sink kinesis)")
    parser.add_argument("--delivery-stream", metavar="NAME", help="the Firehose delivery stream (--sink firehose)")
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="send to this endpoint of the chosen sink's service (e.g. the emulator, or a local Kinesis)",
    )
    parser.add_argument("--region", metavar="R", help="AWS region (default: from the AWS configuration)")
    parser.add_argument(
        "--profile", metavar="NAME", help="use this named profile from the AWS configuration (default: AWS_PROFILE)"
    )
    parser.add_argument(
        "--requests-per-second",
        type=_positive_float,
        metavar="N",
        help="request rate shared by all threads; slowed down automatically when throttled (default: "
        f"{quotas.DEFAULT_REQUESTS_PER_SECOND:g}, the documented PutEvents quota; kinesis: no cap; firehose: 1000)",
    )
    parser.add_argument(
        "--records-per-second",
        type=_positive_float,
        metavar="N",
        help="kinesis/firehose: records per second (default: kinesis 1000 per open shard of the stream; "
        "firehose 100000); slowed down when throttled",
    )
    parser.add_argument(
        "--bytes-per-second",
        type=_positive_float,
        metavar="N",
        help="kinesis/firehose: record bytes per second (default: kinesis 1 MiB per open shard; firehose 1 MiB)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=quotas.DEFAULT_MAX_IN_FLIGHT,
        metavar="N",
        help=f"requests sent concurrently (default: {quotas.DEFAULT_MAX_IN_FLIGHT})",
    )
    parser.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=8,
        metavar="N",
        help="attempts per row before it is marked failed (default: 8)",
    )
    parser.add_argument(
        "--column-mapping",
        type=_json_or_file,
        metavar="JSON-or-@file",
        help='rename input columns to the import-job names, e.g. \'{"user": "EndpointId", "extra": null}\' '
        "(null drops a column); @file reads the JSON from a file; "
        '{"events": {...}, "endpoints": {...}} maps each table separately',
    )
    parser.add_argument(
        "--csv-list-delimiter",
        metavar="C",
        help="split multi-valued endpoint attributes in CSV on this character",
    )
    parser.add_argument(
        "--max-reject-ratio",
        type=_ratio,
        metavar="F",
        help="exit 3 if more than this fraction (0..1) of the rows is rejected; good rows are still sent",
    )
    parser.add_argument(
        "--on-invalid",
        choices=("reject", "fail"),
        default="reject",
        help="reject: send the good rows, list the bad ones in the results (default); fail: send nothing "
        "if any row is invalid",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an earlier run with the same --results: skip rows already accepted or rejected",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate, reshape and pack; print the counts, the rejects and the first request; send nothing",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="a trial load: only the first N rows of each table are read (and held in memory); a later run "
        "without --limit, with --resume and the same --results, sends the rest",
    )
    parser.add_argument(
        "--state",
        metavar="PATH",
        help="a sync state (a directory, local or URL) kept per destination (sink, stream) and application: endpoints whose body was accepted "
        "before and events accepted before are not sent (unchanged / already_sent in the results)",
    )
    parser.add_argument(
        "--full-refresh", action="store_true", help="with --state: send everything and rebuild this run's state"
    )
    parser.add_argument(
        "--state-retention-days",
        type=_positive_float,
        metavar="DAYS",
        help="with --state: forget event ids accepted longer ago than this (default: 7)",
    )
    parser.add_argument(
        "--state-part",
        metavar="NAME",
        help="with --state: this run's own file in the state (default: main); runs at once on one state, "
        "e.g. shards, each need their own",
    )
    _output_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    return parser


def _output_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: a table for people (default); json: the summary as one JSON object on stdout "
        "(logs and progress stay on stderr)",
    )


class _VersionAction(argparse.Action):
    """``--version``, worked out only when it is given: reading the libraries' installed metadata
    costs about 6 ms of CPU, which argparse's own version action would spend on every run."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help="show program's version number and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        print(_version())
        parser.exit()


def _version() -> str:
    """Like ``aws --version``: this tool's version, then Python's and the libraries' that do the work."""
    from importlib import metadata

    versions = [f"pinpoint-load/{__version__}", f"Python/{sys.version.split()[0]}"]
    for name in ("boto3", "pyarrow"):
        try:
            versions.append(f"{name}/{metadata.version(name)}")
        except metadata.PackageNotFoundError:  # pragma: no cover - both are dependencies
            continue
    return " ".join(versions)


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:  # nan and inf too: a rate of nan would switch the limit off
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {text}")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _json_or_file(text: str) -> dict:
    try:
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        value = json.loads(text)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object mapping input column -> column name")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """``pinpoint-load``'s entry point; ``argv`` None means the process is this command's own."""
    owns_process = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["summarize"]:
        return summarize_main(argv[1:])
    if argv[:2] == ["state", "show"]:
        return state_show_main(argv[2:])
    if owns_process:
        pause_for_start_up()  # until the client is made (see common/gc_pause.py)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.events is None and args.endpoints is None:
        parser.error("give --events, --endpoints or both")
    if args.results is None and not args.dry_run:
        parser.error("give --results (where the results table goes); only --dry-run can do without")
    if args.state is None and (args.full_refresh or args.state_retention_days or args.state_part):
        parser.error("--full-refresh, --state-retention-days and --state-part go with --state")
    from airflow_provider_pinpoint.sinks.target import SinkTarget

    try:
        SinkTarget.of(args.sink, args.stream_name, args.delivery_stream)
    except PinpointLoaderError as exc:
        parser.error(str(exc))
    _log_to_stderr()
    out = sys.stdout

    from airflow_provider_pinpoint.common.arrow import hide_pandas, show_pandas

    hide_pandas()  # no DataFrame comes through a shell
    try:
        return _load(args, parser, out)
    finally:
        start_up_done()  # if no client was made (a dry run, an error)
        show_pandas()  # for whoever calls main() in-process and imports pandas afterwards


def _load(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    """Load (or dry-run) as the parsed flags say; the exit code."""
    from airflow_provider_pinpoint.load import load_events
    from airflow_provider_pinpoint.results.store import ResultsStore

    try:
        store = ResultsStore(args.results)
    except PinpointLoaderError as exc:
        parser.error(str(exc))
    try:
        if not args.dry_run and not args.resume and store.exists():
            parser.error(
                f"results already exist at {args.results}: pass --resume to send only the rows not yet accepted "
                "or rejected, or choose another --results"
            )
        session = _session(args.profile, args.region)
        events, endpoints, mapping = args.events, args.endpoints, args.column_mapping
        if args.limit is not None:
            events, endpoints, mapping = _first_rows(args)
        stop = threading.Event()
        restore = _stop_on_signals(stop)
        try:
            report = load_events(
                events,
                endpoints,
                application_id=args.application_id,
                results=None if args.dry_run else args.results,
                session=session,
                endpoint_url=args.endpoint_url,
                region_name=args.region,
                sink=args.sink,
                stream_name=args.stream_name,
                delivery_stream_name=args.delivery_stream,
                requests_per_second=args.requests_per_second,
                records_per_second=args.records_per_second,
                bytes_per_second=args.bytes_per_second,
                max_in_flight=args.max_in_flight,
                max_attempts=args.max_attempts,
                column_mapping=mapping,
                csv_list_delimiter=None if args.limit is not None else args.csv_list_delimiter,
                max_reject_ratio=args.max_reject_ratio,
                on_invalid=args.on_invalid,
                dry_run=args.dry_run,
                progress=False if args.no_progress else None,
                stop_event=stop,
                **_state_options(args),
            )
        finally:
            restore()
    except RejectRatioExceeded as exc:
        _print_summary(_loaded(exc.report), args.output, out)
        print(f"pinpoint-load: {exc}", file=sys.stderr)
        return EXIT_REJECT_RATIO
    except PinpointLoaderError as exc:
        print(f"pinpoint-load: {exc}", file=sys.stderr)
        return EXIT_FATAL
    if args.dry_run:
        _print_dry_run(report, args.output, out, args.sink)
        return EXIT_OK
    summary = _loaded(report)
    _print_summary(summary, args.output, out)
    if summary.stopped:
        print("pinpoint-load: interrupted before the end; rerun with --resume to finish", file=sys.stderr)
        return EXIT_FATAL
    return EXIT_OK


def _state_options(args: argparse.Namespace) -> dict[str, Any]:
    """The sync state's options for load_events (none without --state; a dry run reads no state)."""
    if args.state is None or args.dry_run:
        return {}
    return {
        "state": args.state,
        "full_refresh": args.full_refresh,
        "state_retention_days": args.state_retention_days,
        "state_part": args.state_part,
    }


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials in ..." is noise here


def _session(profile: str | None, region: str | None) -> Any:
    """A boto3 session for ``--profile`` (else ``AWS_PROFILE``); None without either (the default chain).

    A profile that is not configured is one line here, not botocore's traceback when sending starts."""
    flag = "--profile" if profile is not None else "AWS_PROFILE"
    profile = profile if profile is not None else os.environ.get("AWS_PROFILE") or None
    if profile is None:
        return None
    import boto3
    import botocore.exceptions
    import botocore.session

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound:
        # A session without the missing profile (AWS_PROFILE may name it) to list the configured ones.
        known = sorted(botocore.session.Session(profile="default").available_profiles)
        listed = f"the profiles configured are {', '.join(known)}" if known else "no profile is configured"
        raise PinpointLoaderError(
            f"the profile {profile} is not in the AWS configuration ({listed}); check {flag}"
        ) from None


def _first_rows(args: argparse.Namespace) -> tuple[Any, Any, None]:
    """``--limit``: the first rows of each table, read as a full run reads them (same file names and
    row numbers, so the results match and a run without --limit resumes after them), as Arrow tables
    whose columns are already mapped (hence no mapping is returned)."""
    from airflow_provider_pinpoint.prepare.read import check_mapping

    check_mapping(args.column_mapping, events=args.events, endpoints=args.endpoints)
    return (
        None if args.events is None else _head(args.events, "events", args),
        None if args.endpoints is None else _head(args.endpoints, "endpoints", args),
        None,
    )


def _head(source: str, kind: Literal["events", "endpoints"], args: argparse.Namespace) -> pa.Table:
    """The first ``--limit`` rows of one input, mapped and with their ``_source`` / ``_source_row``."""
    import pyarrow as pa

    from airflow_provider_pinpoint.prepare.read import read_batches, unified

    limit: int = args.limit
    tables = []
    rows = 0
    batches = read_batches(
        source,
        kind=kind,
        column_mapping=args.column_mapping,
        csv_list_delimiter=args.csv_list_delimiter,
        batch_rows=min(limit, 65_536),
    )
    for batch in batches:
        tables.append(pa.Table.from_batches([batch.slice(0, limit - rows)]))
        rows += tables[-1].num_rows
        if rows >= limit:
            break
    return unified(tables, source)


def _loaded(report: LoadReport) -> LoadSummary:
    """The summary of a load (not a dry run)."""
    assert isinstance(report.summary, LoadSummary)
    return report.summary


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGINT / SIGTERM stop sending and leave the results table ready for --resume; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


def _print_summary(summary: LoadSummary, output: str, out: TextIO) -> None:
    if output == "json":
        _print_json(summary.to_dict(), out)
        return
    rows = [
        ("accepted", f"{summary.accepted:,}"),
        ("rejected", f"{summary.rejected:,}"),
        ("failed", f"{summary.failed:,}"),
    ]
    if summary.unchanged or summary.already_sent:
        rows.append(("unchanged (endpoints)", f"{summary.unchanged:,}"))
        rows.append(("already sent (events)", f"{summary.already_sent:,}"))
    if summary.skipped:
        rows.append(("skipped (done before)", f"{summary.skipped:,}"))
    rows += [
        ("requests", f"{summary.requests:,}"),
        ("retries", f"{summary.retries:,}"),
        ("duration", f"{summary.duration_s:,.1f} s"),
        ("events/s", f"{summary.events_per_s:,.0f}"),
        ("results", summary.results or "in memory"),
        ("run", summary.run_id),
    ]
    _print_rows(rows, out)


def _print_rows(rows: Sequence[tuple[str, str]], out: TextIO, indent: str = "") -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{indent}{name:<{width}}  {value}", file=out)


def _print_json(value: dict[str, Any], out: TextIO) -> None:
    print(json.dumps(value, ensure_ascii=False), file=out)


def _print_dry_run(report: LoadReport, output: str, out: TextIO, sink: str = "pinpoint") -> None:
    summary = report.summary
    assert isinstance(summary, DryRunSummary)
    # Read as Arrow: the CLI has no need of pandas.
    rejects = report.read_results().column("message").slice(0, _DRY_RUN_REJECTS).to_pylist()
    if sink != "pinpoint":
        _print_first_record(report, summary, rejects, output, out)
        return
    first = None
    if report.first_request is not None:
        batch_item = report.first_request.batch_item()
        for entry in batch_item.values():  # the shape is what matters here, not a person's address
            if "Address" in entry["Endpoint"]:
                entry["Endpoint"]["Address"] = ADDRESS_PLACEHOLDER
        first = {"BatchItem": batch_item}
    if output == "json":
        _print_json(summary.to_dict() | {"first_rejections": rejects, "first_request": first}, out)
        return
    _print_dry_run_counts(summary, rejects, out)
    if first is not None:
        print("first request (PutEvents EventsRequest; addresses hidden):", file=out)
        print(json.dumps(first, indent=2, ensure_ascii=False), file=out)


def _print_dry_run_counts(summary: DryRunSummary, rejects: list[str], out: TextIO) -> None:
    print(
        f"dry run: {summary.input_rows:,} rows read, {summary.valid_rows:,} valid "
        f"({summary.valid_events:,} events), {summary.rejected:,} rejected, "
        f"{summary.requests:,} requests; nothing sent",
        file=out,
    )
    if rejects:
        print(f"rejected rows (first {len(rejects)} of {summary.rejected:,}):", file=out)
        for message in rejects:  # each names its file, row, column and rule
            print(f"  {message}", file=out)


def _print_first_record(
    report: LoadReport, summary: DryRunSummary, rejects: list[str], output: str, out: TextIO
) -> None:
    """A stream sink's dry run: the counts, the rejects and the first record as it would be sent
    (``arrival_timestamp`` is the time of the dry run; records carry no address)."""
    import time

    from airflow_provider_pinpoint.prepare.event_stream import with_arrival

    first = None
    if report.first_request is not None:
        body = report.first_request.items[0].body.encode()
        first = json.loads(with_arrival(body, time.time_ns() // 1_000_000))
    if output == "json":
        _print_json(summary.to_dict() | {"first_rejections": rejects, "first_record": first}, out)
        return
    _print_dry_run_counts(summary, rejects, out)
    if first is not None:
        print("first record (Pinpoint event-stream JSON):", file=out)
        print(json.dumps(first, indent=2, ensure_ascii=False), file=out)


# pinpoint-load summarize ------------------------------------------------------------------------


def _summarize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinpoint-load summarize",
        description="Sum up a results table written by pinpoint-load or load_events: rows by record type and "
        "status, the most common reasons for rejected and failed rows, the time span of sent_at, and the runs.",
    )
    parser.add_argument("results", metavar="RESULTS", help="the results table (.parquet or .csv, local or URL)")
    _output_flag(parser)
    return parser


def summarize_main(argv: Sequence[str]) -> int:
    """``pinpoint-load summarize RESULTS``: the audit of a results table, read with pyarrow alone."""
    parser = _summarize_parser()
    args = parser.parse_args(argv)
    _log_to_stderr()
    from airflow_provider_pinpoint.results.digest import audit
    from airflow_provider_pinpoint.results.journal import journal_paths
    from airflow_provider_pinpoint.results.store import ResultsStore

    try:
        store = ResultsStore(args.results)
    except PinpointLoaderError as exc:
        parser.error(str(exc))
    where = without_userinfo(store.location or "")
    try:
        summary = audit(_read_results(store, where), top=_TOP_REASONS)
        if journal_paths(store.fs, store.staging):
            print(
                f"pinpoint-load: a run was cut short at {where}: the rows it recorded are not in the "
                "table yet; rerun it with --resume to finish it",
                file=sys.stderr,
            )
    except PinpointLoaderError as exc:
        print(f"pinpoint-load: {exc}", file=sys.stderr)
        return EXIT_FATAL
    if args.output == "json":
        _print_json(summary, sys.stdout)
    else:
        _print_audit(summary, where, sys.stdout)
    return EXIT_OK


def _read_results(store: ResultsStore, where: str) -> pa.Table:
    """The compacted table at the store's location; one line when there is none or it cannot be read."""
    from airflow_provider_pinpoint.common.text import first_line

    try:
        return store.read()  # a file that is not a results table is an InputError already
    except FileNotFoundError:
        raise PinpointLoaderError(f"no results table at {where}") from None
    except OSError as exc:
        raise PinpointLoaderError(f"{where}: cannot read it as a results table ({first_line(exc, 160)})") from None


def _print_audit(summary: dict[str, Any], location: str, out: TextIO) -> None:
    print(f"results: {location}, {summary['rows']:,} rows", file=out)
    for record_type, statuses in summary["counts"].items():
        text = ", ".join(f"{rows:,} {status}" for status, rows in statuses.items())
        print(f"  {record_type}s: {text}", file=out)
    if summary["top_reasons"]:
        print(f"most common reasons (top {len(summary['top_reasons'])}):", file=out)
        for reason in summary["top_reasons"]:
            print(f"  {reason['rows']:>9,}  {reason['status']:<8}  {reason['reason']}", file=out)
    if summary["first_sent_at"] is not None:
        print(f"sent from {summary['first_sent_at']} to {summary['last_sent_at']}", file=out)
    print(f"runs ({len(summary['runs'])}):", file=out)
    for run in summary["runs"]:
        print(f"  {run['run_id']}  {run['rows']:,} rows", file=out)


# pinpoint-load state show ----------------------------------------------------------------------


def state_show_main(argv: Sequence[str]) -> int:
    """``pinpoint-load state show STATE``: per destination, the endpoints and events the state holds."""
    parser = argparse.ArgumentParser(
        prog="pinpoint-load state show",
        description="Say what a sync state holds: per destination (sink, stream) and application, the endpoints with a body, those "
        "marked to send again, the event ids, the time span of accepted_at, the files and their size.",
    )
    parser.add_argument("state", metavar="STATE", help="the state location given as --state")
    _output_flag(parser)
    args = parser.parse_args(argv)
    from airflow_provider_pinpoint.state import describe

    try:
        held = describe(args.state)
    except PinpointLoaderError as exc:
        print(f"pinpoint-load: {exc}", file=sys.stderr)
        return EXIT_FATAL
    if args.output == "json":
        _print_json(held, sys.stdout)
        return EXIT_OK
    print(f"state: {held['state']}", file=sys.stdout)
    if not held["destinations"]:
        print("  empty (no run has written it yet)", file=sys.stdout)
    for entry in held["destinations"]:
        print(f"  {entry['sink']} / {entry['application_id']}:", file=sys.stdout)
        rows = [
            ("endpoints", f"{entry['endpoints']:,}"),
            ("to send again", f"{entry['to_send_again']:,}"),
            ("events", f"{entry['events']:,}"),
            ("accepted", f"{entry.get('oldest', '-')} .. {entry.get('newest', '-')}"),
            ("files", f"{', '.join(entry['files'])} ({entry['bytes']:,} bytes)"),
        ]
        _print_rows(rows, sys.stdout, indent="    ")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

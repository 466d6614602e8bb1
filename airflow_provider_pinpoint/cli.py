"""``pinpoint-load``: load endpoint and event tables into a Pinpoint application from a shell.

Exit codes: 0 the run completed; 1 a fatal error (unreadable input, bad credentials, unknown
application, or the run was interrupted), printed as one line without a traceback; 2 a usage
error; 3 more rows were rejected than ``--max-reject-ratio`` allows (the good rows were sent).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.errors import PinpointLoaderError, RejectRatioExceeded
from airflow_provider_pinpoint.summary import DryRunSummary, LoadSummary

if TYPE_CHECKING:
    from airflow_provider_pinpoint.load import LoadReport

EXIT_OK = 0
EXIT_FATAL = 1
# 2, a usage error, is argparse's own exit code: parser.error() is how every usage error leaves.
EXIT_REJECT_RATIO = 3

# What a dry run prints instead of an endpoint's Address.
ADDRESS_PLACEHOLDER = "<address hidden>"
# How many rejected rows a dry run lists.
_DRY_RUN_REJECTS = 20

_EPILOG = """\
exit codes:
  0  the run completed (see the summary for accepted / rejected / failed rows)
  1  fatal error: unreadable input, bad credentials (401/403), unknown application (404),
     a proxy asking for credentials (407) or a redirect (check --endpoint-url), the results
     table short of the input, or the run was interrupted (rerun with --resume to finish it)
  2  usage error
  3  more rows were rejected than --max-reject-ratio allows (the good rows were sent)

Credentials, role and region come from the standard AWS chain (environment, profile, instance role);
AWS_PROFILE picks a profile.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinpoint-load",
        description="Validate, reshape and send endpoint and event tables (Parquet or CSV, local or URL)\n"
        "to a Pinpoint application with PutEvents, writing a results table with one row per input row.\n"
        "Running again with --resume and the same --results sends only the rows not yet done.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--application-id", required=True, metavar="APP", help="the Pinpoint application (project) id")
    parser.add_argument(
        "--events",
        metavar="PATH",
        help="events table: a Parquet/CSV file, a directory of part files, a glob, or a URL (s3://...)",
    )
    parser.add_argument("--endpoints", metavar="PATH", help="endpoints table, same forms as --events (optional)")
    parser.add_argument(
        "--results",
        required=True,
        metavar="PATH",
        help="where the results table goes (.parquet or .csv, local or URL); one row per input row",
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="send to this PutEvents-compatible endpoint (e.g. the emulator)"
    )
    parser.add_argument("--region", metavar="R", help="AWS region (default: from the AWS configuration)")
    parser.add_argument(
        "--requests-per-second",
        type=_positive_float,
        default=quotas.DEFAULT_REQUESTS_PER_SECOND,
        metavar="N",
        help="request rate shared by all threads; slowed down automatically when throttled (default: %(default)s, "
        "the documented PutEvents quota)",
    )
    parser.add_argument(
        "--max-in-flight", type=_positive_int, default=8, metavar="N", help="requests sent concurrently (default: 8)"
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
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    return parser


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
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
    parser = _parser()
    args = parser.parse_args(argv)
    if args.events is None and args.endpoints is None:
        parser.error("give --events, --endpoints or both")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials in ..." is noise here
    out = sys.stdout

    from airflow_provider_pinpoint.common.arrow import hide_pandas
    from airflow_provider_pinpoint.load import load_events
    from airflow_provider_pinpoint.results.store import ResultsStore

    hide_pandas()  # no DataFrame comes through a shell

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
        stop = threading.Event()
        restore = _stop_on_signals(stop)
        try:
            report = load_events(
                args.events,
                args.endpoints,
                application_id=args.application_id,
                results=None if args.dry_run else args.results,
                endpoint_url=args.endpoint_url,
                region_name=args.region,
                requests_per_second=args.requests_per_second,
                max_in_flight=args.max_in_flight,
                max_attempts=args.max_attempts,
                column_mapping=args.column_mapping,
                csv_list_delimiter=args.csv_list_delimiter,
                max_reject_ratio=args.max_reject_ratio,
                on_invalid=args.on_invalid,
                dry_run=args.dry_run,
                progress=False if args.no_progress else None,
                stop_event=stop,
            )
        finally:
            restore()
    except RejectRatioExceeded as exc:
        _print_summary(_loaded(exc.report), out)
        print(f"pinpoint-load: {exc}", file=sys.stderr)
        return EXIT_REJECT_RATIO
    except PinpointLoaderError as exc:
        print(f"pinpoint-load: {exc}", file=sys.stderr)
        return EXIT_FATAL
    if args.dry_run:
        _print_dry_run(report, out)
        return EXIT_OK
    summary = _loaded(report)
    _print_summary(summary, out)
    if summary.stopped:
        print("pinpoint-load: interrupted before the end; rerun with --resume to finish", file=sys.stderr)
        return EXIT_FATAL
    return EXIT_OK


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


def _print_summary(summary: LoadSummary, out: TextIO) -> None:
    rows = [
        ("accepted", f"{summary.accepted:,}"),
        ("rejected", f"{summary.rejected:,}"),
        ("failed", f"{summary.failed:,}"),
    ]
    if summary.skipped:
        rows.append(("skipped (done before)", f"{summary.skipped:,}"))
    rows += [
        ("requests", f"{summary.requests:,}"),
        ("retries", f"{summary.retries:,}"),
        ("duration", f"{summary.duration_s:,.1f} s"),
        ("events/s", f"{summary.events_per_s:,.0f}"),
        ("results", str(summary.results)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", file=out)


def _print_dry_run(report: LoadReport, out: TextIO) -> None:
    summary = report.summary
    assert isinstance(summary, DryRunSummary)
    print(
        f"dry run: {summary.input_rows:,} rows read, {summary.valid_rows:,} valid "
        f"({summary.valid_events:,} events), {summary.rejected:,} rejected, "
        f"{summary.requests:,} requests; nothing sent",
        file=out,
    )
    rejects = report.results.head(_DRY_RUN_REJECTS)
    if len(rejects):
        print(f"rejected rows (first {len(rejects)} of {summary.rejected:,}):", file=out)
        for message in rejects["message"]:  # each names its file, row, column and rule
            print(f"  {message}", file=out)
    if report.first_request is not None:
        batch_item = report.first_request.batch_item()
        for entry in batch_item.values():  # the shape is what matters here, not a person's address
            if "Address" in entry["Endpoint"]:
                entry["Endpoint"]["Address"] = ADDRESS_PLACEHOLDER
        print("first request (PutEvents EventsRequest; addresses hidden):", file=out)
        print(json.dumps({"BatchItem": batch_item}, indent=2, ensure_ascii=False), file=out)


if __name__ == "__main__":
    sys.exit(main())

"""``pinpoint-emulator``: serve PutEvents on loopback until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
import sys

from airflow_provider_pinpoint.emulator.faults import Settings
from airflow_provider_pinpoint.emulator.runner import LOOPBACK, url_for
from airflow_provider_pinpoint.emulator.server import Limits, new_event_loop, start_server
from airflow_provider_pinpoint.emulator.service import Emulator
from airflow_provider_pinpoint.emulator.store import open_store

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinpoint-emulator",
        description="A local Amazon Pinpoint PutEvents endpoint with validation, recording and fault injection.",
    )
    parser.add_argument("--host", default=LOOPBACK, help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=4566, help="port to bind, 0 for any free port (default: %(default)s)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="required to bind an address other than loopback; also accepts any Host header",
    )
    parser.add_argument(
        "--app",
        action="append",
        dest="apps",
        metavar="ID",
        help="declare an application id (repeatable); without any, every id is accepted",
    )
    parser.add_argument("--store", metavar="PATH", help="SQLite file keeping the records across restarts")
    parser.add_argument("--access-key", metavar="KEY", help="answer 403 to requests signed with any other access key")
    parser.add_argument("--no-validate", action="store_true", help="skip item-level validation (faster)")
    parser.add_argument("--rate-limit", type=float, metavar="RPS", help="token-bucket limit in requests/second (429)")
    parser.add_argument("--error-rate", type=float, default=0.0, metavar="F", help="fraction of requests answered 500")
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="N", help="mean added latency (0.5N to 1.5N)")
    parser.add_argument("--drop-rate", type=float, default=0.0, metavar="F", help="fraction of connections dropped")
    parser.add_argument(
        "--lost-response-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of requests processed and recorded whose answer is never sent",
    )
    parser.add_argument(
        "--item-error-rate", type=float, default=0.0, metavar="F", help="fraction of events answered 429/500 in a 202"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every fault decision (default: %(default)s)")
    defaults = Limits()
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=defaults.request_timeout_s,
        metavar="S",
        help="seconds a begun request has to arrive complete, else 408 (default: %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=defaults.idle_timeout_s,
        metavar="S",
        help="seconds a connection may wait without a request before it is closed (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=defaults.max_connections,
        metavar="N",
        help="open connections; one more closes the one idle longest (default: %(default)s)",
    )
    parser.add_argument(
        "--max-url-bytes",
        type=int,
        default=defaults.max_url_bytes,
        metavar="N",
        help="longest request target, else 414 (default: %(default)s)",
    )
    parser.add_argument(
        "--max-header-bytes",
        type=int,
        default=defaults.max_header_bytes,
        metavar="N",
        help="longest request line and headers together, else 431 (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.host not in _LOOPBACK_HOSTS:
        if not args.allow_remote:
            parser.error(f"--host {args.host} is not loopback; add --allow-remote to serve other machines")
        print(
            f"WARNING: serving on {args.host}: anyone who can reach it can write to and read this emulator",
            file=sys.stderr,
        )
    try:
        settings = Settings().updated(
            validate=not args.no_validate,
            rate_limit=args.rate_limit,
            error_rate=args.error_rate,
            latency_ms=args.latency_ms,
            drop_rate=args.drop_rate,
            lost_response_rate=args.lost_response_rate,
            item_error_rate=args.item_error_rate,
            seed=args.seed,
        )
        limits = Limits(
            request_timeout_s=args.request_timeout,
            idle_timeout_s=args.idle_timeout,
            max_connections=args.max_connections,
            max_url_bytes=args.max_url_bytes,
            max_header_bytes=args.max_header_bytes,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        store = open_store(args.store)
    except sqlite3.Error as exc:
        print(f"pinpoint-emulator: cannot open --store {args.store}: {exc}", file=sys.stderr)
        return 1
    emulator = Emulator(store, settings, apps=args.apps, access_key=args.access_key, allow_remote=args.allow_remote)
    loop = new_event_loop()
    try:
        return loop.run_until_complete(_serve(emulator, args.host, args.port, limits))
    except OSError as exc:
        print(f"pinpoint-emulator: cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    finally:
        loop.close()
        store.close()


async def _serve(emulator: Emulator, host: str, port: int, limits: Limits) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await start_server(emulator, host, port, limits)
    bound_port = server.sockets[0].getsockname()[1]
    print(f"pinpoint-emulator serving on {url_for(host, bound_port)}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()
    print("pinpoint-emulator stopped", file=sys.stderr)
    return 0

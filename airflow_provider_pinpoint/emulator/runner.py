"""Starting an emulator from Python: on a free loopback port, in a thread or a subprocess.

A thread is cheapest for tests (one per test session, faults changed at run time). A subprocess
keeps the server's CPU out of the caller's interpreter, which is what a benchmark needs.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess as subprocess_module
import sys
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_provider_pinpoint.emulator.client import EmulatorClient
from airflow_provider_pinpoint.emulator.faults import Settings
from airflow_provider_pinpoint.emulator.server import Limits, new_event_loop, start_server
from airflow_provider_pinpoint.emulator.service import Emulator
from airflow_provider_pinpoint.emulator.store import open_store

LOOPBACK = "127.0.0.1"
_URL = re.compile(r"http://\S+")


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ServerThread(threading.Thread):
    """The server's own event loop, running in a daemon thread until :meth:`stop`."""

    def __init__(self, emulator: Emulator, host: str = LOOPBACK, port: int = 0, limits: Limits | None = None) -> None:
        super().__init__(name="pinpoint-emulator", daemon=True)
        self.emulator = emulator
        self.host = host
        self.port = port
        self.limits = limits
        self.loop = new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            server = self.loop.run_until_complete(start_server(self.emulator, self.host, self.port, self.limits))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.run_until_complete(server.wait_closed())
            self.loop.close()
            self.emulator.store.close()

    def start_serving(self) -> str:
        self.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return url_for(self.host, self.port)

    def stop(self) -> None:
        if self.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.join(timeout=10)


def _cli_args(
    apps: Collection[str] | None,
    store: str | os.PathLike[str] | None,
    settings: Settings,
    access_key: str | None,
    limits: Limits | None,
) -> list[str]:
    args = ["--port", "0", "--seed", str(settings.seed)]
    for app in apps or ():
        args += ["--app", app]
    if store is not None:
        args += ["--store", os.fspath(store)]
    if not settings.validate:
        args.append("--no-validate")
    if settings.rate_limit is not None:
        args += ["--rate-limit", str(settings.rate_limit)]
    for flag, value in (
        ("--error-rate", settings.error_rate),
        ("--latency-ms", settings.latency_ms),
        ("--drop-rate", settings.drop_rate),
        ("--lost-response-rate", settings.lost_response_rate),
        ("--item-error-rate", settings.item_error_rate),
    ):
        if value:
            args += [flag, str(value)]
    if access_key is not None:
        args += ["--access-key", access_key]
    if limits is not None:
        args += [
            "--request-timeout",
            str(limits.request_timeout_s),
            "--idle-timeout",
            str(limits.idle_timeout_s),
            "--max-connections",
            str(limits.max_connections),
            "--max-url-bytes",
            str(limits.max_url_bytes),
            "--max-header-bytes",
            str(limits.max_header_bytes),
        ]
    return args


@contextmanager
def _subprocess_emulator(args: list[str]) -> Iterator[EmulatorClient]:
    process = subprocess_module.Popen(
        [sys.executable, "-m", "airflow_provider_pinpoint.emulator", *args],
        stdout=subprocess_module.PIPE,
        text=True,
    )
    stdout = process.stdout
    assert stdout is not None  # stdout=PIPE
    try:
        line = stdout.readline()
        match = _URL.search(line)
        if match is None:
            raise RuntimeError(f"pinpoint-emulator did not start (exit code {process.wait(timeout=10)})")
        yield EmulatorClient(match.group(0))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess_module.TimeoutExpired:
            process.kill()
            process.wait()
        stdout.close()


@contextmanager
def run_emulator(
    apps: Collection[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    validate: bool = True,
    rate_limit: float | None = None,
    error_rate: float = 0.0,
    latency_ms: float = 0,
    drop_rate: float = 0.0,
    lost_response_rate: float = 0.0,
    item_error_rate: float = 0.0,
    seed: int = 0,
    subprocess: bool = False,
    access_key: str | None = None,
    limits: Limits | None = None,
) -> Iterator[EmulatorClient]:
    """An emulator on a free loopback port for the duration of the ``with`` block.

    ``apps``: the declared application ids (others get 404); None accepts any id. ``store``: a
    SQLite file that keeps the records across restarts; None keeps them in memory. The other
    options are the starting :class:`~airflow_provider_pinpoint.emulator.faults.Settings`, which
    the yielded client can change with ``configure``; ``limits`` bound what a client may hold
    (:class:`~airflow_provider_pinpoint.emulator.server.Limits`, defaults when None).
    """
    settings = Settings().updated(
        validate=validate,
        rate_limit=rate_limit,
        error_rate=error_rate,
        latency_ms=latency_ms,
        drop_rate=drop_rate,
        lost_response_rate=lost_response_rate,
        item_error_rate=item_error_rate,
        seed=seed,
    )
    if subprocess:
        with _subprocess_emulator(_cli_args(apps, store, settings, access_key, limits)) as client:
            yield client
        return
    emulator = Emulator(
        open_store(Path(store) if store is not None else None), settings, apps=apps, access_key=access_key
    )
    thread = ServerThread(emulator, limits=limits)
    url = thread.start_serving()
    try:
        yield EmulatorClient(url)
    finally:
        thread.stop()

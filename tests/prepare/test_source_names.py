"""How inputs are named: the same for every spelling of a path, and never with the password of a URL."""

from __future__ import annotations

import functools
import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.errors import InputError
from tests.helpers.items import APP, emulator_client

pytestmark = pytest.mark.integration

EVENTS = "EndpointId,EventType,Timestamp\n" + "".join(f"ep-{i},view,2026-11-23T10:00:0{i}Z\n" for i in range(4))


def load(events: str, emulator, results: Path) -> dict:
    report = load_events(
        events, application_id=APP, results=str(results), client=emulator_client(emulator.url), progress=False
    )
    return report.summary


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("events.csv", "{here}/events.csv"),
        ("./data//events.csv", "data/events.csv"),
        ("data/../data/events.csv", "file://{here}/data/events.csv"),
        ("data", "{here}/data/"),
        ("data/*.csv", "./data"),
    ],
)
def test_a_rerun_spelling_the_input_differently_sends_nothing_twice(first, second, emulator, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "data" / "events.csv").write_text(EVENTS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results.parquet"
    assert load(first, emulator, results)["accepted"] == 4
    again = load(second.format(here=Path.cwd()), emulator, results)
    assert (again["skipped"], again["requests"]) == (4, 0)
    assert len(emulator.events(APP)) == 4
    assert all(event["receive_count"] == 1 for event in emulator.events(APP))
    assert len(pd.read_parquet(results)) == 4


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on loopback, and its URL with a user and password in it."""
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://reader:{PASSWORD}@127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


PASSWORD = "s3cr3t-in-the-url"


def test_a_password_in_an_input_url_reaches_no_source_name_and_no_log_line(http_files, emulator, caplog):
    directory, base = http_files
    (directory / "events.csv").write_text(EVENTS, encoding="utf-8")
    caplog.set_level(logging.DEBUG)
    load(f"{base}/events.csv", emulator, directory / "results.parquet")
    sources = set(pd.read_parquet(directory / "results.parquet")["source"])
    assert sources == {base.replace(f"reader:{PASSWORD}@", "") + "/events.csv"}
    assert "127.0.0.1" in caplog.text  # fsspec logged the URL, without its userinfo
    assert PASSWORD not in caplog.text


def test_a_password_in_an_input_url_is_not_in_the_error_for_a_missing_file(http_files, emulator, tmp_path):
    _, base = http_files
    with pytest.raises(InputError) as caught:
        load(f"{base}/missing.csv", emulator, tmp_path / "results.parquet")
    assert "missing.csv: no such file or directory" in str(caught.value)
    assert PASSWORD not in str(caught.value)

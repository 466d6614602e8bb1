"""pinpoint-emulator as a process: prints its URL, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from airflow_provider_pinpoint.emulator import EmulatorClient, run_emulator
from airflow_provider_pinpoint.emulator.cli import main
from tests.helpers.wire import APP, event, exchange, pinpoint_client


def test_cli_prints_its_url_serves_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_pinpoint.emulator", "--port", "0", "--app", APP, "--no-validate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        pinpoint_client(url).put_events(
            ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
        )
        assert EmulatorClient(url).config()["apps"] == [APP]
        assert EmulatorClient(url).config()["validate"] is False
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process.stdout.close()
        process.stderr.close()


def test_cli_refuses_a_non_loopback_host_without_allow_remote(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--host", "0.0.0.0", "--port", "0"])
    assert exited.value.code == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_subprocess_mode_yields_a_working_client():
    with run_emulator(subprocess=True, item_error_rate=0.0) as emu:
        pinpoint_client(emu.url).put_events(
            ApplicationId=APP, EventsRequest={"BatchItem": {"ep-1": {"Endpoint": {}, "Events": {"ev-1": event()}}}}
        )
        assert emu.stats()["events_accepted"] == 1


def test_cli_allow_remote_serves_requests_for_any_host():
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_pinpoint.emulator", "--port", "0", "--allow-remote"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline()).group(0)
        status, _ = exchange(url, "GET", "/_emulator/stats", headers={"Host": "emulator.lan:4566"})
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        process.stdout.close()
    assert status == 200


def test_cli_refuses_a_limit_that_is_not_positive(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--port", "0", "--request-timeout", "0"])
    assert exited.value.code == 2
    assert "request_timeout_s must be positive" in capsys.readouterr().err

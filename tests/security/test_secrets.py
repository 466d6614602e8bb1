"""No credential and no address leaves the loader: not in logs (DEBUG, botocore included), exceptions,
the results table, the returned summary (XCom) or the progress output.

Every path is run for real against the emulator, with recognisable fake credentials and a session
token, and with endpoints whose addresses carry unique markers; a 403 comes from an emulator that
only knows another access key. Then every captured text is searched for each marker.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import boto3
import psutil
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_pinpoint import cli
from airflow_provider_pinpoint.emulator import EmulatorClient, run_emulator
from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.hooks.pinpoint import PinpointHook
from airflow_provider_pinpoint.load import load_events
from airflow_provider_pinpoint.operators.pinpoint import PinpointPutEventsOperator
from airflow_provider_pinpoint.sending.client import make_client

ACCESS_KEY = "AKIAFAKEFAKEFAKE1234"
SECRET_KEY = "Sekr1t/LeakMarker+do-not-print/0123456789"
SESSION_TOKEN = "FwoGZXIvYXdzSessionTokenLeakMarker//7c6b5a4d3e2f1a0b"
EMAIL = "leak-marker-4471@example.com"
PHONE = "+15550104471"
REJECTED_EMAIL = "rejected-marker-5582@example.com"
# A gateway or proxy URL may carry userinfo: neither part may appear anywhere.
URL_USER = "gateway-user-7713"
URL_PASSWORD = "UrlPass-7713-secret"
CREDENTIALS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, URL_USER, URL_PASSWORD)
ADDRESSES = (EMAIL, PHONE, REJECTED_EMAIL)
MARKERS = CREDENTIALS + ADDRESSES
APP = "secrets"


def assert_clean(text: str, where: str) -> None:
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} appears in {where}"
    # Credential material can also leak in pieces (e.g. the secret's alphanumeric core in a signature dump).
    assert "LeakMarker" not in text, f"a credential fragment appears in {where}"


def assert_logs_clean(caplog: pytest.LogCaptureFixture) -> None:
    """The captured log really was at DEBUG level, and it is clean."""
    assert any(record.levelno == logging.DEBUG for record in caplog.records), "nothing was logged at DEBUG"
    assert_clean(caplog.text, "DEBUG logs")


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, str]:
    """Three endpoints with marked addresses (one rejected by validation) and their events."""
    endpoints = tmp_path / "endpoints.csv"
    endpoints.write_text(
        "Id,ChannelType,Address,User.UserId\n"
        f"ep-email,EMAIL,{EMAIL},u-1\n"
        f"ep-phone,SMS,{PHONE},u-2\n"
        f"ep-bad,FAX,{REJECTED_EMAIL},u-3\n",
        encoding="utf-8",
    )
    events = tmp_path / "events.csv"
    events.write_text(
        "EndpointId,EventId,EventType,Timestamp\n"
        "ep-email,e1,signup,2026-01-01T00:00:00Z\n"
        "ep-phone,e2,signup,2026-01-01T00:00:00Z\n"
        "ep-phone,e3,,2026-01-01T00:00:00Z\n",
        encoding="utf-8",
    )
    return {"events": str(events), "endpoints": str(endpoints)}


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG through the root logger, botocore's and urllib3's included."""
    caplog.set_level(logging.DEBUG)
    for name in ("botocore", "boto3", "urllib3", "airflow_provider_pinpoint"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    return caplog


@pytest.fixture
def credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def other_key_emulator() -> Iterator[EmulatorClient]:
    """An emulator that answers 403 to every request not signed with another access key."""
    with run_emulator(access_key="AKIAOTHEROTHEROTHER0") as emu:
        yield emu


def _session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        region_name="us-east-1",
    )


def _check_delivered(emulator: EmulatorClient) -> None:
    """The markers did reach the service: the test data is live, not filtered out before sending."""
    endpoints = emulator.endpoints(APP)
    assert endpoints["ep-email"]["Address"] == EMAIL
    assert endpoints["ep-phone"]["Address"] == PHONE


# --- The notebook API -----------------------------------------------------------------------------


def _notebook_run(emulator, tables, tmp_path, capfd) -> dict[str, str]:
    results = tmp_path / "results.csv"
    report = load_events(
        **tables,
        application_id=APP,
        results=str(results),
        session=_session(),
        endpoint_url=emulator.url,
        progress=True,
    )
    _check_delivered(emulator)
    assert report.summary.rejected == 2
    out, err = capfd.readouterr()
    return {
        "stdout/stderr (progress)": out + err,
        "the results table": results.read_text(encoding="utf-8"),
        "LoadReport.results": report.results.to_csv(),
        "the summary": json.dumps(report.summary.to_dict()),
        "repr(LoadReport)": repr(report),
    }


def _notebook_403(url, tables, tmp_path, capfd) -> dict[str, str]:
    with pytest.raises(FatalServiceError) as caught:
        load_events(
            **tables,
            application_id=APP,
            results=str(tmp_path / "results.csv"),
            session=_session(),
            endpoint_url=url,
            progress=True,
        )
    assert "403" in str(caught.value) or "forbidden" in str(caught.value).lower()
    out, err = capfd.readouterr()
    return {
        "the exception and its chain": "".join(traceback.format_exception(caught.value)),
        "repr of the exception": repr(caught.value),
        "stdout/stderr": out + err,
    }


@pytest.mark.integration
def test_load_events_leaks_nothing_into_results_summary_or_progress(emulator, tables, tmp_path, capfd) -> None:
    for where, text in _notebook_run(emulator, tables, tmp_path, capfd).items():
        assert_clean(text, where)


@pytest.mark.integration
def test_load_events_leaks_nothing_into_debug_logs(emulator, tables, tmp_path, debug_logs, capfd) -> None:
    _notebook_run(emulator, tables, tmp_path, capfd)
    assert_logs_clean(debug_logs)


@pytest.mark.integration
def test_a_403_names_no_credential(other_key_emulator, tables, tmp_path, capfd) -> None:
    for where, text in _notebook_403(other_key_emulator.url, tables, tmp_path, capfd).items():
        assert_clean(text, where)


@pytest.mark.integration
def test_a_403_leaks_nothing_into_debug_logs(other_key_emulator, tables, tmp_path, debug_logs, capfd) -> None:
    _notebook_403(other_key_emulator.url, tables, tmp_path, capfd)
    assert_logs_clean(debug_logs)


def _with_password(url: str) -> str:
    return url.replace("://", f"://{URL_USER}:{URL_PASSWORD}@")


@pytest.mark.integration
def test_a_password_in_endpoint_url_reaches_no_log_summary_or_result(
    emulator, tables, tmp_path, debug_logs, capfd
) -> None:
    results = tmp_path / "results.csv"
    report = load_events(
        **tables,
        application_id=APP,
        results=str(results),
        session=_session(),
        endpoint_url=_with_password(emulator.url),
    )
    _check_delivered(emulator)
    out, err = capfd.readouterr()
    assert_clean(json.dumps(report.summary.to_dict()), "the summary")
    assert_clean(results.read_text(encoding="utf-8") + out + err, "the results table and output")
    assert_logs_clean(debug_logs)


@pytest.mark.integration
def test_a_client_whose_endpoint_carries_a_password_leaks_it_into_no_debug_line(
    emulator, tables, tmp_path, debug_logs
) -> None:
    client = _session().client("pinpoint", endpoint_url=_with_password(emulator.url))
    load_events(**tables, application_id=APP, results=str(tmp_path / "results.csv"), client=client)
    _check_delivered(emulator)
    assert_logs_clean(debug_logs)


@pytest.mark.integration
def test_a_password_in_endpoint_url_is_in_no_error_or_log_of_a_403(
    other_key_emulator, tables, tmp_path, debug_logs, capfd
) -> None:
    for where, text in _notebook_403(_with_password(other_key_emulator.url), tables, tmp_path, capfd).items():
        assert_clean(text, where)
    assert_logs_clean(debug_logs)


# --- The CLI --------------------------------------------------------------------------------------


def _cli_args(tables: dict[str, str], url: str, results: Path) -> list[str]:
    return [
        "--application-id",
        APP,
        "--events",
        tables["events"],
        "--endpoints",
        tables["endpoints"],
        "--results",
        str(results),
        "--endpoint-url",
        url,
    ]


@pytest.mark.integration
def test_pinpoint_load_leaks_nothing(emulator, tables, tmp_path, debug_logs, capfd, credentials_in_env) -> None:
    results = tmp_path / "results.csv"
    assert cli.main(_cli_args(tables, emulator.url, results)) == cli.EXIT_OK
    _check_delivered(emulator)
    out, err = capfd.readouterr()
    assert_clean(out + err, "pinpoint-load output")
    assert_clean(results.read_text(encoding="utf-8"), "the results table")
    assert_logs_clean(debug_logs)


@pytest.mark.integration
def test_pinpoint_load_on_a_403_prints_one_clean_line(
    other_key_emulator, tables, tmp_path, debug_logs, capfd, credentials_in_env
) -> None:
    assert cli.main(_cli_args(tables, other_key_emulator.url, tmp_path / "r.csv")) == cli.EXIT_FATAL
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    assert_clean(out + err, "pinpoint-load output")
    assert_logs_clean(debug_logs)


@pytest.mark.integration
def test_a_dry_run_shows_no_address(tables, tmp_path, capfd, credentials_in_env) -> None:
    args = _cli_args(tables, "http://127.0.0.1:9", tmp_path / "r.csv") + ["--dry-run"]
    assert cli.main(args) == cli.EXIT_OK
    out, err = capfd.readouterr()
    assert_clean(out + err, "the dry run's output")


@pytest.mark.integration
def test_an_endpoints_csv_without_a_header_fails_without_showing_its_addresses(
    emulator, tmp_path, capfd, credentials_in_env
) -> None:
    headerless = tmp_path / "endpoints.csv"
    headerless.write_text(f"ep-email,EMAIL,{EMAIL}\nep-phone,SMS,{PHONE}\n", encoding="utf-8")
    args = ["--application-id", APP, "--endpoints", str(headerless), "--results", str(tmp_path / "r.csv")]
    assert cli.main([*args, "--endpoint-url", emulator.url]) == cli.EXIT_FATAL
    out, err = capfd.readouterr()
    assert "endpoints.csv" in err
    assert_clean(out + err, "pinpoint-load's error")


@pytest.mark.integration
def test_pinpoint_load_in_its_own_process_at_debug_level_leaks_nothing(emulator, tables, tmp_path) -> None:
    """The real process, root logger at DEBUG before the CLI starts (as a wrapper script would do)."""
    results = tmp_path / "results.csv"
    script = (
        "import logging, sys; logging.basicConfig(level=logging.DEBUG); "
        "from airflow_provider_pinpoint.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    run = subprocess.run(
        [sys.executable, "-c", script, *_cli_args(tables, emulator.url, results)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    _check_delivered(emulator)
    assert "DEBUG" in run.stderr  # the logging really was at debug level
    assert_clean(run.stdout + run.stderr, "the process's output")
    assert_clean(results.read_text(encoding="utf-8"), "the results table")


# --- The operator ---------------------------------------------------------------------------------


def _operator_context() -> dict:
    return {"run_id": "manual__secrets", "outlet_events": OutletEventAccessors()}


def _operator(monkeypatch: pytest.MonkeyPatch, url: str, tables: dict[str, str], results: Path):
    connection = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {"aws_session_token": SESSION_TOKEN, "endpoint_url": url, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PINPOINT_SECRETS", json.dumps(connection))
    return PinpointPutEventsOperator(
        task_id="put_events", aws_conn_id="pinpoint_secrets", application_id=APP, results=str(results), **tables
    )


def _operator_run(monkeypatch, url, tables, tmp_path, capfd, emulator) -> dict[str, str]:
    results = tmp_path / "results.csv"
    summary = _operator(monkeypatch, url, tables, results).execute(_operator_context())
    _check_delivered(emulator)
    out, err = capfd.readouterr()
    return {
        "the XCom summary": json.dumps(summary),
        "the results table": results.read_text(encoding="utf-8"),
        "stdout/stderr": out + err,
    }


@pytest.mark.airflow
@pytest.mark.integration
def test_the_operator_leaks_nothing_into_results_or_xcom(emulator, tables, tmp_path, capfd, monkeypatch) -> None:
    for where, text in _operator_run(monkeypatch, emulator.url, tables, tmp_path, capfd, emulator).items():
        assert_clean(text, where)


@pytest.mark.airflow
@pytest.mark.integration
def test_the_operator_leaks_nothing_into_debug_logs(emulator, tables, tmp_path, debug_logs, capfd, monkeypatch) -> None:
    _operator_run(monkeypatch, emulator.url, tables, tmp_path, capfd, emulator)
    assert_logs_clean(debug_logs)


def _operator_403(monkeypatch, url, tables, tmp_path, capfd) -> dict[str, str]:
    op = _operator(monkeypatch, url, tables, tmp_path / "results.csv")
    with pytest.raises(AirflowFailException) as caught:
        op.execute(_operator_context())
    out, err = capfd.readouterr()
    return {
        "the task's exception and its chain": "".join(traceback.format_exception(caught.value)),
        "stdout/stderr": out + err,
    }


@pytest.mark.airflow
@pytest.mark.integration
def test_the_operator_with_a_password_in_the_connections_endpoint_url_leaks_it_nowhere(
    emulator, tables, tmp_path, debug_logs, capfd, monkeypatch
) -> None:
    url = _with_password(emulator.url)
    for where, text in _operator_run(monkeypatch, url, tables, tmp_path, capfd, emulator).items():
        assert_clean(text, where)
    assert_logs_clean(debug_logs)


@pytest.mark.airflow
@pytest.mark.integration
def test_the_operator_on_a_403_fails_without_naming_a_credential(
    other_key_emulator, tables, tmp_path, capfd, monkeypatch
) -> None:
    for where, text in _operator_403(monkeypatch, other_key_emulator.url, tables, tmp_path, capfd).items():
        assert_clean(text, where)


@pytest.mark.airflow
@pytest.mark.integration
def test_the_operator_on_a_403_leaks_nothing_into_debug_logs(
    other_key_emulator, tables, tmp_path, debug_logs, capfd, monkeypatch
) -> None:
    _operator_403(monkeypatch, other_key_emulator.url, tables, tmp_path, capfd)
    assert_logs_clean(debug_logs)


# --- Network defaults -----------------------------------------------------------------------------


def test_clients_the_loader_creates_verify_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    client = make_client(None, _session(), "https://pinpoint.example.invalid", "us-east-1", 8)
    assert client._endpoint.http_session._verify is True


@pytest.mark.airflow
def test_the_hooks_client_verifies_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    connection = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {"region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PINPOINT_TLS", json.dumps(connection))
    client = PinpointHook(aws_conn_id="pinpoint_tls").conn
    assert client._endpoint.http_session._verify is True


def test_no_code_turns_tls_verification_off() -> None:
    package = Path(__file__).resolve().parents[2] / "airflow_provider_pinpoint"
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("verify=False", '"verify": False', "CERT_NONE", "check_hostname = False"):
            assert needle not in text, f"{path.name} contains {needle}"


def test_the_emulator_serves_loopback_by_default() -> None:
    with run_emulator() as emu:
        assert emu.url.startswith("http://127.0.0.1:")


def test_pinpoint_emulator_listens_on_loopback_only() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_pinpoint.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert "127.0.0.1" in process.stdout.readline()
        listening = [c.laddr.ip for c in psutil.Process(process.pid).net_connections("inet") if c.status == "LISTEN"]
        assert listening == ["127.0.0.1"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_pinpoint_emulator_refuses_a_public_address_unless_told() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "airflow_provider_pinpoint.emulator", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "--allow-remote" in run.stderr

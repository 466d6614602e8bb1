"""pinpoint-load against the emulator: flags, output, exit codes, and resume after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.cli import main
from airflow_provider_pinpoint.results.store import ResultsStore
from tests.helpers.items import APP, emulator_client

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
EVENTS = SAMPLE / "events.parquet"
ENDPOINTS = SAMPLE / "endpoints.parquet"
INPUT_ROWS = len(pd.read_parquet(EVENTS)) + len(pd.read_parquet(ENDPOINTS))
FLAGS = (
    "--application-id",
    "--events",
    "--endpoints",
    "--results",
    "--sink",
    "--stream-name",
    "--delivery-stream",
    "--endpoint-url",
    "--region",
    "--requests-per-second",
    "--records-per-second",
    "--bytes-per-second",
    "--max-in-flight",
    "--column-mapping",
    "--max-reject-ratio",
    "--resume",
    "--dry-run",
    "--profile",
    "--limit",
    "--output",
    "--version",
    "pinpoint-load summarize RESULTS",
)
# Columns that describe the outcome, not the particular run.
OUTCOME = ["record_type", "endpoint_id", "event_id", "source", "source_row", "status", "status_code", "message"]


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def args(emulator, results, *extra):
    return [
        "--application-id",
        APP,
        "--events",
        str(EVENTS),
        "--endpoints",
        str(ENDPOINTS),
        "--results",
        str(results),
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--requests-per-second",
        "500",
        "--no-progress",
        *extra,
    ]


def test_help_explains_every_flag_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in text
    for code in ("0  the run completed", "1  fatal error", "2  usage error", "3  more rows were rejected"):
        assert code in text


def test_a_run_prints_the_summary_and_writes_the_same_table_as_the_notebook_api(emulator, tmp_path, capsys):
    assert main(args(emulator, tmp_path / "cli.parquet")) == 0
    out = capsys.readouterr().out
    for label in ("accepted", "rejected", "failed", "requests", "retries", "duration", "events/s", "results"):
        assert label in out
    assert str(tmp_path / "cli.parquet") in out
    cli = pd.read_parquet(tmp_path / "cli.parquet")

    emulator.reset()
    report = load_events(
        str(EVENTS),
        str(ENDPOINTS),
        application_id=APP,
        results=str(tmp_path / "api.parquet"),
        client=emulator_client(emulator.url),
        progress=False,
    )
    assert len(cli) == INPUT_ROWS
    key = ["record_type", "source", "source_row"]
    pd.testing.assert_frame_equal(
        cli[OUTCOME].sort_values(key, ignore_index=True), report.results[OUTCOME].sort_values(key, ignore_index=True)
    )


def test_dry_run_prints_counts_rejects_and_the_first_request_and_sends_nothing(emulator, tmp_path, capsys):
    assert main(args(emulator, tmp_path / "results.parquet", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert f"{INPUT_ROWS:,} rows read" in out and "nothing sent" in out
    assert "rejected rows" in out and "row 5" in out
    request = json.loads(out[out.index("first request") :].split("\n", 1)[1])
    addresses = {entry["Endpoint"].get("Address") for entry in request["BatchItem"].values()} - {None}
    assert addresses == {"<address hidden>"}
    assert emulator.stats()["requests"] == 0
    assert list(tmp_path.iterdir()) == []


def test_a_run_gives_the_callers_signal_handlers_back(emulator, tmp_path, capsys):
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    assert main(args(emulator, tmp_path / "results.parquet", "--dry-run")) == 0
    assert {signum: signal.getsignal(signum) for signum in before} == before


@pytest.mark.parametrize(
    "argv",
    [
        ["--application-id", APP, "--events", str(EVENTS)],
        ["--application-id", APP, "--results", "r.parquet"],
        ["--application-id", APP, "--events", str(EVENTS), "--results", "r.json"],
        ["--application-id", APP, "--events", str(EVENTS), "--results", "r.parquet", "--column-mapping", "{oops"],
        ["--application-id", APP, "--events", str(EVENTS), "--results", "r.parquet", "--max-reject-ratio", "2"],
    ],
    ids=["no results", "no input", "results format", "bad mapping", "bad ratio"],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_results_on_storage_whose_backend_is_missing_exit_2_with_one_line(monkeypatch, capsys):
    from fsspec.registry import known_implementations

    monkeypatch.setitem(
        known_implementations,
        "nobackend",
        {"class": "pinpoint_no_such_module.FileSystem", "err": "Install nobackendfs to access it"},
    )
    with pytest.raises(SystemExit) as caught:
        main(["--application-id", APP, "--events", str(EVENTS), "--results", "nobackend://bucket/r.parquet"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "nobackend://bucket/r.parquet: cannot open nobackend:// here" in err and "Traceback" not in err


def test_existing_results_need_resume(emulator, tmp_path, capsys):
    assert main(args(emulator, tmp_path / "results.parquet")) == 0
    with pytest.raises(SystemExit) as caught:
        main(args(emulator, tmp_path / "results.parquet"))
    assert caught.value.code == 2
    assert "--resume" in capsys.readouterr().err
    assert main(args(emulator, tmp_path / "results.parquet", "--resume")) == 0


def test_unreadable_input_exits_1_with_one_line(emulator, tmp_path, capsys):
    broken = tmp_path / "events.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    argv = args(emulator, tmp_path / "results.parquet")
    argv[argv.index(str(EVENTS))] = str(broken)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "events.parquet" in err[0] and "Traceback" not in err[0]
    assert emulator.stats()["requests"] == 0


def test_an_input_repeating_its_own_bookkeeping_pair_exits_1_with_one_line_before_sending(emulator, tmp_path, capsys):
    # pandas writes text as large_string: the check of the pair must read that too.
    colliding = tmp_path / "events.parquet"
    pd.DataFrame(
        {
            "EndpointId": ["e1", "e2", "e3", "e4"],
            "EventType": ["x"] * 4,
            "Timestamp": ["2026-01-01T00:00:00Z"] * 4,
            "_source": ["events.parquet"] * 4,
            "_source_row": [1, 1, 2, 2],
        }
    ).to_parquet(colliding)
    argv = args(emulator, tmp_path / "results.parquet")
    argv[argv.index(str(EVENTS))] = str(colliding)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data row 2 repeats the _source and _source_row of an earlier row" in err[0]
    assert emulator.stats()["requests"] == 0


def test_unknown_application_exits_1_with_one_line_and_no_traceback(tmp_path):
    from airflow_provider_pinpoint.emulator import run_emulator

    with run_emulator(apps=["another-app"]) as emu:
        done = subprocess.run(
            [sys.executable, "-m", "airflow_provider_pinpoint.cli", *args(emu, tmp_path / "results.parquet")],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("pinpoint-load:")]
    assert len(lines) == 1 and "HTTP 404" in lines[0]
    assert "Traceback" not in done.stderr


def test_reject_ratio_exceeded_exits_3_after_sending_the_good_rows(emulator, tmp_path, capsys):
    assert main(args(emulator, tmp_path / "results.parquet", "--max-reject-ratio", "0.001")) == 3
    assert "max_reject_ratio" in capsys.readouterr().err
    frame = pd.read_parquet(tmp_path / "results.parquet")
    assert len(frame) == INPUT_ROWS and (frame["status"] == "accepted").sum() > 0


def test_resume_after_sigkill_delivers_everything_with_duplicates_bounded_by_the_in_flight_requests(emulator, tmp_path):
    max_in_flight = 2
    results = tmp_path / "results.parquet"
    emulator.configure(rate_limit=4)
    argv = args(emulator, results, "--max-in-flight", str(max_in_flight))
    argv[argv.index("--requests-per-second") + 1] = "4"
    env = os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    run = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_pinpoint.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while emulator.stats()["requests"] < 8 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
        assert run.poll() is None, "the run ended before the kill"
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
    finally:
        if run.poll() is None:
            run.kill()
    arrived_before = sum(e["receive_count"] for e in emulator.events(APP))
    recorded_before = sum(len(rows) for rows in ResultsStore(results).done_rows().values())
    assert 0 < arrived_before and 0 < recorded_before < INPUT_ROWS

    emulator.configure(rate_limit=None)
    assert main(args(emulator, results, "--resume", "--max-in-flight", str(max_in_flight))) == 0

    frame = pd.read_parquet(results)
    assert len(frame) == INPUT_ROWS
    assert not frame.duplicated(["record_type", "source", "source_row"]).any()
    assert set(frame["status"]) == {"accepted", "rejected"}
    accepted = frame[(frame["status"] == "accepted") & (frame["record_type"] == "event")]
    events = emulator.events(APP)
    assert {(e["endpoint_id"], e["event_id"]) for e in events} == set(
        zip(accepted["endpoint_id"], accepted["event_id"], strict=True)
    )
    duplicates = sum(e["receive_count"] - 1 for e in events)
    print(f"arrived before the kill: {arrived_before}, recorded: {recorded_before}, duplicates: {duplicates}")
    assert duplicates <= max_in_flight * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.parquet"]


def run_cli(*argv, env=None):
    """The CLI in its own process, as a shell runs it: stdout and stderr apart."""
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_pinpoint.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or (os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}),
    )


def test_version_names_the_package_python_and_the_libraries(capsys):
    from airflow_provider_pinpoint import __version__

    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    words = capsys.readouterr().out.split()
    assert words[0] == f"pinpoint-load/{__version__}" and words[1].startswith("Python/3.")
    assert {word.split("/")[0] for word in words[2:]} == {"boto3", "pyarrow"}


def test_output_json_puts_one_object_on_stdout_and_readable_lines_on_stderr(emulator, tmp_path):
    done = run_cli(*args(emulator, tmp_path / "results.parquet", "--output", "json"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert done.stdout.count("\n") == 1
    assert summary["input_rows"] == INPUT_ROWS and summary["results"] == str(tmp_path / "results.parquet")
    assert summary["accepted"] + summary["rejected"] + summary["failed"] == INPUT_ROWS
    # Logs are lines for people: no dict or other Python repr.
    assert "done: run_id=" in done.stderr and "stopped=false" in done.stderr
    assert "{'" not in done.stderr and "None" not in done.stderr and "False" not in done.stderr


def test_text_output_has_no_python_reprs(emulator, tmp_path):
    done = run_cli(*args(emulator, tmp_path / "results.parquet"))
    assert done.returncode == 0, done.stderr
    for text in (done.stdout, done.stderr):
        assert "{'" not in text and "None" not in text and "False" not in text


def test_dry_run_needs_no_results_and_prints_json_with_progress_on_stderr(emulator, tmp_path):
    argv = args(emulator, tmp_path / "unused.parquet", "--dry-run", "--output", "json")
    at = argv.index("--results")
    del argv[at : at + 2]
    argv.remove("--no-progress")
    done = run_cli(*argv)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["dry_run"] is True and summary["input_rows"] == INPUT_ROWS
    assert summary["rejected"] == len(summary["first_rejections"]) > 0
    addresses = {entry["Endpoint"].get("Address") for entry in summary["first_request"]["BatchItem"].values()}
    assert addresses - {None} == {"<address hidden>"}
    # Not a terminal: the progress is a log line, with the rows checked.
    assert f"{INPUT_ROWS:,} rows checked: {summary['valid_rows']:,} valid" in done.stderr
    assert emulator.stats()["requests"] == 0 and list(tmp_path.iterdir()) == []


def test_a_load_without_results_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--application-id", APP, "--events", str(EVENTS)])
    assert caught.value.code == 2
    assert "only --dry-run can do without" in capsys.readouterr().err


def test_progress_reports_writing_the_results_table(emulator, tmp_path):
    argv = args(emulator, tmp_path / "results.parquet")
    argv.remove("--no-progress")
    done = run_cli(*argv)
    assert done.returncode == 0, done.stderr
    assert "rows/s" in done.stderr
    assert "writing the results table ..." in done.stderr and "writing the results table: done in" in done.stderr


def test_profile_picks_the_credentials_of_a_named_profile(emulator, tmp_path, monkeypatch):
    (tmp_path / "credentials").write_text("[loader]\naws_access_key_id = profilekey\naws_secret_access_key = secret\n")
    (tmp_path / "config").write_text("[profile loader]\nregion = us-east-1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    argv = args(emulator, tmp_path / "results.parquet")
    at = argv.index("--region")
    del argv[at : at + 2]  # the profile's region
    without = run_cli(*argv, env=env)
    assert without.returncode == 1 and emulator.stats()["requests"] == 0

    done = run_cli(*argv, "--profile", "loader", env=env)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == INPUT_ROWS

    unknown = run_cli(*argv, "--profile", "nobody", "--resume", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "pinpoint-load: the profile nobody is not in the AWS configuration (the profiles configured are loader); "
        "check --profile"
    ]
    from_env = run_cli(*argv, "--resume", env=env | {"AWS_PROFILE": "nobody"})
    assert from_env.returncode == 1 and "Traceback" not in from_env.stderr
    assert from_env.stderr.strip().splitlines()[-1].endswith("check AWS_PROFILE")


def test_limit_loads_the_first_rows_of_each_table_and_a_later_run_resumes_with_the_rest(emulator, tmp_path, capsys):
    # CSV events (read as text) and Parquet endpoints, under their own file names and row numbers.
    results = tmp_path / "results.parquet"
    argv = args(emulator, results)
    argv[argv.index(str(EVENTS))] = str(SAMPLE / "events.csv")
    assert main([*argv, "--limit", "30", "--output", "json"]) == 0
    trial = json.loads(capsys.readouterr().out)
    assert trial["input_rows"] == 60
    frame = pd.read_parquet(results)
    for record_type, source in (("event", "events.csv"), ("endpoint", "endpoints.parquet")):
        rows = frame[frame["record_type"] == record_type]
        assert set(rows["source"].map(lambda s: Path(s).name)) == {source}
        assert sorted(rows["source_row"]) == list(range(1, 31))
    assert emulator.stats()["requests"] > 0

    assert main([*argv, "--resume", "--output", "json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["skipped"] == trial["accepted"] + trial["rejected"] and full["input_rows"] == INPUT_ROWS
    frame = pd.read_parquet(results)
    assert len(frame) == INPUT_ROWS and not frame.duplicated(["record_type", "source", "source_row"]).any()
    assert all(e["receive_count"] == 1 for e in emulator.events(APP))


def test_summarize_counts_reasons_time_span_and_runs(emulator, tmp_path, capsys):
    results = tmp_path / "results.csv"
    assert main(args(emulator, results, "--limit", "30")) == 0
    assert main(args(emulator, results, "--resume")) == 0
    capsys.readouterr()
    frame = pd.read_csv(results)

    assert main(["summarize", str(results), "--output", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == INPUT_ROWS == sum(n for counts in summary["counts"].values() for n in counts.values())
    assert (
        summary["counts"]["event"]["rejected"]
        == ((frame["record_type"] == "event") & (frame["status"] == "rejected")).sum()
    )
    assert [run["rows"] for run in summary["runs"]] == [60, INPUT_ROWS - 60]
    assert summary["first_sent_at"] < summary["last_sent_at"]
    reasons = [reason["reason"] for reason in summary["top_reasons"]]
    assert "EventType is empty; Pinpoint requires it for every event" in reasons
    assert len(reasons) == min(10, (frame["status"] != "accepted").sum())

    assert main(["summarize", str(results)]) == 0
    text = capsys.readouterr().out
    assert f"{INPUT_ROWS:,} rows" in text and "most common reasons" in text and "runs (2)" in text
    assert "{'" not in text


def test_summarize_of_a_missing_or_broken_table_exits_1_with_one_line(tmp_path, capsys):
    results = tmp_path / "results.parquet"
    assert main(["summarize", str(results)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pinpoint-load: no results table at {results}"]
    results.write_bytes(b"PAR1 this is not parquet")
    assert main(["summarize", str(results)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{results} exists but is not a results table" in err[0]


def test_main_leaves_pandas_importable_for_whoever_called_it(emulator, tmp_path):
    # In a fresh interpreter: main() hides pandas from pyarrow while it runs, and must not for good.
    script = (
        "import sys; from airflow_provider_pinpoint.cli import main; "
        f"code = main({args(emulator, tmp_path / 'results.parquet')!r}); "
        "import pandas; sys.exit(code)"
    )
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("rate", ["nan", "inf", "0", "-1"])
def test_a_rate_that_is_no_positive_number_is_a_usage_error(emulator, tmp_path, rate):
    with pytest.raises(SystemExit) as caught:
        main([*args(emulator, tmp_path / "results.parquet"), "--requests-per-second", rate])
    assert caught.value.code == 2

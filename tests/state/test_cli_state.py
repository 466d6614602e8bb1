"""pinpoint-load with --state, and pinpoint-load state show, as a shell user runs them (in-process main())."""

from __future__ import annotations

import json

import pytest

from airflow_provider_pinpoint.cli import main
from tests.state.tables import APP, endpoints, events, write

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def argv(emulator, tmp_path, name: str, *extra: str) -> list[str]:
    return [
        "--application-id",
        APP,
        "--events",
        write(events(20, 3), tmp_path / "in" / "events.parquet"),
        "--endpoints",
        write(endpoints(20), tmp_path / "in" / "endpoints.parquet"),
        "--results",
        str(tmp_path / f"{name}.parquet"),
        "--endpoint-url",
        emulator.url,
        "--region",
        "us-east-1",
        "--state",
        str(tmp_path / "state"),
        "--no-progress",
        *extra,
    ]


def test_a_second_cli_run_says_what_was_unchanged_and_sends_nothing(emulator, tmp_path, capsys):
    assert main(argv(emulator, tmp_path, "day1")) == 0
    capsys.readouterr()
    requests = emulator.stats()["requests"]
    assert main(argv(emulator, tmp_path, "day2", "--output", "json")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["unchanged"], summary["already_sent"], summary["accepted"]) == (20, 60, 0)
    assert emulator.stats()["requests"] == requests
    assert main(argv(emulator, tmp_path, "day3")) == 0
    text = capsys.readouterr().out
    assert "unchanged (endpoints)  20" in text and "already sent (events)  60" in text


def test_full_refresh_sends_everything_again(emulator, tmp_path, capsys):
    assert main(argv(emulator, tmp_path, "day1")) == 0
    assert main(argv(emulator, tmp_path, "day2", "--full-refresh", "--output", "json")) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (summary["accepted"], summary["unchanged"]) == (80, 0)


def test_summarize_counts_unchanged_and_already_sent_rows(emulator, tmp_path, capsys):
    main(argv(emulator, tmp_path, "day1"))
    main(argv(emulator, tmp_path, "day2"))
    capsys.readouterr()
    assert main(["summarize", str(tmp_path / "day2.parquet"), "--output", "json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts == {"endpoint": {"unchanged": 20}, "event": {"already_sent": 60}}


def test_state_show_prints_what_the_state_holds(emulator, tmp_path, capsys):
    main(argv(emulator, tmp_path, "day1"))
    capsys.readouterr()
    assert main(["state", "show", str(tmp_path / "state"), "--output", "json"]) == 0
    [held] = json.loads(capsys.readouterr().out)["destinations"]
    assert (held["sink"], held["application_id"], held["endpoints"], held["events"]) == ("pinpoint", APP, 20, 60)
    assert held["files"] == ["endpoints/main.parquet", "events/main.parquet"] and held["bytes"] > 0
    assert main(["state", "show", str(tmp_path / "state")]) == 0
    text = capsys.readouterr().out
    assert f"pinpoint / {APP}:" in text and "endpoints      20" in text


def test_state_show_of_an_empty_location_says_so(tmp_path, capsys):
    assert main(["state", "show", str(tmp_path / "nothing")]) == 0
    assert "empty (no run has written it yet)" in capsys.readouterr().out


@pytest.mark.parametrize("flag", [["--full-refresh"], ["--state-retention-days", "3"], ["--state-part", "a"]])
def test_state_flags_without_state_are_a_usage_error(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--application-id", APP, "--endpoints", "x.parquet", "--results", str(tmp_path / "r.parquet"), *flag])
    assert exit_.value.code == 2
    assert "go with --state" in capsys.readouterr().err


def test_a_state_part_that_is_no_file_name_is_one_line(emulator, tmp_path, capsys):
    assert main(argv(emulator, tmp_path, "day1", "--state-part", "../x")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("pinpoint-load: state_part must be letters, digits") and "\n" not in err

"""The bad-input corpus (tests/data/bad/) through the real path: prepare, load_events, pinpoint-load.

For every case: a file that cannot be read fails with one line naming it and nothing is sent; in
every other file, exactly the bad rows are rejected with a message naming the row, the column and
the rule, and every good row reaches the emulator as it should look on the wire.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from airflow_provider_pinpoint import cli
from airflow_provider_pinpoint.errors import InputError
from airflow_provider_pinpoint.load import load_events
from airflow_provider_pinpoint.prepare import flow
from airflow_provider_pinpoint.prepare.requests import ENDPOINT, EVENT, Request
from airflow_provider_pinpoint.prepare.validation import source_label
from tests.data.bad import make_bad_inputs

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
APP = "bad-input"


def _params(kind: str) -> list:
    chosen = [case for case in CASES if ("fatal" in case["expect"]) == (kind == "fatal")]
    return [
        pytest.param(
            case,
            id=case["name"],
            marks=[pytest.mark.xfail(strict=True, reason=case["known_bug"])] if "known_bug" in case else [],
        )
        for case in chosen
    ]


def _inputs(case: dict) -> dict:
    return {kind: str(CORPUS / case[kind]) for kind in ("events", "endpoints") if kind in case}


def _contains_all(text: str, substrings: list[str]) -> None:
    for substring in substrings:
        assert substring.casefold() in text.casefold(), f"{substring!r} not in {text!r}"


def _matches(actual: dict, expected: dict, where: str) -> None:
    """``expected`` is a subset of ``actual``; a None value means the key must be absent."""
    for key, value in expected.items():
        if value is None:
            assert key not in actual, f"{where}: {key} should be absent, is {actual[key]!r}"
        else:
            assert actual.get(key) == value, f"{where}: {key} is {actual.get(key)!r}, expected {value!r}"


def _check_rejections(case: dict, rejected: dict[str, str]) -> None:
    expected = case["expect"]["rejected"]
    assert sorted(rejected) == sorted(expected)
    for label, substrings in expected.items():
        message = rejected[label]
        assert "\n" not in message
        _contains_all(message, [label, *substrings])


def _check_sent(case: dict, events: dict[str, dict], endpoints: dict[str, dict]) -> None:
    for key, subset in case["expect"].get("sent_events", {}).items():
        assert key in events, f"event {key} was not sent; sent: {sorted(events)}"
        _matches(events[key], subset, key)
    for endpoint_id, subset in case["expect"].get("sent_endpoints", {}).items():
        _matches(endpoints[endpoint_id], subset, endpoint_id)


def test_the_corpus_covers_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({case["name"] for case in CASES}) == len(CASES)


def test_the_committed_corpus_is_what_the_script_writes(tmp_path: Path) -> None:
    make_bad_inputs.write(tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in CORPUS.iterdir() if p.is_file() and p.suffix != ".py")
    assert written == committed
    for name in written:
        assert (tmp_path / name).read_bytes() == (CORPUS / name).read_bytes(), name


# --- Through flow.prepare: no sending -------------------------------------------------------


@pytest.mark.parametrize("case", _params("fatal"))
def test_prepare_refuses_an_unreadable_input_in_one_line_naming_the_file(case: dict) -> None:
    with pytest.raises(InputError) as caught:
        list(flow.prepare(**_inputs(case), column_mapping=case.get("column_mapping")))
    message = str(caught.value)
    assert "\n" not in message
    _contains_all(message, case["expect"]["fatal"])


@pytest.mark.parametrize("case", _params("rows"))
def test_prepare_rejects_exactly_the_bad_rows_and_keeps_the_good_ones(case: dict) -> None:
    rejected: dict[str, str] = {}
    items = []
    for out in flow.prepare(**_inputs(case), column_mapping=case.get("column_mapping")):
        if isinstance(out, Request):
            items.extend(out.items)
        else:
            for rejection in out:
                label = f"{source_label(rejection.source)} row {rejection.source_row}"
                assert label not in rejected, f"{label} rejected twice"
                rejected[label] = rejection.message
    _check_rejections(case, rejected)
    assert len(items) == case["expect"]["accepted_rows"]
    events = {f"{i.endpoint_id}/{i.event_id}": json.loads(i.body) for i in items if i.record_type == EVENT}
    endpoints = {i.endpoint_id: json.loads(i.body) for i in items if i.record_type == ENDPOINT}
    _check_sent(case, events, endpoints)


# --- End to end against the emulator ------------------------------------------------------------


@pytest.fixture
def session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


@pytest.mark.integration
@pytest.mark.parametrize("case", _params("rows"))
def test_load_events_sends_the_good_rows_and_records_each_bad_one(case, emulator, session, tmp_path) -> None:
    results = tmp_path / "results.parquet"
    report = load_events(
        **_inputs(case),
        application_id=APP,
        results=str(results),
        session=session,
        endpoint_url=emulator.url,
        column_mapping=case.get("column_mapping"),
        progress=False,
    )
    table = pq.read_table(results).to_pylist()
    rejected = {
        f"{source_label(row['source'])} row {row['source_row']}": row["message"]
        for row in table
        if row["status"] == "rejected"
    }
    _check_rejections(case, rejected)
    accepted = [row for row in table if row["status"] == "accepted"]
    assert len(accepted) == case["expect"]["accepted_rows"], [r for r in table if r["status"] == "failed"]
    assert report.summary["accepted"] == len(accepted)
    assert report.summary["failed"] == 0
    assert len(table) == len(accepted) + len(rejected)

    recorded = emulator.events(APP)
    events = {f"{e['endpoint_id']}/{e['event_id']}": e["event"] for e in recorded}
    assert len(events) == sum(row["record_type"] == "event" for row in accepted)
    assert all(e["receive_count"] == 1 for e in recorded)
    _check_sent(case, events, emulator.endpoints(APP))


def _error_lines(stderr: str) -> list[str]:
    """The CLI's error lines (log lines may precede them on stderr)."""
    return [line for line in stderr.splitlines() if line.startswith("pinpoint-load:")]


@pytest.mark.integration
@pytest.mark.parametrize("case", _params("fatal"))
def test_pinpoint_load_exits_1_with_one_line_and_sends_nothing(case, emulator, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    argv = ["--application-id", APP, "--results", str(tmp_path / "results.parquet"), "--endpoint-url", emulator.url]
    argv += ["--region", "us-east-1", "--no-progress"]
    for kind, path in _inputs(case).items():
        argv += [f"--{kind}", path]
    if "column_mapping" in case:
        argv += ["--column-mapping", json.dumps(case["column_mapping"])]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == cli.EXIT_FATAL
    errors = _error_lines(err)
    assert len(errors) == 1, err
    assert "Traceback" not in err
    _contains_all(errors[0], case["expect"]["fatal"])
    assert emulator.stats()["requests"] == 0


@pytest.mark.integration
def test_the_pinpoint_load_command_fails_on_a_corrupt_file_without_a_traceback(emulator, tmp_path) -> None:
    """The installed console script, in its own process: exit code 1, one line on stderr."""
    command = Path(sys.executable).with_name("pinpoint-load")
    run = subprocess.run(
        [
            str(command),
            "--application-id",
            APP,
            "--events",
            str(CORPUS / "parquet_truncated.parquet"),
            "--results",
            str(tmp_path / "results.parquet"),
            "--endpoint-url",
            emulator.url,
            "--region",
            "us-east-1",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PATH": ""},
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = _error_lines(run.stderr)
    assert len(errors) == 1, run.stderr
    assert "parquet_truncated.parquet" in errors[0]
    assert emulator.stats()["requests"] == 0

"""A results location that stops taking writes: one line naming the first error, nothing lost, a resume completes."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_pinpoint import load_events
from airflow_provider_pinpoint.cli import main
from airflow_provider_pinpoint.results.rows import ACCEPTED
from airflow_provider_pinpoint.results.store import ResultsStore, ResultsWriteError
from tests.helpers.items import APP, emulator_client
from tests.results.full_disk import full_disk
from tests.results.test_journal import events_file

ROWS = 3_000
# Room for the first few answers' journal records, not for the rest of the run.
SPACE = 40_000


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_a_full_disk_stops_the_run_naming_the_error_and_a_resume_after_freeing_space_completes(emulator, tmp_path):
    source = events_file(tmp_path, ROWS)
    location = f"fullfs://{tmp_path}/out/results.parquet"
    options = {"application_id": APP, "results": location, "client": emulator_client(emulator.url)}
    with full_disk() as disk:
        disk.space = SPACE
        with pytest.raises(ResultsWriteError) as caught:
            load_events(source, requests_per_second=1_000, **options)
        message = str(caught.value)
        assert "No space left on device" in message and "\n" not in message
        kept = sum(len(rows) for rows in ResultsStore(location).done_rows().values())
        assert 0 < kept < ROWS  # the journal written before the disk filled is kept

        disk.space = None
        report = load_events(source, **options)
    assert report.summary["skipped"] == kept
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(table) == ROWS and set(table["status"]) == {ACCEPTED}
    assert {e["event_id"] for e in emulator.events(APP)} == set(table["event_id"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.parquet"]


def test_the_cli_says_the_write_error_in_one_line_and_exits_1(emulator, tmp_path, capsys):
    source = events_file(tmp_path, ROWS)
    argv = ["--application-id", APP, "--events", str(source), "--endpoint-url", emulator.url, "--region", "us-east-1"]
    with full_disk() as disk:
        disk.space = SPACE
        code = main([*argv, "--results", f"fullfs://{tmp_path}/results.parquet", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    [line] = [line for line in err.splitlines() if line.startswith("pinpoint-load:")]
    assert "No space left on device" in line and "Traceback" not in err


def test_a_table_that_cannot_be_written_keeps_the_journals_for_the_next_try(tmp_path):
    from tests.results.test_formats import rows

    location = f"fullfs://{tmp_path}/results.parquet"
    with full_disk() as disk:
        store = ResultsStore(location)
        writer = store.writer("run-1")
        writer.add(rows(1_000).to_batches()[0])
        writer.close()
        disk.space = disk.used  # full: the journal fits, the table does not
        with pytest.raises(ResultsWriteError, match="No space left on device") as caught:
            store.compact()
        assert "\n" not in str(caught.value)
        assert [p.name for p in tmp_path.iterdir()] == [".results.parquet.staging"]  # no half-written table
        disk.space = None
        assert ResultsStore(location).compact() == {"accepted": 666, "rejected": 334}
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 1_000


@pytest.mark.parametrize(
    ("error", "secret"),
    [
        ("EndpointConnectionError", "10.20.30.40"),
        ("ProxyConnectionError", "pw@proxy.corp"),
        ("OSError", "minio.internal:9000"),
    ],
)
def test_a_write_error_says_no_address_or_password_the_object_store_client_put_in_it(error, secret):
    import botocore.exceptions

    raised = {
        "EndpointConnectionError": botocore.exceptions.EndpointConnectionError(
            endpoint_url="http://10.20.30.40:9000/bucket/.results.parquet.staging/x.arrows"
        ),
        "ProxyConnectionError": botocore.exceptions.ProxyConnectionError(proxy_url="http://user:pw@proxy.corp:3128"),
        "OSError": OSError("Cannot connect to host minio.internal:9000 ssl:default [Connect call failed]"),
    }[error]
    message = str(ResultsWriteError.of("s3://bucket/results.parquet", raised))
    assert secret not in message and "10.20" not in message and "\n" not in message
    assert message.startswith(f"could not write the results at s3://bucket/results.parquet ({error}: ")

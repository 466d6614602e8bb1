"""One run per results location: a second is refused naming the holder; a killed holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

from airflow_provider_pinpoint.results.journal import ResultsWriteError
from airflow_provider_pinpoint.results.lock import Holder, LocationBusy
from airflow_provider_pinpoint.results.store import ResultsStore

HOLD = """
import sys, time
from airflow_provider_pinpoint.results.journal import ResultsWriteError
from airflow_provider_pinpoint.results.store import ResultsStore
with ResultsStore(sys.argv[1]).lock("run-A"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path/results.parquet`` as run-A."""
    location = tmp_path / "results.parquet"
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(location)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    yield process
    process.kill()
    process.wait()


def test_a_second_run_is_refused_in_one_line_naming_the_location_and_the_holder(tmp_path, holder):
    location = tmp_path / "results.parquet"
    with pytest.raises(LocationBusy) as caught:
        with ResultsStore(location).lock("run-B"):
            pytest.fail("two runs held one location")
    message = str(caught.value)
    assert str(location) in message and "run run-A (since 20" in message and f"pid {holder.pid}" in message
    assert "\n" not in message


def test_a_lock_left_by_a_killed_run_is_taken_over_and_removed_on_release(tmp_path, holder, caplog):
    location = tmp_path / "results.parquet"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with ResultsStore(location).lock("run-B"):
        held = Holder.parse((tmp_path / ".results.parquet.lock").read_bytes())
        assert held is not None and held.run_id == "run-B" and held.pid == os.getpid()
    assert "run-A" in caplog.text and "takes them over" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_two_runs_in_one_process_exclude_each_other_too(tmp_path):
    location = tmp_path / "results.csv"
    with ResultsStore(location).lock("run-A"):
        with pytest.raises(LocationBusy, match="run run-A"):
            ResultsStore(location).lock("run-B").__enter__()
    with ResultsStore(location).lock("run-B"):
        pass


def test_on_object_storage_a_fresh_heartbeat_holds_and_a_stale_one_is_taken_over(tmp_path):
    location = f"memory://lock-tests/{tmp_path.name}/results.parquet"
    timing = {"heartbeat_s": 0.1, "stale_s": 0.5, "settle_s": 0.05}
    with ResultsStore(location).lock("run-A", **timing):
        time.sleep(1.0)  # twice stale_s: only the heartbeat keeps it held
        with pytest.raises(LocationBusy, match="run run-A"):
            ResultsStore(location).lock("run-B", **timing).__enter__()
    fs = fsspec.filesystem("memory")
    lock = f"/lock-tests/{tmp_path.name}/.results.parquet.lock"
    assert not fs.exists(lock)
    killed = Holder("run-K", "elsewhere", 1, "2026-01-01T00:00:00Z", time.time() - 1.0)  # no heartbeat since
    fs.pipe(lock, killed.text())
    with ResultsStore(location).lock("run-B", **timing):
        assert Holder.parse(fs.cat(lock)).run_id == "run-B"


def test_compaction_removes_only_the_journals_it_read(tmp_path):
    from tests.results.test_formats import rows

    location = tmp_path / "results.parquet"
    store = ResultsStore(location)
    writer = store.writer("run-1")
    writer.add(rows(10).to_batches()[0])
    writer.close()
    staging = Path(store.staging)
    late = staging / f"{time.time_ns() * 2:020d}-run-2-00000.arrows"  # written after compaction listed them
    real_ls = store.fs.ls
    listed: list[str] = []

    def ls(path, detail=False, **kwargs):
        out = real_ls(path, detail=detail, **kwargs)
        if path == store.staging and not listed:
            listed.extend(out)
            late.write_bytes(b"")
        return out

    store.fs.ls = ls
    try:
        store.compact()
    finally:
        del store.fs.ls
    assert [p.name for p in staging.iterdir()] == [late.name]


HOST = socket.gethostname()


@pytest.mark.parametrize(
    "text",
    [
        b'{"run_id": "run-X", "host": "h", "pid": 1, "since": "s", "heartbeat": "yesterday"}',
        b'{"run_id": "run-X", "host": "%s", "pid": "1", "since": "s", "heartbeat": %d}' % (HOST.encode(), 2**40),
        b'{"run_id": "run-X", "host": "%s", "pid": %d, "since": "s", "heartbeat": %d}' % (HOST.encode(), 2**70, 2**40),
        b'{"run_id": "run-X", "host": "h", "pid": 1, "since": "s", "heartbeat": 1e400}',
        b'{"run_id": ["run-X"], "host": "h", "pid": 1, "since": "s", "heartbeat": 1}',
        b"\xff\xfe garbage",
        b"null",
    ],
)
def test_a_lock_file_with_garbage_names_no_holder_and_is_taken_over(tmp_path, text):
    # Damage must neither crash the run with a traceback nor hold the location for ever.
    location = f"memory://lock-tests/{tmp_path.name}/results.parquet"
    fs = fsspec.filesystem("memory")
    lock = f"/lock-tests/{tmp_path.name}/.results.parquet.lock"
    fs.pipe(lock, text)
    assert Holder.parse(text) is None
    with ResultsStore(location).lock("run-B", settle_s=0.01):
        assert Holder.parse(fs.cat(lock)).run_id == "run-B"
    assert not fs.exists(lock)


def test_a_lock_where_no_directory_can_be_made_fails_in_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ResultsWriteError) as caught:
        with ResultsStore(tmp_path / "file" / "results.parquet").lock("run-A"):
            pytest.fail("locked inside a file")
    assert "\n" not in str(caught.value) and "results.parquet" in str(caught.value)


def test_a_lock_file_removed_while_held_is_released_without_error(tmp_path):
    location = tmp_path / "results.parquet"
    with ResultsStore(location).lock("run-A"):
        (tmp_path / ".results.parquet.lock").unlink()
    with ResultsStore(location).lock("run-B"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_holder_taken_over_stops_beating_over_the_new_holder(tmp_path, caplog):
    location = f"memory://lock-tests/{tmp_path.name}/results.parquet"
    fs = fsspec.filesystem("memory")
    lock = f"/lock-tests/{tmp_path.name}/.results.parquet.lock"
    with ResultsStore(location).lock("run-A", heartbeat_s=0.05, settle_s=0.01):
        # run-A stalled past stale_s and run-B took over: run-A's heartbeat must not overwrite it
        fs.pipe(lock, Holder("run-B", "elsewhere", 1, "2026-01-01T00:00:00Z", time.time() + 60).text())
        time.sleep(0.3)
        assert Holder.parse(fs.cat(lock)).run_id == "run-B"
    assert Holder.parse(fs.cat(lock)).run_id == "run-B"
    assert "taken over by run run-B" in caplog.text


def test_on_object_storage_a_lock_that_cannot_be_removed_is_a_warning_not_an_error(tmp_path, caplog):
    # Raised from __exit__, the storage error would replace the run's own outcome or error.
    location = f"memory://lock-tests/{tmp_path.name}/results.parquet"
    store = ResultsStore(location)
    store.fs.rm = lambda *args, **kwargs: (_ for _ in ()).throw(PermissionError("refused"))
    try:
        with pytest.raises(ValueError, match="the run's own"):
            with store.lock("run-A", settle_s=0.01):
                raise ValueError("the run's own error")
    finally:
        del store.fs.rm
    assert "could not remove the lock" in caplog.text and "PermissionError" in caplog.text

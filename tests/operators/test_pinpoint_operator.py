"""PinpointPutEventsOperator without a metadata DB: rendering, execute against the emulator, failures."""

from __future__ import annotations

import json
import logging
import threading
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from airflow.sdk import Asset, AssetAlias

from airflow_provider_pinpoint.emulator import run_emulator
from airflow_provider_pinpoint.operators.pinpoint import PinpointPutEventsOperator
from tests.helpers.operator_tasks import ENDPOINTS, EVENTS, context

pytestmark = pytest.mark.airflow


def operator(conn_id: str, **kwargs) -> PinpointPutEventsOperator:
    kwargs.setdefault("application_id", "app-1")
    return PinpointPutEventsOperator(task_id="put_events", aws_conn_id=conn_id, **kwargs)


@pytest.fixture
def bad_events(tmp_path) -> str:
    """Three events, one of them with a timestamp that is not a date: rejected by validation."""
    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "EndpointId": ["ep-1", "ep-2", "ep-3"],
                "EventType": ["purchase"] * 3,
                "Timestamp": ["2026-11-24T10:00:00Z", "not a date", "2026-11-24T11:00:00Z"],
            }
        ),
        path,
    )
    return str(path)


def test_init_only_stores_the_arguments():
    op = PinpointPutEventsOperator(
        task_id="t", application_id="app", events="e", results="r.parquet", aws_conn_id="c", botocore_config={"a": 1}
    )
    assert (op.application_id, op.events, op.endpoints, op.results) == ("app", "e", None, "r.parquet")
    assert (op.aws_conn_id, op.botocore_config, op.max_reject_ratio) == ("c", {"a": 1}, None)


def test_the_dry_run_flag_does_not_shadow_the_operators_dry_run_method():
    op = PinpointPutEventsOperator(task_id="t", application_id="app", events="e", dry_run=True)
    op.dry_run()  # BaseOperator's: renders nothing here, logs the template fields
    assert op.validate_only is True


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        PinpointPutEventsOperator("app", task_id="t")


def test_template_fields_are_rendered():
    op = PinpointPutEventsOperator(
        task_id="t",
        aws_conn_id="{{ params.conn }}",
        application_id="{{ params.app }}",
        events="{{ params.data }}/events/date={{ ds }}",
        endpoints="{{ params.data }}/endpoints/date={{ ds }}",
        results="out/date={{ ds }}/results.parquet",
        column_mapping={"events": {"user_id": "{{ params.id_target }}"}},
    )
    params = {"conn": "pp", "app": "app-9", "data": "/data", "id_target": "EndpointId"}
    op.render_template_fields({"ds": "2026-11-24", "params": params})
    assert op.aws_conn_id == "pp"
    assert op.application_id == "app-9"
    assert op.events == "/data/events/date=2026-11-24"
    assert op.endpoints == "/data/endpoints/date=2026-11-24"
    assert op.results == "out/date=2026-11-24/results.parquet"
    assert op.column_mapping == {"events": {"user_id": "EndpointId"}}


def test_execute_loads_the_tables_and_returns_a_json_summary(emulator, emulator_conn_id, tmp_path):
    results = tmp_path / "results.parquet"
    summary = operator(emulator_conn_id, events=EVENTS, endpoints=ENDPOINTS, results=str(results)).execute(context())
    stats = emulator.stats()
    assert summary["accepted"] == summary["input_rows"] == stats["events_accepted"] + stats["endpoints_accepted"]
    assert summary["results"] == str(results)
    assert summary["run_id"] == "manual__2026-11-24"
    assert json.loads(json.dumps(summary)) == summary
    table = pd.read_parquet(results)
    assert len(table) == summary["input_rows"]
    assert set(table["status"]) == {"accepted"}


def test_a_dry_run_sends_nothing_and_records_no_asset_event(emulator, emulator_conn_id, tmp_path):
    asset = Asset(uri=f"file://{tmp_path}/results")
    op = operator(emulator_conn_id, events=EVENTS, endpoints=ENDPOINTS, dry_run=True, outlets=[asset])
    ctx = context()
    summary = op.execute(ctx)
    assert summary["dry_run"] and summary["input_rows"] == 1011
    assert emulator.stats()["requests"] == 0
    assert ctx["outlet_events"][asset].extra == {}


def test_a_rerun_with_the_same_results_sends_nothing_again(emulator, emulator_conn_id, tmp_path):
    op = operator(emulator_conn_id, events=EVENTS, endpoints=ENDPOINTS, results=str(tmp_path / "results.parquet"))
    first = op.execute(context())
    second = op.execute(context())
    assert second["skipped"] == first["input_rows"]
    assert emulator.stats()["events_duplicated"] == 0


def test_an_unknown_application_fails_the_task_without_retry(aws_connection, tmp_path):
    with run_emulator(apps=["known-app"]) as emu:
        conn_id = aws_connection(endpoint_url=emu.url, region_name="us-east-1")
        op = operator(conn_id, application_id="other-app", events=EVENTS, results=str(tmp_path / "r.parquet"))
        with pytest.raises(AirflowFailException, match="other-app"):
            op.execute(context())
        assert emu.stats()["events_accepted"] == 0


@pytest.mark.parametrize("max_in_flight", ["16", None, 0])
def test_a_max_in_flight_that_is_not_a_whole_number_fails_the_task_in_one_line(
    emulator_conn_id, tmp_path, max_in_flight
):
    op = operator(
        emulator_conn_id, events=str(EVENTS), results=str(tmp_path / "r.parquet"), max_in_flight=max_in_flight
    )
    with pytest.raises(AirflowFailException, match="max_in_flight"):
        op.execute(context())


def test_a_pool_size_set_on_the_connection_is_kept_and_bounds_the_requests_in_flight(aws_connection, emulator):
    conn_id = aws_connection(
        "pinpoint_pool", endpoint_url=emulator.url, region_name="us-east-1", config_kwargs={"max_pool_connections": 4}
    )
    assert operator(conn_id, max_in_flight=16)._client().meta.config.max_pool_connections == 4
    default = aws_connection("pinpoint_no_pool", endpoint_url=emulator.url, region_name="us-east-1")
    assert operator(default, max_in_flight=16)._client().meta.config.max_pool_connections == 16


def test_an_unreadable_input_fails_the_task_naming_the_file(emulator_conn_id, tmp_path):
    missing = str(tmp_path / "nowhere" / "events.parquet")
    with pytest.raises(AirflowFailException, match="nowhere"):
        operator(emulator_conn_id, events=missing).execute(context())


def test_too_many_rejects_fail_the_task_after_the_good_rows_are_sent(emulator, emulator_conn_id, bad_events, tmp_path):
    results = tmp_path / "results.parquet"
    op = operator(emulator_conn_id, events=bad_events, results=str(results), max_reject_ratio=0.2)
    with pytest.raises(AirflowFailException, match="max_reject_ratio"):
        op.execute(context())
    assert emulator.stats()["events_accepted"] == 2
    table = pd.read_parquet(results)
    assert sorted(table["status"]) == ["accepted", "accepted", "rejected"]
    assert table.loc[table["status"] == "rejected", "source_row"].tolist() == [2]


def test_rejects_within_the_ratio_leave_the_task_green(emulator, emulator_conn_id, bad_events, tmp_path):
    op = operator(emulator_conn_id, events=bad_events, results=str(tmp_path / "r.parquet"), max_reject_ratio=0.5)
    summary = op.execute(context())
    assert (summary["accepted"], summary["rejected"]) == (2, 1)


def test_rows_still_failing_after_max_attempts_fail_the_task_for_a_retry(
    emulator, emulator_conn_id, bad_events, tmp_path
):
    emulator.configure(error_rate=1.0)
    op = operator(emulator_conn_id, events=bad_events, results=str(tmp_path / "r.parquet"), max_attempts=1)
    with pytest.raises(AirflowException, match="2 of 3 rows failed after 1 attempts") as raised:
        op.execute(context())
    assert not isinstance(raised.value, AirflowFailException)
    assert "resends only the rows not yet accepted or rejected" in str(raised.value)


def test_without_a_results_location_the_failure_says_a_retry_sends_everything_again(
    emulator, emulator_conn_id, bad_events
):
    emulator.configure(error_rate=1.0)
    op = operator(emulator_conn_id, events=bad_events, max_attempts=1)
    with pytest.raises(AirflowException, match="2 of 3 rows failed") as raised:
        op.execute(context())
    assert "no results location was given, so a retry of this task sends every row again" in str(raised.value)
    assert "resends only" not in str(raised.value)


def test_the_task_log_gets_progress_lines_with_counts(emulator, emulator_conn_id, tmp_path, caplog):
    op = operator(emulator_conn_id, events=EVENTS, results=str(tmp_path / "r.parquet"))
    with caplog.at_level(logging.INFO, logger="airflow_provider_pinpoint.progress"):
        summary = op.execute(context())
    lines = [record.getMessage() for record in caplog.records if record.name == "airflow_provider_pinpoint.progress"]
    assert lines and all(line.startswith("progress: ") and "\r" not in line for line in lines)
    # The last counts, then the results table being written.
    assert f"{summary['accepted']:,} accepted" in lines[-3]
    assert lines[-2] == "progress: writing the results table ..."
    assert lines[-1].startswith("progress: writing the results table: done in ")


def test_outlet_assets_get_the_counts_in_their_event_extra(emulator, emulator_conn_id, tmp_path):
    results = tmp_path / "results.parquet"
    asset, alias = Asset(uri=f"file://{tmp_path}/results"), AssetAlias("pinpoint-results")
    op = operator(emulator_conn_id, events=EVENTS, results=str(results), outlets=[asset, alias])
    ctx = context()
    summary = op.execute(ctx)
    extra = ctx["outlet_events"][asset].extra
    assert (extra["accepted"], extra["results"]) == (summary["accepted"], str(results))
    [alias_event] = ctx["outlet_events"][alias].asset_alias_events
    assert alias_event.dest_asset_key.uri == f"file://{results}"
    assert alias_event.extra["input_rows"] == summary["input_rows"]


def test_runs_and_shards_with_one_results_asset_record_events_of_one_asset(emulator, emulator_conn_id, tmp_path):
    alias = AssetAlias("pinpoint-results")
    uris, tables = set(), []
    for run, part in (("run_1", "shard=00000"), ("run_1", "shard=00001"), ("run_2", "shard=00000")):
        results = tmp_path / "results" / run / f"{part}.parquet"
        op = operator(
            emulator_conn_id,
            events=EVENTS,
            results=str(results),
            results_asset=str(tmp_path / "results"),
            outlets=[alias],
        )
        ctx = context()
        op.execute(ctx)
        [event] = ctx["outlet_events"][alias].asset_alias_events
        uris.add(event.dest_asset_key.uri)
        tables.append(event.extra["results"])
    assert uris == {f"file://{tmp_path}/results"}
    assert len(set(tables)) == 3  # each event still names its own table


@pytest.fixture
def loader_rates(monkeypatch) -> list[float]:
    """The requests_per_second each load_events call of the test was given (the load itself runs)."""
    from airflow_provider_pinpoint import load

    rates: list[float] = []
    real = load.load_events

    def recording(*args, **kwargs):
        rates.append(kwargs["requests_per_second"])
        return real(*args, **kwargs)

    monkeypatch.setattr(load, "load_events", recording)
    return rates


def test_a_task_of_the_quota_pool_sends_at_its_slots_share_of_the_account_rate(
    emulator, emulator_conn_id, loader_rates
):
    op = operator(
        emulator_conn_id,
        events=EVENTS,
        requests_per_second=15,
        pool="pinpoint_put_events",
        pool_slots=2,
        pool_size="{{ params.pool_size }}",
    )
    op.render_template_fields({"params": {"pool_size": "6"}})
    summary = op.execute(context())
    assert loader_rates == [4.0]  # 5 a second, less the one request the limiter may hold in reserve
    assert summary["accepted"] == emulator.stats()["events_accepted"] > 0


@pytest.mark.parametrize("pool_size", ["1", "two", 0, 30])
def test_a_pool_size_that_cannot_hold_the_task_fails_it_without_retry(emulator_conn_id, pool_size, loader_rates):
    op = operator(emulator_conn_id, events=EVENTS, pool="pinpoint_put_events", pool_slots=2, pool_size=pool_size)
    with pytest.raises(AirflowFailException, match="pool_size"):
        op.execute(context())
    assert loader_rates == []


def test_results_as_an_object_storage_path_reach_the_table_the_summary_and_the_asset(
    emulator, emulator_conn_id, tmp_path
):
    from airflow.sdk import ObjectStoragePath

    results = ObjectStoragePath(f"file://{tmp_path}/out/results.parquet")
    alias = AssetAlias("pinpoint-results")
    ctx = context()
    summary = operator(emulator_conn_id, events=EVENTS, results=results, outlets=[alias]).execute(ctx)
    assert len(pd.read_parquet(tmp_path / "out" / "results.parquet")) == summary["input_rows"] > 0
    assert summary["results"] == f"{tmp_path}/out/results.parquet"
    [alias_event] = ctx["outlet_events"][alias].asset_alias_events
    assert alias_event.dest_asset_key.uri == f"file://{tmp_path}/out/results.parquet"


def test_an_object_storage_path_without_its_backend_fails_the_task_naming_it_without_the_connection(
    emulator_conn_id, monkeypatch
):
    from airflow.sdk import ObjectStoragePath

    def missing_backend(self):
        raise ImportError("Airflow FS S3 protocol requires the s3fs library, but it is not installed")

    monkeypatch.setattr(ObjectStoragePath, "fs", property(missing_backend))
    results = ObjectStoragePath("s3://lake_conn@bucket/pinpoint/results.parquet")
    with pytest.raises(AirflowFailException, match="s3fs") as raised:
        operator(emulator_conn_id, events=EVENTS, results=results).execute(context())
    assert "s3://bucket/pinpoint/results.parquet" in str(raised.value)
    assert "lake_conn" not in str(raised.value)


def test_lineage_names_the_tables_read_the_application_and_the_results(emulator, emulator_conn_id, tmp_path):
    results = tmp_path / "results.parquet"
    op = operator(emulator_conn_id, events=EVENTS, endpoints=ENDPOINTS, results=str(results))
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", EVENTS), ("file", ENDPOINTS)]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(emulator.url, "apps/app-1"), ("file", str(results))]


def test_lineage_leaves_credentials_in_the_endpoint_url_out(emulator, aws_connection, tmp_path):
    host = emulator.url.removeprefix("http://")
    conn_id = aws_connection(
        "pp_userinfo", endpoint_url=f"http://gateway-user:gateway-secret@{host}", region_name="us-east-1"
    )
    op = operator(conn_id, events=EVENTS, results=str(tmp_path / "results.parquet"))
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.outputs[0].namespace == emulator.url


def test_lineage_of_object_storage_uses_the_bucket_as_namespace():
    op = PinpointPutEventsOperator(
        task_id="t", application_id="app", events="s3://bucket/events/date=1", results="s3://bucket/out/r.parquet"
    )
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("s3://bucket", "events/date=1")]
    assert (lineage.outputs[1].namespace, lineage.outputs[1].name) == ("s3://bucket", "out/r.parquet")


def test_on_kill_stops_sending_and_leaves_consistent_results(emulator, emulator_conn_id, tmp_path):
    emulator.configure(latency_ms=50)
    results = tmp_path / "results.parquet"
    op = operator(
        emulator_conn_id,
        events=EVENTS,
        endpoints=ENDPOINTS,
        results=str(results),
        requests_per_second=2,
        max_in_flight=1,
    )
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context())
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while emulator.stats()["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    op.on_kill()
    worker.join(timeout=60)
    assert not worker.is_alive()
    [error] = outcome
    assert isinstance(error, AirflowException) and "Stopped on request" in str(error)
    table = pd.read_parquet(results)
    stats = emulator.stats()
    accepted = table[table["status"] == "accepted"]
    assert len(accepted) == stats["events_accepted"] + stats["endpoints_accepted"]
    assert len(accepted) < 1011

"""PinpointEventsToKinesisOperator without a metadata DB: rendering, the hook's client, execute against moto's server, failures."""

from __future__ import annotations

import pandas as pd
import pytest
from airflow.providers.amazon.aws.hooks.kinesis import KinesisHook
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk import AssetAlias

from airflow_provider_pinpoint.operators.kinesis import PinpointEventsToKinesisOperator
from tests.helpers.moto_server import create_stream, decoded, stream_records, unique_name
from tests.helpers.operator_tasks import (
    ENDPOINTS,
    EVENTS,
    assert_one_line_naming,
    context,
    every_row_accepted,
    userinfo_connection,
)

pytestmark = pytest.mark.airflow


def operator(conn_id: str, stream_name: str, **kwargs) -> PinpointEventsToKinesisOperator:
    kwargs.setdefault("application_id", "app-1")
    return PinpointEventsToKinesisOperator(
        task_id="put_records", aws_conn_id=conn_id, stream_name=stream_name, **kwargs
    )


def test_init_only_stores_the_arguments():
    op = PinpointEventsToKinesisOperator(
        task_id="t", stream_name="s", application_id="app", events="e", aws_conn_id="c", records_per_second=500
    )
    assert (op.stream_name, op.application_id, op.events, op.aws_conn_id) == ("s", "app", "e", "c")
    assert (op.records_per_second, op.bytes_per_second, op.requests_per_second) == (500, None, None)
    assert op.aws_hook_class is KinesisHook


def test_arguments_are_keyword_only_and_the_stream_is_required():
    with pytest.raises(TypeError):
        PinpointEventsToKinesisOperator("s", task_id="t", application_id="app")
    with pytest.raises(TypeError, match="stream_name"):
        PinpointEventsToKinesisOperator(task_id="t", application_id="app")


def test_template_fields_are_rendered():
    op = PinpointEventsToKinesisOperator(
        task_id="t",
        aws_conn_id="{{ params.conn }}",
        stream_name="{{ params.stream }}",
        application_id="{{ params.app }}",
        events="{{ params.data }}/events/date={{ ds }}",
        results="out/date={{ ds }}/results.parquet",
    )
    op.render_template_fields({"ds": "2026-11-24", "params": {"conn": "k", "stream": "s-1", "app": "a", "data": "/d"}})
    assert (op.aws_conn_id, op.stream_name, op.application_id) == ("k", "s-1", "a")
    assert (op.events, op.results) == ("/d/events/date=2026-11-24", "out/date=2026-11-24/results.parquet")


def test_the_client_comes_from_the_kinesis_hook_with_the_connections_endpoint_and_one_attempt_per_call(
    aws_connection, moto_server
):
    conn_id = aws_connection(
        "kinesis_svc", service_config={"kinesis": {"endpoint_url": moto_server}}, region_name="eu-west-1"
    )
    client = operator(conn_id, "s")._client()
    assert client.meta.service_model.service_name == "kinesis"
    assert (client.meta.endpoint_url, client.meta.region_name) == (moto_server, "eu-west-1")
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_retries_set_in_botocore_config_are_kept(moto_conn_id):
    op = operator(moto_conn_id, "s", botocore_config={"retries": {"total_max_attempts": 3, "mode": "standard"}})
    assert op._client().meta.config.retries["total_max_attempts"] == 3


def test_the_hooks_client_keeps_a_connection_for_each_request_in_flight(moto_conn_id):
    # botocore's default pool is 10: threads beyond it would open and drop a connection per request.
    assert operator(moto_conn_id, "s", max_in_flight=24)._client().meta.config.max_pool_connections == 24
    assert operator(moto_conn_id, "s", max_in_flight=4)._client().meta.config.max_pool_connections == 10
    larger = operator(moto_conn_id, "s", max_in_flight=24, botocore_config={"max_pool_connections": 40})
    assert larger._client().meta.config.max_pool_connections == 40


def test_execute_puts_one_record_per_event_keyed_by_endpoint_and_the_results_account_for_every_row(
    moto_server, moto_conn_id, tmp_path
):
    stream = create_stream(moto_server, shards=2)
    results = tmp_path / "results.parquet"
    summary = operator(moto_conn_id, stream, events=EVENTS, endpoints=ENDPOINTS, results=str(results)).execute(
        context()
    )
    events, table = every_row_accepted(summary, results)
    assert summary["results"] == str(results) and summary["run_id"] == "manual__2026-11-24"

    read = stream_records(moto_server, stream)
    event_ids = set(table.loc[table["record_type"] == "event", "event_id"])
    records = {
        record["event_id"]: (raw, record)
        for raw, record in zip(read, decoded(read), strict=True)
        if record.get("event_id") in event_ids
    }
    assert set(records) == event_ids and len(event_ids) == len(events)
    assert sum(record.get("event_id") in event_ids for record in decoded(read)) == len(events)  # each once
    given = events.dropna(subset=["EventId"]).set_index("EventId")
    for event_id, row in given.iterrows():
        raw, record = records[event_id]
        assert raw["partition_key"] == record["client"]["client_id"] == row["EndpointId"]
        assert record["event_type"] == row["EventType"]
        assert record["event_timestamp"] == int(pd.Timestamp(row["Timestamp"]).timestamp() * 1000)
        assert record["application"]["app_id"] == "app-1"


def test_a_missing_stream_fails_the_task_at_once_with_one_line_naming_it(aws_connection, moto_server, tmp_path):
    missing = unique_name("no-such-stream")
    conn_id = userinfo_connection(aws_connection, "kinesis_userinfo", moto_server)
    op = operator(conn_id, missing, events=EVENTS, results=str(tmp_path / "r.parquet"))
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context())
    assert_one_line_naming(str(raised.value), missing)


def test_a_rerun_with_the_same_results_puts_nothing_again(moto_server, moto_conn_id, tmp_path):
    stream = create_stream(moto_server, shards=1)
    op = operator(moto_conn_id, stream, events=EVENTS, results=str(tmp_path / "results.parquet"))
    first = op.execute(context())
    second = op.execute(context())
    assert second["skipped"] == first["input_rows"] and second["requests"] == 0
    assert len(stream_records(moto_server, stream)) == first["accepted"]


def test_the_results_alias_gets_an_event_with_the_counts(moto_server, moto_conn_id, tmp_path):
    stream = create_stream(moto_server, shards=1)
    results, alias = tmp_path / "results.parquet", AssetAlias("kinesis-results")
    ctx = context()
    summary = operator(moto_conn_id, stream, events=EVENTS, results=str(results), outlets=[alias]).execute(ctx)
    [event] = ctx["outlet_events"][alias].asset_alias_events
    assert event.dest_asset_key.uri == f"file://{results}"
    assert event.extra["accepted"] == summary["accepted"] > 0


def test_lineage_names_the_tables_the_stream_and_the_results(moto_server, moto_conn_id, tmp_path):
    stream = create_stream(moto_server, shards=1)
    results = tmp_path / "results.parquet"
    op = operator(moto_conn_id, stream, events=EVENTS, results=str(results))
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", EVENTS)]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        (moto_server, f"stream/{stream}"),
        ("file", str(results)),
    ]


@pytest.fixture
def loader_rates(monkeypatch) -> list[dict]:
    """The rate arguments each load_events call of the test was given (the load itself runs)."""
    from airflow_provider_pinpoint import load

    calls: list[dict] = []
    real = load.load_events

    def recording(*args, **kwargs):
        calls.append(
            {key: kwargs.get(key) for key in ("records_per_second", "bytes_per_second", "requests_per_second")}
        )
        return real(*args, **kwargs)

    monkeypatch.setattr(load, "load_events", recording)
    return calls


def test_without_rates_the_loader_derives_them_from_the_stream(moto_server, moto_conn_id, loader_rates):
    stream = create_stream(moto_server, shards=1)
    operator(moto_conn_id, stream, events=EVENTS).execute(context())
    assert loader_rates == [{"records_per_second": None, "bytes_per_second": None, "requests_per_second": None}]


def test_a_task_of_a_stream_pool_puts_at_its_slots_share_of_the_streams_capacity(
    moto_server, moto_conn_id, loader_rates
):
    stream = create_stream(moto_server, shards=1)
    op = operator(
        moto_conn_id,
        stream,
        events=EVENTS,
        records_per_second=2000,
        bytes_per_second=2_000_000,
        pool="stream_pool",
        pool_slots=1,
        pool_size="{{ params.pool_size }}",
    )
    op.render_template_fields({"params": {"pool_size": "4"}})
    summary = op.execute(context())
    # A quarter each, less the reserve the limiter may hold (BURST_S = 25 ms of the rate).
    assert loader_rates == [{"records_per_second": 487.5, "bytes_per_second": 487_500.0, "requests_per_second": None}]
    assert summary["accepted"] == summary["input_rows"] > 0


def test_a_pool_without_the_streams_capacity_fails_the_task_without_retry(moto_conn_id, loader_rates):
    op = operator(moto_conn_id, "s", events=EVENTS, pool="stream_pool", pool_size=4)
    with pytest.raises(AirflowFailException, match="records_per_second must be the stream's capacity"):
        op.execute(context())
    assert loader_rates == []

"""PinpointEventsToFirehoseOperator without a metadata DB: the hook, execute against moto's server, failures."""

from __future__ import annotations

import pytest
from airflow.providers.amazon.aws.hooks.firehose import FirehoseHook
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pinpoint.operators.firehose import PinpointEventsToFirehoseOperator
from tests.helpers.moto_server import create_delivery_stream, delivered_lines, unique_name
from tests.helpers.operator_tasks import (
    ENDPOINTS,
    EVENTS,
    assert_one_line_naming,
    context,
    every_row_accepted,
    userinfo_connection,
)

pytestmark = pytest.mark.airflow


def operator(conn_id: str, delivery_stream_name: str, **kwargs) -> PinpointEventsToFirehoseOperator:
    kwargs.setdefault("application_id", "app-1")
    return PinpointEventsToFirehoseOperator(
        task_id="put_record_batch", aws_conn_id=conn_id, delivery_stream_name=delivery_stream_name, **kwargs
    )


def test_init_only_stores_the_arguments_and_the_hook_is_bound_to_the_delivery_stream():
    op = PinpointEventsToFirehoseOperator(
        task_id="t", delivery_stream_name="d", application_id="app", events="e", aws_conn_id="c"
    )
    assert (op.delivery_stream_name, op.application_id, op.events, op.aws_conn_id) == ("d", "app", "e", "c")
    assert isinstance(op.hook, FirehoseHook) and op.hook.delivery_stream == "d"


def test_template_fields_are_rendered():
    op = PinpointEventsToFirehoseOperator(
        task_id="t", delivery_stream_name="{{ params.stream }}", application_id="{{ params.app }}", events="e"
    )
    op.render_template_fields({"params": {"stream": "d-1", "app": "a"}})
    assert (op.delivery_stream_name, op.application_id) == ("d-1", "a")


def test_execute_delivers_one_json_line_per_event_to_s3_and_the_results_account_for_every_row(
    moto_server, moto_conn_id, tmp_path
):
    name, bucket = create_delivery_stream(moto_server)
    results = tmp_path / "results.parquet"
    summary = operator(moto_conn_id, name, events=EVENTS, endpoints=ENDPOINTS, results=str(results)).execute(context())
    events, table = every_row_accepted(summary, results)

    lines = delivered_lines(moto_server, bucket)
    event_ids = set(table.loc[table["record_type"] == "event", "event_id"])
    delivered = [line for line in lines if line.get("event_id") in event_ids]
    assert len(delivered) == len(event_ids) == len(events)
    by_id = {line["event_id"]: line for line in delivered}
    for event_id, row in events.dropna(subset=["EventId"]).set_index("EventId").iterrows():
        line = by_id[event_id]
        assert (line["event_type"], line["client"]["client_id"]) == (row["EventType"], row["EndpointId"])
        assert line["application"]["app_id"] == "app-1"


def test_a_missing_delivery_stream_fails_the_task_at_once_with_one_line_naming_it(
    aws_connection, moto_server, tmp_path
):
    missing = unique_name("no-such-delivery")
    conn_id = userinfo_connection(aws_connection, "firehose_userinfo", moto_server)
    op = operator(conn_id, missing, events=EVENTS, results=str(tmp_path / "r.parquet"))
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context())
    assert_one_line_naming(str(raised.value), missing)


def test_lineage_names_the_delivery_stream(moto_server, moto_conn_id, tmp_path):
    name, _ = create_delivery_stream(moto_server)
    op = operator(moto_conn_id, name, events=EVENTS)
    op.execute(context())
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(moto_server, f"deliverystream/{name}")]

"""Daily load: the day's partition of the events and endpoints tables into Pinpoint.

Reads ``<data_dir>/events/date={{ ds }}`` and ``<data_dir>/endpoints/date={{ ds }}``; writes one
results table per run under ``<results_dir>/date={{ ds }}``, so clearing a run resumes it where it
stopped instead of sending everything again. The defaults load the repository's sample data into
the local emulator (connection ``pinpoint_default`` with ``endpoint_url`` set, as ``make demo`` does).
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, AssetAlias, Param

from airflow_provider_pinpoint.operators.pinpoint import PinpointPutEventsOperator

REPO = Path(__file__).resolve().parent.parent

with DAG(
    dag_id="pinpoint_daily_load",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 23, tz="UTC"),
    catchup=False,
    tags=["pinpoint", "example"],
    params={
        "aws_conn_id": Param("pinpoint_default", type="string", description="aws connection to Pinpoint"),
        "application_id": Param("demo-app", type="string", description="Pinpoint project id"),
        "data_dir": Param(str(REPO / "sample_data" / "daily"), type="string"),
        "results_dir": Param(str(REPO / "out" / "pinpoint_daily_load"), type="string"),
    },
    doc_md=__doc__,
):
    PinpointPutEventsOperator(
        task_id="put_events",
        aws_conn_id="{{ params.aws_conn_id }}",
        application_id="{{ params.application_id }}",
        events="{{ params.data_dir }}/events/date={{ ds }}",
        endpoints="{{ params.data_dir }}/endpoints/date={{ ds }}",
        results="{{ params.results_dir }}/date={{ ds }}/results.parquet",
        max_reject_ratio=0.05,
        outlets=[AssetAlias("pinpoint_daily_load_results")],
    )

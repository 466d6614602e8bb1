"""Daily load into a Kinesis data stream: the same tables, in the event-stream JSON Pinpoint itself wrote.

The migration path after Pinpoint: a day's events and endpoints partitions go to the Kinesis data
stream ``stream_name`` as one record each, in Pinpoint's documented app-event stream schema (partition
key: the endpoint id), so consumers built for Pinpoint's own event stream read them unchanged. The
day a run loads is chosen as in ``pinpoint_daily_load``: the ``day`` param, else the logical date
(the day that has just ended, for a scheduled run), else the day before the run was triggered.

The stream must exist. The boto3 client comes from the amazon provider's ``KinesisHook`` with the
``aws`` connection ``aws_conn_id`` (default ``kinesis_default``): its extra's ``endpoint_url`` (or
``service_config.kinesis.endpoint_url``) points the load at a local server such as moto's, as in
``make demo``. One results table per day under ``<results_dir>/date=<day>``: clearing a run resumes it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, AssetAlias, CronDataIntervalTimetable, Param

from airflow_provider_pinpoint.operators.kinesis import PinpointEventsToKinesisOperator

# Where the example reads and writes unless the run's params say otherwise: PINPOINT_DATA_DIR (default:
# the sample data shipped beside the dags/ folder) and PINPOINT_OUTPUT_DIR (default: $AIRFLOW_HOME/pinpoint),
# read where the DAG is parsed. Output never defaults to the DAG folder, which a deployment may mount read-only.
DATA_DIR = os.environ.get("PINPOINT_DATA_DIR") or str(Path(__file__).resolve().parent.parent / "sample_data" / "daily")
OUTPUT_DIR = os.path.join(
    os.environ.get("PINPOINT_OUTPUT_DIR")
    or os.path.join(os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "pinpoint"),
    "pinpoint_to_kinesis",
)

# The day to load, YYYY-MM-DD (see pinpoint_daily_load).
DAY = "{{ params.day or (ds if ds is defined else macros.ds_add(dag_run.run_after | ds, -1)) }}"

with DAG(
    dag_id="pinpoint_to_kinesis",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 23, tz="UTC"),
    catchup=False,
    # A retry resumes from the results location: only rows not yet accepted or rejected are sent.
    default_args={"retries": 3, "retry_delay": timedelta(seconds=10)},
    tags=["pinpoint", "kinesis", "example"],
    params={
        "aws_conn_id": Param("kinesis_default", type="string", description="aws connection to Kinesis"),
        "stream_name": Param("pinpoint-events", type="string", description="the Kinesis data stream"),
        "application_id": Param("demo-app", type="string", description="application.app_id of the records"),
        "day": Param(None, type=["null", "string"], format="date", description="load this day instead"),
        "data_dir": Param(DATA_DIR, type="string"),
        "results_dir": Param(os.path.join(OUTPUT_DIR, "results"), type="string"),
    },
    doc_md=__doc__,
):
    PinpointEventsToKinesisOperator(
        task_id="put_records",
        aws_conn_id="{{ params.aws_conn_id }}",
        stream_name="{{ params.stream_name }}",
        application_id="{{ params.application_id }}",
        events="{{ params.data_dir }}/events/date=" + DAY,
        endpoints="{{ params.data_dir }}/endpoints/date=" + DAY,
        results="{{ params.results_dir }}/date=" + DAY + "/results.parquet",
        results_asset="{{ params.results_dir }}",  # one asset for every day's results
        max_reject_ratio=0.05,
        outlets=[AssetAlias("pinpoint_to_kinesis_results")],
    )

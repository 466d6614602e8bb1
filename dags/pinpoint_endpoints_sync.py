"""Endpoints only: push the day's endpoints table (attributes, opt-outs, user ids) without events.

Each endpoint goes as ``Endpoint: {...}`` with ``Events: {}``; the results table says which
endpoints were accepted or rejected, and why. A sync state (``state_dir``) remembers the body last
accepted for each endpoint: only new and changed endpoints are sent, the others are recorded as
``unchanged`` (see docs/sync.md). The day a run loads is chosen as in
``pinpoint_daily_load``: the ``day`` param, else the logical date (the day that has just ended, for
a scheduled run), else the day before the run was triggered.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, AssetAlias, CronDataIntervalTimetable, Param

from airflow_provider_pinpoint.operators.pinpoint import PinpointPutEventsOperator

# Where the example reads and writes unless the run's params say otherwise: PINPOINT_DATA_DIR (default:
# the sample data shipped beside the dags/ folder) and PINPOINT_OUTPUT_DIR (default: $AIRFLOW_HOME/pinpoint),
# read where the DAG is parsed. Output never defaults to the DAG folder, which a deployment may mount read-only.
DATA_DIR = os.environ.get("PINPOINT_DATA_DIR") or str(Path(__file__).resolve().parent.parent / "sample_data" / "daily")
OUTPUT_DIR = os.path.join(
    os.environ.get("PINPOINT_OUTPUT_DIR")
    or os.path.join(os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "pinpoint"),
    "pinpoint_endpoints_sync",
)

# The account's PutEvents quota (requests per second, per region) is shared by every task of the pool
# POOL, in any DAG or run: each sends at its slots' share of it, POOL_SIZE being the pool's slot count
# (a task cannot read a pool in Airflow 3: keep the Variable equal to the pool's size).
ACCOUNT_REQUESTS_PER_SECOND = 15.0
POOL = "pinpoint_put_events"
POOL_SIZE = "{{ var.value.get('pinpoint_put_events_pool_size', 2) }}"

# The day to load, YYYY-MM-DD (see pinpoint_daily_load).
DAY = "{{ params.day or (ds if ds is defined else macros.ds_add(dag_run.run_after | ds, -1)) }}"

with DAG(
    dag_id="pinpoint_endpoints_sync",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 23, tz="UTC"),
    catchup=False,
    # A retry resumes from the results location: only rows not yet accepted or rejected are sent.
    default_args={"retries": 3, "retry_delay": timedelta(seconds=10)},
    tags=["pinpoint", "example"],
    params={
        "aws_conn_id": Param("pinpoint_default", type="string", description="aws connection to Pinpoint"),
        "application_id": Param("demo-app", type="string", description="Pinpoint project id"),
        "day": Param(None, type=["null", "string"], format="date", description="load this day instead"),
        "data_dir": Param(DATA_DIR, type="string"),
        "results_dir": Param(os.path.join(OUTPUT_DIR, "results"), type="string"),
        "state_dir": Param(os.path.join(OUTPUT_DIR, "state"), type="string"),
        "full_refresh": Param(False, type="boolean", description="send every endpoint and rebuild the state"),
    },
    doc_md=__doc__,
):
    PinpointPutEventsOperator(
        task_id="put_endpoints",
        aws_conn_id="{{ params.aws_conn_id }}",
        application_id="{{ params.application_id }}",
        endpoints="{{ params.data_dir }}/endpoints/date=" + DAY,
        results="{{ params.results_dir }}/date=" + DAY + "/results.parquet",
        results_asset="{{ params.results_dir }}",  # one asset for every day's results
        state="{{ params.state_dir }}",  # what was accepted before: only changed endpoints go
        full_refresh="{{ params.full_refresh }}",
        requests_per_second=ACCOUNT_REQUESTS_PER_SECOND,
        pool=POOL,
        pool_size=POOL_SIZE,
        outlets=[AssetAlias("pinpoint_endpoints_sync_results")],
    )

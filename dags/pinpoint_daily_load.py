"""Daily load: one day's partition of the events and endpoints tables into Pinpoint.

A run loads one day, ``DAY`` below: the ``day`` param when given; else the run's logical date. The
schedule is a data-interval timetable, so the run that starts at midnight UTC has the day that has
just ended as its logical date (Airflow 3's plain ``"@daily"`` would give it the day that has just
started, whose partition does not exist yet). A run triggered without a logical date, as Airflow 3
allows, loads the day before the one it was triggered on.

Reads ``<data_dir>/events/date=<day>`` and ``<data_dir>/endpoints/date=<day>``; writes one results
table per day under ``<results_dir>/date=<day>``, so clearing a run resumes it where it stopped
instead of sending everything again. By default it reads the sample data shipped with the examples
and sends to connection ``pinpoint_default`` (the local emulator in ``make demo``).
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
    "pinpoint_daily_load",
)

# The account's PutEvents quota (requests per second, per region) is shared by every task of the pool
# POOL, in any DAG or run: each sends at its slots' share of it, POOL_SIZE being the pool's slot count
# (a task cannot read a pool in Airflow 3: keep the Variable equal to the pool's size).
ACCOUNT_REQUESTS_PER_SECOND = 15.0
POOL = "pinpoint_put_events"
POOL_SIZE = "{{ var.value.get('pinpoint_put_events_pool_size', 2) }}"

# The day to load, YYYY-MM-DD (see the module docstring).
DAY = "{{ params.day or (ds if ds is defined else macros.ds_add(dag_run.run_after | ds, -1)) }}"

with DAG(
    dag_id="pinpoint_daily_load",
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
    },
    doc_md=__doc__,
):
    PinpointPutEventsOperator(
        task_id="put_events",
        aws_conn_id="{{ params.aws_conn_id }}",
        application_id="{{ params.application_id }}",
        events="{{ params.data_dir }}/events/date=" + DAY,
        endpoints="{{ params.data_dir }}/endpoints/date=" + DAY,
        results="{{ params.results_dir }}/date=" + DAY + "/results.parquet",
        results_asset="{{ params.results_dir }}",  # one asset for every day's results
        max_reject_ratio=0.05,
        requests_per_second=ACCOUNT_REQUESTS_PER_SECOND,
        pool=POOL,
        pool_size=POOL_SIZE,
        outlets=[AssetAlias("pinpoint_daily_load_results")],
    )

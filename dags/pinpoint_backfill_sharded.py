"""Backfill a date range, split into shards that run as mapped tasks on any worker.

``plan`` hash-partitions the events of every day in the range, and the endpoints snapshot of the
last day, by endpoint id into ``shards`` self-contained Parquet shards under ``staging_dir``. One
mapped ``put_events`` task loads each shard and writes its own part of the results table, so a
Celery or Kubernetes executor spreads the backfill over workers and a failed shard is retried on
its own, and resumes from its results part. Each shard takes a slot of the ``pinpoint_put_events``
pool and sends at its share of the account's PutEvents quota, so the shards of every run, and the
other DAGs' loads in the pool, stay within the quota together. ``total`` adds up the shards' summaries.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_provider_pinpoint.operators.pinpoint import PinpointPutEventsOperator

# Where the example reads and writes unless the run's params say otherwise: PINPOINT_DATA_DIR (default:
# the sample data shipped beside the dags/ folder) and PINPOINT_OUTPUT_DIR (default: $AIRFLOW_HOME/pinpoint),
# read where the DAG is parsed. Output never defaults to the DAG folder, which a deployment may mount read-only.
DATA_DIR = os.environ.get("PINPOINT_DATA_DIR") or str(Path(__file__).resolve().parent.parent / "sample_data" / "daily")
OUTPUT_DIR = os.path.join(
    os.environ.get("PINPOINT_OUTPUT_DIR")
    or os.path.join(os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "pinpoint"),
    "pinpoint_backfill_sharded",
)

# The account's PutEvents quota (requests per second, per region) is shared by every task of the pool
# POOL, in any DAG or run: each sends at its slots' share of it, POOL_SIZE being the pool's slot count
# (a task cannot read a pool in Airflow 3: keep the Variable equal to the pool's size).
ACCOUNT_REQUESTS_PER_SECOND = 15.0
POOL = "pinpoint_put_events"
POOL_SIZE = "{{ var.value.get('pinpoint_put_events_pool_size', 2) }}"

with DAG(
    dag_id="pinpoint_backfill_sharded",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 23, tz="UTC"),
    catchup=False,
    # A retry resumes from the results location: only rows not yet accepted or rejected are sent.
    default_args={"retries": 3, "retry_delay": timedelta(seconds=10)},
    tags=["pinpoint", "example"],
    params={
        "aws_conn_id": Param("pinpoint_default", type="string", description="aws connection to Pinpoint"),
        "application_id": Param("demo-app", type="string", description="Pinpoint project id"),
        "start": Param("2026-11-23", type="string", format="date", description="first day, inclusive"),
        "end": Param("2026-11-25", type="string", format="date", description="last day, inclusive"),
        "shards": Param(4, type="integer", minimum=1),
        "data_dir": Param(DATA_DIR, type="string"),
        "staging_dir": Param(os.path.join(OUTPUT_DIR, "staging"), type="string"),
        "results_dir": Param(os.path.join(OUTPUT_DIR, "results"), type="string"),
    },
    doc_md=__doc__,
):

    @task
    def plan(params: dict[str, Any] | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
        """Shard the range; return the put-events arguments of each non-empty shard."""
        from airflow_provider_pinpoint.sharding import plan_shards

        days = [
            day.to_date_string()
            for day in pendulum.interval(pendulum.parse(params["start"]), pendulum.parse(params["end"])).range("days")
        ]
        run = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
        shards = plan_shards(
            events=[f"{params['data_dir']}/events/date={day}" for day in days],
            endpoints=f"{params['data_dir']}/endpoints/date={days[-1]}",
            staging=f"{params['staging_dir']}/{run}",
            shards=params["shards"],
        )
        for shard in shards:
            print(f"shard {shard['shard']}: {shard['events_rows']} events, {shard['endpoints_rows']} endpoints")
        return [
            {
                "events": shard["events"],
                "endpoints": shard["endpoints"],
                "results": f"{params['results_dir']}/{run}/shard={shard['shard']:05d}.parquet",
            }
            for shard in shards
        ]

    put_events = PinpointPutEventsOperator.partial(
        task_id="put_events",
        aws_conn_id="{{ params.aws_conn_id }}",
        application_id="{{ params.application_id }}",
        requests_per_second=ACCOUNT_REQUESTS_PER_SECOND,
        pool=POOL,
        pool_size=POOL_SIZE,
        results_asset="{{ params.results_dir }}",  # one asset for every run's and shard's part
        outlets=[AssetAlias("pinpoint_backfill_sharded_results")],
    ).expand_kwargs(plan())

    @task
    def total(summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """One summary for the whole backfill."""
        from airflow_provider_pinpoint.sharding import sum_summaries

        summary = sum_summaries(summaries)
        print(f"backfill summary: {summary}")
        return summary

    total(put_events.output)

"""Which day the daily example DAGs load: their templates rendered with the context the task runner
builds, for a run the scheduler creates from the DAG's own timetable and for manual runs."""

from __future__ import annotations

import uuid
from typing import Any

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType, TIRunContext
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import TimeRestriction

pytestmark = pytest.mark.airflow

DAILY = {
    "pinpoint_daily_load": "put_events",
    "pinpoint_endpoints_sync": "put_endpoints",
    "pinpoint_to_kinesis": "put_records",
}


def scheduled_run_at(dagbag: DagBag, dag_id: str, midnight: pendulum.DateTime) -> dict[str, Any]:
    """The dates the scheduler gives the run of ``dag_id`` that starts at ``midnight``, from the DAG's timetable."""
    timetable = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[dag_id])).timetable
    restriction = TimeRestriction(earliest=midnight.subtract(days=3), latest=None, catchup=True)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    while info.run_after < midnight:
        info = timetable.next_dagrun_info(last_automated_data_interval=info.data_interval, restriction=restriction)
    assert info.run_after == midnight
    return {
        "logical_date": info.logical_date,
        "data_interval_start": info.data_interval.start,
        "data_interval_end": info.data_interval.end,
        "run_after": info.run_after,
        "run_type": DagRunType.SCHEDULED,
    }


def rendered(dagbag: DagBag, dag_id: str, conf: dict[str, Any] | None = None, **dag_run: Any) -> Any:
    """The task of ``dag_id`` with its template fields rendered as the task runner renders them."""
    task = dagbag.dags[dag_id].get_task(DAILY[dag_id]).prepare_for_execution()  # a copy, as a worker renders
    run = DagRun(
        dag_id=dag_id,
        run_id="run",
        start_date=dag_run["run_after"],
        end_date=None,
        state=DagRunState.RUNNING,
        consumed_asset_events=[],
        partition_key=None,
        conf=conf or {},
        **{"logical_date": None, "data_interval_start": None, "data_interval_end": None, **dag_run},
    )
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id=dag_id,
        run_id="run",
        try_number=1,
        map_index=-1,
        task=task,
        start_date=dag_run["run_after"],
        _ti_context_from_server=TIRunContext(dag_run=run, max_tries=0),
    )
    task.render_template_fields(ti.get_template_context())
    return task


@pytest.mark.parametrize("dag_id", DAILY)
def test_the_run_scheduled_at_midnight_loads_the_day_that_has_just_ended(dagbag, dag_id):
    task = rendered(dagbag, dag_id, **scheduled_run_at(dagbag, dag_id, pendulum.datetime(2026, 11, 25, tz="UTC")))
    assert task.endpoints.endswith("/endpoints/date=2026-11-24")
    assert task.results.endswith("/date=2026-11-24/results.parquet")
    if dag_id == "pinpoint_daily_load":
        assert task.events.endswith("/events/date=2026-11-24")


@pytest.mark.parametrize("dag_id", DAILY)
def test_a_manual_run_without_a_logical_date_loads_the_day_before_it_was_triggered(dagbag, dag_id):
    task = rendered(dagbag, dag_id, run_after=pendulum.datetime(2026, 11, 25, 9, 30, tz="UTC"), run_type="manual")
    assert task.endpoints.endswith("/endpoints/date=2026-11-24")
    assert task.results.endswith("/date=2026-11-24/results.parquet")


@pytest.mark.parametrize("dag_id", DAILY)
def test_a_manual_run_with_a_logical_date_loads_that_day(dagbag, dag_id):
    day = pendulum.datetime(2026, 11, 23, tz="UTC")
    task = rendered(
        dagbag,
        dag_id,
        logical_date=day,
        data_interval_start=day.subtract(days=1),
        data_interval_end=day,
        run_after=day,
        run_type=DagRunType.MANUAL,
    )
    assert task.endpoints.endswith("/endpoints/date=2026-11-23")


@pytest.mark.parametrize("dag_id", DAILY)
def test_the_day_param_wins_over_the_run_dates(dagbag, dag_id):
    task = rendered(
        dagbag,
        dag_id,
        conf={"day": "2026-11-20"},
        run_after=pendulum.datetime(2026, 11, 25, 9, 30, tz="UTC"),
        run_type=DagRunType.MANUAL,
    )
    assert task.endpoints.endswith("/endpoints/date=2026-11-20")
    assert task.results.endswith("/date=2026-11-20/results.parquet")

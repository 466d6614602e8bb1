"""Task settings of the example DAGs that only a real deployment would otherwise reveal."""

from __future__ import annotations

from datetime import timedelta

import pytest

pytestmark = pytest.mark.airflow

PUT_TASKS = {
    "pinpoint_backfill_sharded": "put_events",
    "pinpoint_daily_load": "put_events",
    "pinpoint_endpoints_sync": "put_endpoints",
}


@pytest.mark.parametrize(("dag_id", "task_id"), PUT_TASKS.items())
def test_a_failed_or_killed_load_task_is_retried_after_a_short_delay(dagbag, dag_id, task_id):
    task = dagbag.dags[dag_id].get_task(task_id)
    assert task.retries >= 2
    assert task.retry_delay <= timedelta(minutes=1)

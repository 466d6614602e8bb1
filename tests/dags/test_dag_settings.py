"""Task settings of the example DAGs that only a real deployment would otherwise reveal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.dags.conftest import DAGS

pytestmark = pytest.mark.airflow

PUT_TASKS = {
    "pinpoint_backfill_sharded": "put_events",
    "pinpoint_daily_load": "put_events",
    "pinpoint_endpoints_sync": "put_endpoints",
}
# Every example DAG's load task: the PutEvents ones and the Kinesis one (which has no PutEvents quota pool).
LOAD_TASKS = {**PUT_TASKS, "pinpoint_to_kinesis": "put_records"}


@pytest.mark.parametrize(("dag_id", "task_id"), LOAD_TASKS.items())
def test_a_failed_or_killed_load_task_is_retried_after_a_short_delay(dagbag, dag_id, task_id):
    task = dagbag.dags[dag_id].get_task(task_id)
    assert task.retries >= 2
    assert task.retry_delay <= timedelta(minutes=1)


@pytest.mark.parametrize(("dag_id", "task_id"), LOAD_TASKS.items())
def test_every_run_and_shard_names_the_same_results_asset(dagbag, dag_id, task_id):
    task = dagbag.dags[dag_id].get_task(task_id)
    kwargs = getattr(task, "partial_kwargs", None) or vars(task)
    assert kwargs["results_asset"] == "{{ params.results_dir }}"


def params_parsed_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, dict[str, str]]:
    """Each example DAG's default params, the DAG files parsed with ``env`` set."""
    for name in ("PINPOINT_DATA_DIR", "PINPOINT_OUTPUT_DIR", "AIRFLOW_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    return {dag_id: {key: bag.dags[dag_id].params[key] for key in bag.dags[dag_id].params} for dag_id in LOAD_TASKS}


def test_outputs_default_under_airflow_home_and_inputs_to_the_shipped_sample_data(monkeypatch, tmp_path):
    params = params_parsed_with(monkeypatch, AIRFLOW_HOME=str(tmp_path / "home"))
    for dag_id, values in params.items():
        assert values["results_dir"] == str(tmp_path / "home" / "pinpoint" / dag_id / "results")
        assert Path(values["data_dir"]) == DAGS.parent / "sample_data" / "daily"
    assert params["pinpoint_backfill_sharded"]["staging_dir"] == str(
        tmp_path / "home" / "pinpoint" / "pinpoint_backfill_sharded" / "staging"
    )


def test_the_deployment_sets_the_default_locations_with_environment_variables(monkeypatch, tmp_path):
    params = params_parsed_with(monkeypatch, PINPOINT_DATA_DIR="s3://lake/daily", PINPOINT_OUTPUT_DIR=str(tmp_path))
    for dag_id, values in params.items():
        assert values["data_dir"] == "s3://lake/daily"
        assert values["results_dir"] == str(tmp_path / dag_id / "results")


@pytest.mark.parametrize(("dag_id", "task_id"), PUT_TASKS.items())
def test_every_load_shares_the_account_rate_through_the_quota_pool(dagbag, dag_id, task_id):
    task = dagbag.dags[dag_id].get_task(task_id)
    kwargs = getattr(task, "partial_kwargs", None) or vars(task)
    assert task.pool == "pinpoint_put_events"
    assert kwargs["requests_per_second"] == 15.0
    assert kwargs["pool_size"] == "{{ var.value.get('pinpoint_put_events_pool_size', 2) }}"

"""The example DAGs as the dag processor parses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def dagbag() -> DagBag:
    """Every DAG in ``dags/``; parsing must not fail."""
    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    return bag

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import airflow_provider_pinpoint


def test_provider_info_names_the_distribution():
    info = airflow_provider_pinpoint.get_provider_info()
    assert info["package-name"] == "airflow-provider-pinpoint"
    assert info["versions"] == [airflow_provider_pinpoint.__version__]


def test_entry_point_is_registered():
    (ep,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider_pinpoint")
    ]
    assert ep.load() is airflow_provider_pinpoint.get_provider_info


@pytest.mark.airflow
def test_airflow_providers_list_shows_the_provider(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    airflow = str(Path(sys.executable).with_name("airflow"))
    done = subprocess.run(
        [airflow, "providers", "list", "-o", "json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    listed = {provider["package_name"]: provider for provider in json.loads(done.stdout)}
    assert listed["airflow-provider-pinpoint"]["version"] == airflow_provider_pinpoint.__version__


@pytest.mark.airflow
def test_every_module_the_provider_lists_imports_and_names_a_declared_integration():
    import importlib

    info = airflow_provider_pinpoint.get_provider_info()
    integrations = {integration["integration-name"] for integration in info["integrations"]}
    listed = [entry for kind in ("hooks", "operators") for entry in info[kind]]
    assert {entry["integration-name"] for entry in listed} == integrations
    for entry in listed:
        for module in entry["python-modules"]:
            importlib.import_module(module)

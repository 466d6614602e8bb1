from __future__ import annotations

from importlib.metadata import entry_points

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

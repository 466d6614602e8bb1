"""Amazon Pinpoint PutEvents bulk loader and Airflow provider.

The core (reading, validating, reshaping, packing, sending, results) imports no Airflow, so a
notebook can use :func:`load_events` without starting or configuring Airflow.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info", "load_events"]


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's ProvidersManager (the ``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "airflow-provider-pinpoint",
        "name": "Amazon Pinpoint",
        "description": "Bulk PutEvents loading into Amazon Pinpoint (or any compatible endpoint), "
        "with a local emulator.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Amazon Pinpoint",
                "external-doc-url": "https://docs.aws.amazon.com/pinpoint/latest/apireference/apps-application-id-events.html",
                "tags": ["aws"],
            },
            {
                "integration-name": "Amazon Kinesis Data Streams",
                "external-doc-url": "https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html",
                "tags": ["aws"],
            },
            {
                "integration-name": "Amazon Data Firehose",
                "external-doc-url": "https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html",
                "tags": ["aws"],
            },
        ],
        "hooks": [
            {"integration-name": "Amazon Pinpoint", "python-modules": ["airflow_provider_pinpoint.hooks.pinpoint"]}
        ],
        "operators": [
            {"integration-name": "Amazon Pinpoint", "python-modules": ["airflow_provider_pinpoint.operators.pinpoint"]},
            {
                "integration-name": "Amazon Kinesis Data Streams",
                "python-modules": ["airflow_provider_pinpoint.operators.kinesis"],
            },
            {
                "integration-name": "Amazon Data Firehose",
                "python-modules": ["airflow_provider_pinpoint.operators.firehose"],
            },
        ],
    }


def __getattr__(name: str) -> Any:
    # Imported lazily so that Airflow's provider discovery (which imports this module) stays cheap.
    if name == "load_events":
        from airflow_provider_pinpoint.load import load_events

        return load_events
    raise AttributeError(name)

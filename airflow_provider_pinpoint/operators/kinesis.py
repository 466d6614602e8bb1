"""Load endpoints and events tables into an Amazon Kinesis data stream from a DAG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.kinesis import KinesisHook

from airflow_provider_pinpoint.operators.streams import PinpointStreamLoadBaseOperator


class PinpointEventsToKinesisOperator(PinpointStreamLoadBaseOperator[KinesisHook]):
    """Send an endpoints table and/or an events table to a Kinesis data stream, as Pinpoint's event stream did.

    Each event row becomes one record in Pinpoint's documented app-event stream JSON (plus
    ``event_id`` for de-duplication), each endpoint row one ``_endpoint.update`` record, with the
    endpoint id as partition key; see ``docs/migration.md``. The
    boto3 ``kinesis`` client comes from the amazon provider's ``KinesisHook``, so the ``aws``
    connection works as for its other operators (``endpoint_url`` or
    ``service_config.kinesis.endpoint_url`` in the extra). Validation, the results table, resume,
    the XCom summary, assets and the ways the task fails are those of
    :class:`~airflow_provider_pinpoint.operators.pinpoint.PinpointLoadBaseOperator`, whose
    parameters it takes, with the rates of
    :class:`~airflow_provider_pinpoint.operators.streams.PinpointStreamLoadBaseOperator`. A stream that
    does not exist, or that the credentials may not write to, fails the task at once without retry.

    :param stream_name: the Kinesis data stream to write to. (templated)
    :param application_id: the ``application.app_id`` of every record. (templated)
    """

    aws_hook_class = KinesisHook
    template_fields: Sequence[str] = (*PinpointStreamLoadBaseOperator.template_fields, "stream_name")

    def __init__(self, *, stream_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream_name = stream_name

    def _sink_arguments(self) -> dict[str, Any]:
        return {"sink": "kinesis", "stream_name": self.stream_name}

    def _destination(self) -> str:
        return f"Kinesis stream {self.stream_name} (application {self.application_id})"

    def _destination_dataset(self) -> tuple[str, str]:
        return self._endpoint_url or "kinesis", f"stream/{self.stream_name}"

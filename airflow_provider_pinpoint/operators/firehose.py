"""Load endpoints and events tables into an Amazon Data Firehose delivery stream from a DAG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.firehose import FirehoseHook

from airflow_provider_pinpoint.operators.streams import PinpointStreamLoadBaseOperator


class PinpointEventsToFirehoseOperator(PinpointStreamLoadBaseOperator[FirehoseHook]):
    """Send an endpoints table and/or an events table to a Firehose delivery stream, as Pinpoint's event stream did.

    Each event row becomes one newline-terminated record in Pinpoint's documented app-event stream
    JSON (plus ``event_id`` for de-duplication), each endpoint row one ``_endpoint.update`` record, so
    the objects Firehose delivers to S3 are JSON Lines;
    see ``docs/migration.md``. The boto3 ``firehose`` client comes from the amazon provider's
    ``FirehoseHook``, so the ``aws`` connection works as for its other operators (``endpoint_url``
    or ``service_config.firehose.endpoint_url`` in the extra). Validation, the results table,
    resume, the XCom summary, assets and the ways the task fails are those of
    :class:`~airflow_provider_pinpoint.operators.pinpoint.PinpointLoadBaseOperator`, whose
    parameters it takes, with the rates of
    :class:`~airflow_provider_pinpoint.operators.streams.PinpointStreamLoadBaseOperator`. A delivery
    stream that does not exist, or that the credentials may not write to, fails the task at once
    without retry.

    :param delivery_stream_name: the Firehose delivery stream to write to. (templated)
    :param application_id: the ``application.app_id`` of every record. (templated)
    """

    aws_hook_class = FirehoseHook
    template_fields: Sequence[str] = (*PinpointStreamLoadBaseOperator.template_fields, "delivery_stream_name")

    def __init__(self, *, delivery_stream_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delivery_stream_name = delivery_stream_name

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        # The amazon provider's FirehoseHook is bound to one delivery stream.
        return {**super()._hook_parameters, "delivery_stream": self.delivery_stream_name}

    def _sink_arguments(self) -> dict[str, Any]:
        return {"sink": "firehose", "delivery_stream_name": self.delivery_stream_name}

    def _destination(self) -> str:
        return f"Firehose delivery stream {self.delivery_stream_name} (application {self.application_id})"

    def _destination_dataset(self) -> tuple[str, str]:
        return self._endpoint_url or "firehose", f"deliverystream/{self.delivery_stream_name}"

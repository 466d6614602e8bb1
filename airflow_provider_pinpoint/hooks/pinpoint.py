"""The Airflow side of the ``aws`` connection for Amazon Pinpoint."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.client import BaseClient
from botocore.config import Config

from airflow_provider_pinpoint.sending.client import CLIENT_RETRIES

# The loader retries throttles, 5xx and lost connections itself, per request and per item, with a
# budget it can account for in the results table. botocore's own retries would multiply that budget
# (8 loader attempts x 3 botocore attempts) and hide throttling from the loader's rate limiter, so
# the client makes one attempt per call unless the connection or the operator asks otherwise.
SINGLE_ATTEMPT = Config(retries=dict(CLIENT_RETRIES))


class PinpointHook(AwsBaseHook):
    """Interact with Amazon Pinpoint through boto3's ``pinpoint`` client.

    Takes the standard ``aws`` connection: credentials or a role, ``region_name``, ``endpoint_url``
    (or ``service_config.pinpoint.endpoint_url``, e.g. the local emulator) and ``config_kwargs``.
    The client it hands out makes a single attempt per call unless ``retries`` is set in
    ``config_kwargs`` or in the ``config`` given to the hook, because the loader does the retrying.

    Additional arguments (such as ``aws_conn_id``) may be specified and are passed down to the
    underlying AwsBaseHook.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "pinpoint"
        super().__init__(*args, **kwargs)

    def get_client_type(
        self, region_name: str | None = None, config: Config | None = None, deferrable: bool = False
    ) -> BaseClient:
        """Get the boto3 ``pinpoint`` client, single-attempt unless retries were configured."""
        if config is None and self.config.retries is None:
            config = self.config.merge(SINGLE_ATTEMPT)
        return super().get_client_type(region_name=region_name, config=config, deferrable=deferrable)

    def put_events(self, *, application_id: str, batch_item: dict[str, Any]) -> dict[str, Any]:
        """Send one PutEvents request and return its ``EventsResponse``.

        The bulk loader packs, rate-limits and retries many of these; this method is for a single
        request. See:
        https://boto3.amazonaws.com/v1/documentation/api/latest/reference/services/pinpoint/client/put_events.html

        :param application_id: the Pinpoint project (application) id.
        :param batch_item: the ``BatchItem`` map: endpoint id -> ``{"Endpoint": {...}, "Events": {...}}``.
        """
        response = self.conn.put_events(ApplicationId=application_id, EventsRequest={"BatchItem": batch_item})
        return response["EventsResponse"]

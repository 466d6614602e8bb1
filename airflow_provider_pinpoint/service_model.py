"""botocore's own Pinpoint service model: the authority for member names, types and enums.

botocore's parameter validator checks types and required members only; the enum values and the
members of each shape are read from the same model here, so client-side validation and the
emulator agree with what boto3 itself will accept.
"""

from __future__ import annotations

import os
from functools import cache

from botocore.loaders import Loader, create_loader
from botocore.model import OperationModel, ServiceModel, Shape

# Documented as enums in the API reference, but typed as plain strings in the model.
ENDPOINT_STATUS_VALUES = ("ACTIVE", "INACTIVE")
OPT_OUT_VALUES = ("ALL", "NONE")


@cache
def data_loader() -> Loader:
    """botocore's data files, read once a process: the clients the loader makes use this loader too,
    so the Pinpoint model is parsed once (as a session would make it, ``AWS_DATA_PATH`` included)."""
    return create_loader(os.environ.get("AWS_DATA_PATH"))


@cache
def pinpoint_model() -> ServiceModel:
    return ServiceModel(data_loader().load_service_model("pinpoint", "service-2"), service_name="pinpoint")


@cache
def put_events_operation() -> OperationModel:
    return pinpoint_model().operation_model("PutEvents")


def shape(name: str) -> Shape:
    """A named shape, e.g. ``PublicEndpoint``, ``Event``, ``Session``, ``EndpointLocation``."""
    return pinpoint_model().shape_for(name)


@cache
def channel_types() -> tuple[str, ...]:
    return tuple(shape("PublicEndpoint").members["ChannelType"].enum)


def validate_put_events_params(application_id: str, batch_item: dict) -> None:
    """Raise botocore's ParamValidationError if boto3 would refuse these put_events parameters."""
    from botocore.validate import validate_parameters

    validate_parameters(
        {"ApplicationId": application_id, "EventsRequest": {"BatchItem": batch_item}},
        put_events_operation().input_shape,
    )

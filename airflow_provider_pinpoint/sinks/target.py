"""Which destination a load goes to: the ``sink`` option and the stream it names, checked up front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from airflow_provider_pinpoint.errors import InputError

Sink = Literal["pinpoint", "kinesis", "firehose"]
SINKS: tuple[Sink, ...] = ("pinpoint", "kinesis", "firehose")
# The boto3 service each sink sends with.
SERVICES: dict[str, str] = {"pinpoint": "pinpoint", "kinesis": "kinesis", "firehose": "firehose"}


@dataclass(frozen=True, slots=True)
class SinkTarget:
    """A sink and, for the streams, the stream's name (None for PutEvents)."""

    sink: Sink
    stream: str | None = None

    @property
    def destination(self) -> str:
        """The destination's name in a sync state: the sink, and for the streams the stream's name too
        (``kinesis.NAME``), so two streams of one application keep apart what each accepted."""
        return self.sink if self.stream is None else f"{self.sink}.{self.stream}"

    @property
    def service(self) -> str:
        """The boto3 service name of the sink."""
        return SERVICES[self.sink]

    @classmethod
    def of(cls, sink: str, stream_name: str | None, delivery_stream_name: str | None) -> SinkTarget:
        """The target the options name; an :class:`InputError` for an unknown sink, a missing stream
        name, or a stream name that belongs to the other sink."""
        if sink not in SINKS:
            raise InputError(f"sink must be one of {', '.join(map(repr, SINKS))}, not {sink!r}")
        if sink == "kinesis":
            if delivery_stream_name is not None:
                raise InputError("delivery_stream_name (--delivery-stream) is for sink='firehose'; use stream_name")
            if not stream_name:
                raise InputError(
                    "sink='kinesis' needs stream_name (--stream-name): the Kinesis data stream to put into"
                )
            return cls("kinesis", stream_name)
        if sink == "firehose":
            if stream_name is not None:
                raise InputError("stream_name (--stream-name) is for sink='kinesis'; use delivery_stream_name")
            if not delivery_stream_name:
                raise InputError(
                    "sink='firehose' needs delivery_stream_name (--delivery-stream): the Firehose delivery stream"
                )
            return cls("firehose", delivery_stream_name)
        if stream_name is not None or delivery_stream_name is not None:
            raise InputError("stream_name and delivery_stream_name are for sink='kinesis' and sink='firehose'")
        return cls("pinpoint")


@dataclass(frozen=True, slots=True)
class Rates:
    """The sending rates the user asked for; None leaves each to the sink's default."""

    requests_per_second: float | None = None
    records_per_second: float | None = None
    bytes_per_second: float | None = None

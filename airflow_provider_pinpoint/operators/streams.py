"""What the Kinesis and Firehose operators share: their rates, and the pool share of them."""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.utils.mixins import AwsHookType
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_pinpoint.operators.pinpoint import PinpointLoadBaseOperator


class PinpointStreamLoadBaseOperator(PinpointLoadBaseOperator[AwsHookType]):
    """Send the tables to a stream sink as records of Pinpoint's event-stream JSON; see the subclasses.

    A stream's capacity is in records and bytes per second, not in requests, so the rate is given
    in those; None leaves it to the loader (Kinesis: 1,000 records and 1 MiB per second per open
    shard of the stream; Firehose: the smallest regions' quota), which also slows down when the
    service throttles. The other parameters are those of :class:`PinpointLoadBaseOperator`.

    :param records_per_second: this task's records per second; with ``pool_size``, the stream's
        (given, as the pool cannot share a capacity the task does not know).
    :param bytes_per_second: this task's bytes per second; with ``pool_size``, the stream's.
    :param requests_per_second: this task's requests per second (default: no request cap on
        Kinesis, Firehose's quota of 1,000).
    :param pool_size: the slot count of this task's ``pool`` when that pool stands for the stream's
        capacity: each rate given is then shared as ``rate * pool_slots / pool_size``. (templated)
    """

    def __init__(
        self,
        *,
        records_per_second: float | None = None,
        bytes_per_second: float | None = None,
        requests_per_second: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(requests_per_second=requests_per_second, **kwargs)
        self.records_per_second = records_per_second
        self.bytes_per_second = bytes_per_second

    def _rates(self) -> dict[str, Any]:
        rates = {
            "records_per_second": (self.records_per_second, "records"),
            "bytes_per_second": (self.bytes_per_second, "bytes"),
            "requests_per_second": (self.requests_per_second, "requests"),
        }
        pool_size = self._pool_size()
        if pool_size is None:
            return {name: rate for name, (rate, _) in rates.items()}
        if self.records_per_second is None:
            raise AirflowFailException(
                f"pool_size is set, so records_per_second must be the stream's capacity that the slots of pool "
                f"{self.pool!r} share (e.g. 1000 per open shard of a Kinesis stream)."
            )
        return {
            name: None if rate is None else self._shared_rate(rate, unit, pool_size)
            for name, (rate, unit) in rates.items()
        }

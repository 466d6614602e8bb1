"""Load endpoints and events tables into Amazon Pinpoint from a DAG.

:class:`PinpointLoadBaseOperator` is the task every sink's operator shares (rate and pool share,
results, resume, assets, lineage, failures); the sink's operator names its hook and destination.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import AwsHookType, aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from airflow.sdk import Asset, AssetAlias
from botocore.config import Config

from airflow_provider_pinpoint import quotas
from airflow_provider_pinpoint.common.locations import is_object_path, location_text
from airflow_provider_pinpoint.errors import FatalServiceError, InputError, RejectRatioExceeded
from airflow_provider_pinpoint.hooks.pinpoint import SINGLE_ATTEMPT, PinpointHook
from airflow_provider_pinpoint.sending.client import pool_size as connection_pool_size
from airflow_provider_pinpoint.sending.ratelimit import BURST_S

if TYPE_CHECKING:
    from airflow.sdk import Context

# Summary keys copied into the results asset event's extra (small, JSON, no personal data).
_ASSET_EXTRA_KEYS = (
    "run_id",
    "input_rows",
    "accepted",
    "rejected",
    "failed",
    "skipped",
    "unchanged",
    "already_sent",
    "requests",
    "retries",
    "results",
)


class PinpointLoadBaseOperator(AwsBaseOperator[AwsHookType]):
    """Send an endpoints table and/or an events table to a sink: the task each sink's operator runs.

    The work is done by :func:`airflow_provider_pinpoint.load_events`: rows are validated, packed
    into requests within the service quotas, sent under a rate limit with retries, and every input
    row gets one line in the results table (accepted, rejected or failed). A rerun with the same
    ``results`` location resumes: rows already accepted are not sent again.

    Returns the load summary (counts by status, requests, retries, duration, results location) to
    XCom. The task fails without retrying on a fatal service error (403/404), on an input that
    cannot be read, or when more than ``max_reject_ratio`` of the rows were rejected (after the good
    rows were sent and the results written). It fails and may be retried when rows are still
    ``failed`` after ``max_attempts`` or when it was stopped: the retry resumes from the results
    (without a ``results`` location it sends every row again). The task log gets a progress line
    at most every 10 s while rows are decided. Outlets get an asset event whose extra holds the
    counts; an ``AssetAlias`` outlet receives ``results_asset`` (by default the results location
    itself) as the asset.

    :param application_id: the Pinpoint project (application) id. (templated)
    :param events: events table: a path, directory, glob or URL of Parquet/CSV files, or a
        DataFrame. (templated)
    :param endpoints: endpoints table, same forms as ``events``. (templated)
    :param results: where the results table goes (``.parquet`` or ``.csv``): a local path, a URL, or
        an ``ObjectStoragePath`` (written with its connection's credentials); also the resume point
        of a rerun. None keeps it in memory only: a retry then sends every row again. (templated)
    :param results_asset: the location an ``AssetAlias`` outlet names as the asset (default:
        ``results``). Give the directory that holds every run's results (or every shard's part) to
        keep one asset across runs and shards: each event's extra still names the exact table in
        ``results``. (templated)
    :param column_mapping: source column -> convention name (``None`` drops the column); one dict
        for both tables or ``{"events": {...}, "endpoints": {...}}``. (templated)
    :param csv_list_delimiter: split CSV multi-valued attribute cells on this delimiter.
    :param requests_per_second: rate limit of this task; split the account quota between tasks
        that run at once. With ``pool_size``: the account's rate, shared by the pool.
    :param pool_size: the slot count of this task's ``pool`` when that pool stands for the account's
        PutEvents quota: the task then sends at most ``requests_per_second * pool_slots / pool_size``
        requests in any second, so the tasks the pool lets run at once stay within the quota
        together, whatever their DAG or run. A task cannot read a pool in Airflow 3, hence the argument: template it from a Variable
        set to the pool's size. An int or a numeric string. (templated)
    :param max_in_flight: concurrent requests. The hook's client gets a pooled connection for each,
        unless the connection's or the operator's botocore config sets ``max_pool_connections``:
        then at most that many are sent at once.
    :param max_attempts: attempts per request or item before it is recorded as failed.
    :param max_reject_ratio: fail the task when rejected / input rows exceeds this (0..1).
    :param on_invalid: ``"reject"`` (send the good rows) or ``"fail"`` (send nothing if any row is
        invalid).
    :param dry_run: validate and pack, send nothing.
    :param state: a sync state location (directory, local or URL): endpoints whose body was
        accepted before and events accepted before are not sent (``unchanged`` / ``already_sent``
        in the results and the summary). See docs/sync.md. (templated)
    :param full_refresh: with ``state``: send everything and rebuild this task's part of it; a bool,
        or a template rendering to "True" / "False". (templated)
    :param state_retention_days: with ``state``: forget event ids accepted longer ago (default 7).
    :param state_part: with ``state``: this task's own file in it (default ``main``); tasks that run
        at once on one state (mapped shards) each need their own, e.g. the shard number. (templated)
    :param aws_conn_id: The Airflow connection used for AWS credentials.
        If this is ``None`` or empty then the default boto3 behaviour is used. If
        running Airflow in a distributed manner and aws_conn_id is None or
        empty, then default boto3 configuration would be used (and must be
        maintained on each worker node).
    :param region_name: AWS region_name. If not specified then the default boto3 behaviour is used.
    :param verify: Whether or not to verify SSL certificates. See:
        https://boto3.amazonaws.com/v1/documentation/api/latest/reference/core/session.html
    :param botocore_config: Configuration dictionary (key-values) for botocore client. See:
        https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    """

    template_fields: Sequence[str] = aws_template_fields(
        "application_id",
        "events",
        "endpoints",
        "results",
        "results_asset",
        "column_mapping",
        "pool_size",
        "state",
        "state_part",
        "full_refresh",
    )
    template_fields_renderers = {"column_mapping": "json"}

    def __init__(
        self,
        *,
        application_id: str,
        events: Any = None,
        endpoints: Any = None,
        results: Any = None,
        results_asset: Any = None,
        column_mapping: Mapping[str, Any] | None = None,
        csv_list_delimiter: str | None = None,
        requests_per_second: float | None = quotas.DEFAULT_REQUESTS_PER_SECOND,
        pool_size: int | str | None = None,
        max_in_flight: int = quotas.DEFAULT_MAX_IN_FLIGHT,
        max_attempts: int = 8,
        max_reject_ratio: float | None = None,
        on_invalid: Literal["reject", "fail"] = "reject",
        dry_run: bool = False,
        state: Any = None,
        full_refresh: bool = False,
        state_retention_days: float | None = None,
        state_part: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application_id = application_id
        self.events = events
        self.endpoints = endpoints
        self.results = results
        self.results_asset = results_asset
        self.column_mapping = column_mapping
        self.csv_list_delimiter = csv_list_delimiter
        self.requests_per_second = requests_per_second
        self.pool_size = pool_size
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.max_reject_ratio = max_reject_ratio
        self.on_invalid = on_invalid
        # Not ``self.dry_run``: that is BaseOperator's method (render the templates only), which the
        # flag would shadow.
        self.validate_only = dry_run
        self.state = state
        self.full_refresh = full_refresh
        self.state_retention_days = state_retention_days
        self.state_part = state_part
        self._stop_event: threading.Event | None = None
        self._endpoint_url: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_pinpoint.common.gc_pause import pause_for_task

        end_pause = pause_for_task()  # no collections until the client is made (see common/gc_pause.py)
        try:
            return self._execute(context)
        finally:
            end_pause()

    def _execute(self, context: Context) -> dict[str, Any]:
        # The loader brings the reading/sending stack: imported here, not at DAG parse time.
        from airflow_provider_pinpoint.common.arrow import hide_pandas, show_pandas
        from airflow_provider_pinpoint.common.gc_pause import start_up_done
        from airflow_provider_pinpoint.common.text import without_userinfo
        from airflow_provider_pinpoint.load import load_events

        rates = self._rates()
        client = self._client()
        start_up_done()
        # Lineage names the endpoint: without any user:password@ a gateway URL may carry.
        self._endpoint_url = without_userinfo(client.meta.endpoint_url)
        self._stop_event = threading.Event()
        # Files need no pandas, which pyarrow would import (as much CPU as a small load itself) only to
        # look for pandas values; a DataFrame input has it imported already, and hiding it then does nothing.
        hide_pandas()
        try:
            report = load_events(
                self.events,
                self.endpoints,
                application_id=self.application_id,
                results=self.results,
                client=client,
                **rates,
                max_in_flight=self.max_in_flight,
                max_attempts=self.max_attempts,
                column_mapping=self.column_mapping,
                csv_list_delimiter=self.csv_list_delimiter,
                max_reject_ratio=self.max_reject_ratio,
                on_invalid=self.on_invalid,
                dry_run=self.validate_only,
                progress="log",
                run_id=context["run_id"],
                stop_event=self._stop_event,
                state=self.state or None,
                full_refresh=_flag(self.full_refresh, "full_refresh"),
                state_retention_days=self.state_retention_days,
                state_part=None if self.state_part is None else str(self.state_part),
                **self._sink_arguments(),
            )
        except RejectRatioExceeded as err:
            self.log.info("Summary: %s", json.dumps(err.report.summary.to_dict()))
            raise AirflowFailException(str(err)) from err
        except (FatalServiceError, InputError) as err:
            raise AirflowFailException(str(err)) from err
        finally:
            show_pandas()
        summary = report.summary.to_dict()
        self.log.info("Loaded into %s. Summary: %s", self._destination(), json.dumps(summary))
        if summary.get("stopped") or self._stop_event.is_set():
            raise AirflowException(
                f"Stopped on request after {summary.get('accepted')} accepted rows; {self._retry_hint()}"
            )
        if summary.get("failed"):
            raise AirflowException(
                f"{summary['failed']} of {summary['input_rows']} rows failed after {self.max_attempts} attempts "
                f"(throttling or service errors); {self._retry_hint()}"
            )
        if not self.validate_only:
            self._record_asset_events(context, summary)
        return summary

    def _client(self) -> Any:
        """The hook's boto3 client, one attempt per call unless the connection or operator set retries,
        with a pooled connection for each request in flight unless they set the pool's size."""
        config = self.hook.config
        if config.retries is None:
            config = config.merge(SINGLE_ATTEMPT)
        wanted = self.max_in_flight  # not checked yet: load_events refuses a bad value with one line
        chosen = "max_pool_connections" in getattr(config, "_user_provided_options", {})
        if (
            isinstance(wanted, int)
            and not isinstance(wanted, bool)
            and not chosen
            and connection_pool_size(config) < wanted
        ):
            config = config.merge(Config(max_pool_connections=wanted))
        return self.hook.get_client_type(region_name=self.hook.region_name, config=config)

    def _sink_arguments(self) -> dict[str, Any]:
        """The ``load_events`` arguments that choose the sink (PutEvents: none, it is the default)."""
        return {}

    def _destination(self) -> str:
        """Where the rows go, for the task log."""
        return f"application {self.application_id}"

    def _destination_dataset(self) -> tuple[str, str]:
        """The (namespace, name) of the destination in lineage: the service endpoint and the application."""
        return self._endpoint_url or "pinpoint", f"apps/{self.application_id}"

    def _rates(self) -> dict[str, Any]:
        """The rate arguments of ``load_events``: ``requests_per_second``, or its pool slots' share."""
        pool_size = self._pool_size()
        if pool_size is None:
            return {"requests_per_second": self.requests_per_second}
        rate = quotas.DEFAULT_REQUESTS_PER_SECOND if self.requests_per_second is None else self.requests_per_second
        return {"requests_per_second": self._shared_rate(rate, "requests", pool_size)}

    def _pool_size(self) -> int | None:
        """``pool_size`` as a whole number of slots, or None when the task does not share its pool's rate."""
        if self.pool_size is None or self.pool_size == "":
            return None
        try:
            pool_size = int(self.pool_size)
        except ValueError:
            raise AirflowFailException(f"pool_size must be a whole number of slots, got {self.pool_size!r}.") from None
        if pool_size < self.pool_slots:
            raise AirflowFailException(
                f"pool_size {pool_size} is smaller than this task's pool_slots {self.pool_slots}: "
                f"give the size of pool {self.pool!r}."
            )
        return pool_size

    def _shared_rate(self, rate: float, unit: str, pool_size: int) -> float:
        """The most of ``rate`` (``unit`` per second) that keeps this task within its pool slots' share.

        The share is ``rate * pool_slots / pool_size`` in any one second. The rate limiter may start
        with a reserve of one unit (or ``BURST_S`` seconds' worth) on top of its rate, so the rate is
        the share less that reserve: the tasks that run at once then stay within the quota in every
        second, not only on average.
        """
        share = rate * self.pool_slots / pool_size
        shared = share - max(1.0, share * BURST_S)
        if shared <= 0:
            raise AirflowFailException(
                f"pool_size {pool_size}: that many slots of pool {self.pool!r} cannot share "
                f"{rate:g} {unit}/s, as each running task may send one in any "
                f"second. Give the pool at most {int(rate // 2)} slots."
            )
        self.log.info(
            "Sending at %.3g %s/s: %d of the %d slots of pool %s, which share %g %s/s.",
            shared,
            unit,
            self.pool_slots,
            pool_size,
            self.pool,
            rate,
            unit,
        )
        return shared

    def _retry_hint(self) -> str:
        if self.results:
            return (
                f"the results at {location_text(self.results)} say which rows: a retry of this task resends only the rows not "
                "yet accepted or rejected."
            )
        return (
            "no results location was given, so a retry of this task sends every row again (duplicates "
            "included); set results= to make retries resume."
        )

    def on_kill(self) -> None:
        """Stop sending; requests in flight finish and their rows are recorded, so a rerun resumes."""
        if self._stop_event is not None:
            self._stop_event.set()

    def _record_asset_events(self, context: Context, summary: Mapping[str, Any]) -> None:
        extra = {key: summary[key] for key in _ASSET_EXTRA_KEYS if key in summary}
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra.update(extra)
            elif isinstance(outlet, AssetAlias) and self.results:
                asset = Asset(uri=_uri(self.results_asset or self.results))
                context["outlet_events"][outlet].add(asset, extra=extra)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: the tables read. Outputs: the destination (the Pinpoint application, the stream) and the results table."""
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        inputs = [Dataset(*_ol_name(source)) for source in (self.events, self.endpoints) if _is_location(source)]
        outputs = [Dataset(*self._destination_dataset())]
        if self.results:
            outputs.append(Dataset(*_ol_name(self.results)))
        return OperatorLineage(inputs=inputs, outputs=outputs)


class PinpointPutEventsOperator(PinpointLoadBaseOperator[PinpointHook]):
    """Send an endpoints table and/or an events table to Amazon Pinpoint with PutEvents.

    The parameters, the summary it returns and the ways it fails are those of
    :class:`PinpointLoadBaseOperator`; ``requests_per_second`` is in PutEvents requests.
    """

    aws_hook_class = PinpointHook


def _flag(value: Any, name: str) -> bool:
    """A bool argument that may arrive as rendered template text ("True", "false")."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "", "none"):
        return False
    raise AirflowFailException(f"{name} must be true or false, not {value!r}")


def _is_location(source: Any) -> bool:
    return is_object_path(source) or isinstance(source, str | os.PathLike)


def _uri(location: Any) -> str:
    """An Asset URI for a location: URLs as they are (an ObjectStoragePath without its connection
    id), local paths as absolute ``file://`` URIs."""
    location = location_text(location)
    if "://" in location:
        return location
    return "file://" + os.path.abspath(location)


def _ol_name(location: Any) -> tuple[str, str]:
    """(namespace, name) by the OpenLineage naming convention: ``s3://bucket`` + key, ``file`` + path."""
    parts = urlsplit(_uri(location))
    if parts.scheme == "file":
        return "file", parts.path
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")

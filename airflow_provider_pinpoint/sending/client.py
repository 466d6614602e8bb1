"""The boto3 client the loader sends with: one attempt per call, timeouts, a pool for the threads.

The engine retries with its own budget and backoff; botocore's retries on top would multiply the
attempts and hide throttling from the rate limiter, so clients the loader makes try each call once.
A client passed in by the user is used as it is, with a warning if it retries itself.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.config import Config

from airflow_provider_pinpoint.common.gc_pause import start_up_done
from airflow_provider_pinpoint.common.text import first_line, without_userinfo
from airflow_provider_pinpoint.errors import PinpointLoaderError

log = logging.getLogger(__name__)

# One attempt inside botocore: the sender owns retries.
CLIENT_RETRIES = {"total_max_attempts": 1, "mode": "standard"}
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
# botocore's own default pool size (``Config.max_pool_connections``).
_BOTOCORE_POOL = 10


def client_config(max_in_flight: int) -> Config:
    """botocore settings for a client the loader creates itself (enough connections for the threads)."""
    return Config(
        retries=dict(CLIENT_RETRIES),
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=max(_BOTOCORE_POOL, max_in_flight),
    )


def pool_size(config: Any) -> int:
    """How many connections a client with this botocore ``Config`` keeps per host (botocore's
    default when it says nothing)."""
    return int(getattr(config, "max_pool_connections", None) or _BOTOCORE_POOL)


def fitting_in_flight(client: Any, max_in_flight: int) -> int:
    """``max_in_flight``, or the client's pool size if that is smaller, said once at INFO.

    A thread beyond the pool's size would open a new connection for each request and drop it after
    (urllib3 warns "Connection pool is full" each time): slower than waiting for a pooled one."""
    pool = pool_size(getattr(getattr(client, "meta", None), "config", None))
    if pool >= max_in_flight:
        return max_in_flight
    log.info(
        "sending %d requests at a time, not max_in_flight=%d: the client passed in keeps %d connections; "
        "create it with Config(max_pool_connections=%d) to send more at once",
        pool,
        max_in_flight,
        pool,
        max_in_flight,
    )
    return pool


def make_client(
    client: Any,
    session: Any,
    endpoint_url: str | None,
    region_name: str | None,
    max_in_flight: int,
    *,
    service: str = "pinpoint",
) -> Any:
    """The client to send with: the user's, or a new one with botocore's retries off.

    botocore signs with SigV4 and never sends a ``user:password@`` given in ``endpoint_url``; it
    would only quote it in its logs and errors, so a new client is made without it."""
    if client is not None:
        retries = getattr(client.meta.config, "retries", None) or {}
        attempts = retries.get("total_max_attempts") or retries.get("max_attempts")
        if attempts is None or attempts > 1:
            log.warning(
                "the boto3 client passed in retries requests itself (%s attempts), which multiplies the "
                "loader's own retries; create it with Config(retries={'total_max_attempts': 1, 'mode': 'standard'})",
                attempts or "botocore's default",
            )
        return client
    import boto3
    import botocore.exceptions
    import botocore.session

    from airflow_provider_pinpoint.service_model import data_loader

    try:
        if session is None:
            botocore_session = botocore.session.get_session()
            session = boto3.session.Session(botocore_session=botocore_session)
            # After boto3 has added its resource files to the session's own loader: the shared one stays as it is.
            botocore_session.register_component("data_loader", data_loader())
        client = session.client(
            service,
            endpoint_url=None if endpoint_url is None else without_userinfo(endpoint_url),
            region_name=region_name,
            config=client_config(max_in_flight),
        )
    except botocore.exceptions.NoRegionError:
        raise PinpointLoaderError(
            "No AWS region: pass region_name (--region) or set AWS_REGION / AWS_DEFAULT_REGION."
        ) from None
    # A malformed region or endpoint URL, no such profile: one line, as every loader error.
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        raise PinpointLoaderError(f"Cannot make the AWS client: {type(exc).__name__}: {first_line(exc)}") from None
    start_up_done()  # the client is the last of what a command's start-up makes
    return client

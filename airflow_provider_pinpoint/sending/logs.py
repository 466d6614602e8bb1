"""Keep signing material and URL passwords out of botocore's DEBUG lines for the loader's own requests.

``botocore.auth`` logs the canonical request (with the session token) and the string to sign;
``botocore.endpoint`` logs each prepared request with its Authorization header (the access key id)
and the token. Someone debugging a load turns DEBUG on for everything; these lines must not follow.
Only records from the loader's sending threads (named with :data:`SENDER_THREAD_PREFIX`) are
dropped, so other boto3 users in the same process keep their logs as configured.

An endpoint URL may carry ``user:password@`` (a client passed in, an Airflow connection), and
botocore quotes the URL in its endpoint resolution and request lines: in the loader's records the
userinfo is cut out of every URL. The filter is installed when a run starts, not when the package
is imported.
"""

from __future__ import annotations

import logging

from airflow_provider_pinpoint.common.text import without_userinfo

# Worker threads that send for the loader are named with this prefix.
SENDER_THREAD_PREFIX = "pinpoint-send"

# The loggers whose records quote the endpoint URL or signing material.
_LOGGERS = (
    "botocore.auth",
    "botocore.endpoint",
    "botocore.regions",
    "botocore.httpsession",
    "botocore.client",
    "botocore.parsers",
    "botocore.hooks",
    "urllib3.connectionpool",
)


class _NoSigningMaterial(logging.Filter):
    """Drops the signing lines botocore logs for requests sent from the loader's threads, and cuts
    userinfo out of the URLs its other lines quote."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.threadName or "").startswith(SENDER_THREAD_PREFIX):
            return True
        if record.name == "botocore.auth":
            return False
        if str(record.msg).startswith("Sending http request"):
            return False
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = without_userinfo(message), None
        return True


def install_log_filter() -> None:
    """Add the filter to botocore's loggers that quote URLs or signing material (once; later calls do nothing)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoSigningMaterial) for f in logger.filters):
            logger.addFilter(_NoSigningMaterial())

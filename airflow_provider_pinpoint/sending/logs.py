"""Keep signing material out of logs: botocore's DEBUG lines for the loader's own requests are dropped.

``botocore.auth`` logs the canonical request (with the session token) and the string to sign;
``botocore.endpoint`` logs each prepared request with its Authorization header (the access key id)
and the token. Someone debugging a load turns DEBUG on for everything; these lines must not follow.
Only records from the loader's sending threads (named with :data:`SENDER_THREAD_PREFIX`) are
dropped, so other boto3 users in the same process keep their logs as configured. The filter is
installed when a run starts, not when the package is imported.
"""

from __future__ import annotations

import logging

# Worker threads that send for the loader are named with this prefix.
SENDER_THREAD_PREFIX = "pinpoint-send"


class _NoSigningMaterial(logging.Filter):
    """Drops the signing lines botocore logs for requests sent from the loader's threads."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.threadName or "").startswith(SENDER_THREAD_PREFIX):
            return True
        if record.name == "botocore.auth":
            return False
        return not str(record.msg).startswith("Sending http request")


def install_log_filter() -> None:
    """Add the filter to botocore's signing and request loggers (once; later calls do nothing)."""
    for name in ("botocore.auth", "botocore.endpoint"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoSigningMaterial) for f in logger.filters):
            logger.addFilter(_NoSigningMaterial())

"""What a boto3 call that got no usable answer from the service amounts to, the same for every sink.

A refusal the service sent (``ClientError``) is classified by each sink, since the codes differ;
everything else (no answer, an answer botocore could not parse, no credentials, a parameter boto3
refused, a client that could not send at all) means the same whichever service was called.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import botocore.exceptions
from botocore.parsers import ResponseParserError

from airflow_provider_pinpoint.common.text import first_line, one_line, scrubbed
from airflow_provider_pinpoint.errors import FatalServiceError
from airflow_provider_pinpoint.sending.transport import BadRequest, RetryableError

# botocore's error parser raises the last two on some malformed answers.
_UNPARSEABLE = (ResponseParserError, RecursionError, UnicodeDecodeError)
# What ``not_answered`` turns into the load's errors: catch it after ``ClientError``.
NOT_ANSWERED = (botocore.exceptions.BotoCoreError, *_UNPARSEABLE)


def not_answered(exc: BaseException, target: Callable[[], str]) -> Exception:
    """The load's error for ``exc``, one of ``NOT_ANSWERED``; ``target`` describes where requests go."""
    if isinstance(exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError):
        return RetryableError(f"no answer from the service: {type(exc).__name__}")
    if isinstance(exc, _UNPARSEABLE):
        return RetryableError("the service's answer could not be parsed")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return FatalServiceError(
            "No AWS credentials found: configure a profile, environment variables, an instance role "
            "or pass a boto3 session/client."
        )
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return BadRequest(f"refused by boto3's parameter validation: {without_values(str(exc))}")
    # The client could not make the request at all (credentials that cannot be retrieved, an
    # endpoint it cannot resolve...): every other request would fail the same way.
    return FatalServiceError(
        f"The AWS client could not send to {target()}: {type(exc).__name__}: {scrubbed(first_line(exc))}"
    )


def without_values(report: str) -> str:
    """botocore's validation report quotes the offending values, which may be addresses: keep only the rules."""
    return one_line(
        "; ".join(re.sub(r",? value: .*", "", line) for line in report.splitlines()[1:]) or "invalid parameters"
    )

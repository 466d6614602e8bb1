"""Errors a user can act on. Each message is one line that names what to check; none carries a
credential, an address or a traceback-worthy internal detail."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_pinpoint.load import LoadReport


class PinpointLoaderError(Exception):
    """Base class of every error the loader raises on purpose."""


class InputError(PinpointLoaderError):
    """An input table cannot be read or mapped at all (unreadable file, missing or unknown column)."""


class FatalServiceError(PinpointLoaderError):
    """The service refused the whole run (credentials 401/403, unknown application 404, a proxy's 407,
    a redirect): nothing is retried."""


class RejectRatioExceeded(PinpointLoaderError):
    """More rows were rejected than ``max_reject_ratio`` allows; raised after the good rows were sent.

    ``report`` is the run's report, as a successful run would have returned it."""

    def __init__(self, message: str, *, report: LoadReport) -> None:
        super().__init__(message)
        self.report = report

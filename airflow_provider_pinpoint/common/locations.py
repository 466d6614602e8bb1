"""Where a table lives: a local path, an fsspec URL, or a path object that brings its own filesystem.

Airflow's ``ObjectStoragePath`` and universal_pathlib's ``UPath`` carry an fsspec filesystem made
with their connection's credentials; reading and writing through that filesystem is what makes the
connection apply. Their text form can name the connection (``s3://conn_id@bucket/key``), so
messages, summaries and lineage use :func:`location_text` instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fsspec

from airflow_provider_pinpoint.common.text import first_line, without_userinfo
from airflow_provider_pinpoint.errors import InputError


def is_object_path(location: Any) -> bool:
    """A UPath or ObjectStoragePath: a path that brings its own filesystem.

    Recognised without creating the filesystem, which may need a library that is not installed.
    """
    return (
        hasattr(type(location), "fs")
        and isinstance(getattr(location, "protocol", None), str)
        and isinstance(getattr(location, "path", None), str)
    )


def location_text(location: Any) -> str:
    """A location as text for people, summaries and lineage: the path or URL as given; a path object
    as its URL without an ObjectStoragePath's connection id, or as a plain path when it is local."""
    if not is_object_path(location):
        return os.fspath(location)
    if location.protocol in ("", "file", "local"):
        return location.path
    text = str(location)
    conn_id = getattr(location, "conn_id", None)
    with_conn = f"{location.protocol}://{conn_id}@"
    if conn_id and text.startswith(with_conn):
        return f"{location.protocol}://{text[len(with_conn) :]}"
    return text


def filesystem(
    location: Any, storage_options: Mapping[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem a location is on and its path there: a path object's own filesystem, else the
    one its URL names, made with ``storage_options``; a clear error if the backend for it is not
    installed or does not take those options."""
    try:
        if is_object_path(location):
            return location.fs, location.path
        return fsspec.core.url_to_fs(os.fspath(location), **(storage_options or {}))
    except TypeError as exc:  # an option the backend does not take; the message names it, not its value
        raise InputError(f"{location_text(location)}: storage_options not accepted ({first_line(exc, 160)})") from None
    except ImportError as exc:
        text = location_text(location)
        protocol = location.protocol if is_object_path(location) else text.split("://", 1)[0]
        raise InputError(
            f"{text}: cannot open {protocol}:// here ({exc}); install the fsspec backend for it (s3fs for s3://)"
        ) from None


@dataclass(frozen=True, slots=True, repr=False)
class BoundLocation:
    """A URL with the filesystem made for it from ``storage_options``: read and written as a path
    object is, through its own filesystem. Its text and repr are the URL, never the options."""

    fs: fsspec.AbstractFileSystem
    path: str
    protocol: str
    url: str  # without userinfo

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def is_url(location: Any) -> bool:
    """A location that names a filesystem other than the local one (``s3://``, ``gs://``, ``memory://``...)."""
    if not isinstance(location, str | os.PathLike) or is_object_path(location):
        return False
    text = os.fspath(location)
    return isinstance(text, str) and "://" in text and not text.startswith(("file://", "local://"))


def with_storage_options(location: Any, storage_options: Mapping[str, Any]) -> Any:
    """A URL bound to a filesystem made with ``storage_options`` (the pandas convention: s3fs's
    ``key``/``secret``/``endpoint_url``...); anything else as it is."""
    if not is_url(location):
        return location
    text = os.fspath(location)
    if without_userinfo(text) != text:
        hide_userinfo_in_fsspec_logs()
    fs, path = filesystem(text, storage_options)
    return BoundLocation(fs, path, text.split("://", 1)[0], without_userinfo(text))


# fsspec and its backends quote the URLs they open in their DEBUG lines, userinfo included.
_FSSPEC_LOGGERS = ("fsspec", "fsspec.http", "fsspec.caching", "fsspec.spec", "s3fs", "gcsfs", "adlfs")


class _NoUserinfo(logging.Filter):
    """Cuts ``user:password@`` out of the URLs a record quotes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = without_userinfo(message), None
        return True


def hide_userinfo_in_fsspec_logs() -> None:
    """Add the filter to fsspec's loggers (once), when an input URL with userinfo is first opened."""
    for name in _FSSPEC_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoUserinfo) for f in logger.filters):
            logger.addFilter(_NoUserinfo())

"""Where a table lives: a local path, an fsspec URL, or a path object that brings its own filesystem.

Airflow's ``ObjectStoragePath`` and universal_pathlib's ``UPath`` carry an fsspec filesystem made
with their connection's credentials; reading and writing through that filesystem is what makes the
connection apply. Their text form can name the connection (``s3://conn_id@bucket/key``), so
messages, summaries and lineage use :func:`location_text` instead.
"""

from __future__ import annotations

import os
from typing import Any

import fsspec

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


def filesystem(location: Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem a location is on and its path there: a path object's own filesystem, else the
    one its URL names; a clear error if the backend for it is not installed."""
    try:
        if is_object_path(location):
            return location.fs, location.path
        return fsspec.core.url_to_fs(os.fspath(location))
    except ImportError as exc:
        text = location_text(location)
        protocol = location.protocol if is_object_path(location) else text.split("://", 1)[0]
        raise InputError(
            f"{text}: cannot open {protocol}:// here ({exc}); install the fsspec backend for it (s3fs for s3://)"
        ) from None
